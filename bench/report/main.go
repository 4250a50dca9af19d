// Command report turns the results of bench/run.sh (JSON lines written by cmd/loadtest) into the
// tables of BENCHMARKS.md (between the bench:begin/bench:end markers), a PNG plot, and the Go/Node
// ratios on stdout.
//
//	go run ./bench/report -in bench/results/results.jsonl -md BENCHMARKS.md -png bench/results/plot.png
//
// Without -md and -png it only checks that the results parse and prints the ratios (bench-smoke).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// result is the part of cmd/loadtest's Result the report reads.
type result struct {
	Server             string  `json:"server"`
	Scenario           string  `json:"scenario"`
	Clients            int     `json:"clients"`
	RoomSize           int     `json:"room_size"`
	Rate               float64 `json:"rate"`
	ConnectRate        float64 `json:"connect_rate"`
	ConnectErrors      int64   `json:"connect_errors"`
	Held               int64   `json:"held"`
	RSSPerConn         float64 `json:"rss_per_conn"`
	RSSPerConnNoGC     float64 `json:"rss_per_conn_nogc"`
	GoroutinesPerConn  float64 `json:"goroutines_per_conn"`
	HeapPerConn        float64 `json:"heap_per_conn"`
	StackPerConn       float64 `json:"stack_per_conn"`
	Delivered          int64   `json:"delivered"`
	Lost               int64   `json:"lost"`
	DeliveredPerSec    float64 `json:"delivered_per_sec"`
	ServerCPUUtil      float64 `json:"server_cpu_util"`
	DeliveredPerCPUSec float64 `json:"delivered_per_cpu_sec"`
	GenCPUUtil         float64 `json:"gen_cpu_util"`
	P50ms              float64 `json:"p50_ms"`
	P99ms              float64 `json:"p99_ms"`
	P999ms             float64 `json:"p999_ms"`
	Errors             int64   `json:"errors"`
	LoadAvg            float64 `json:"loadavg"`
	Time               string  `json:"time"`
}

func (r result) key() string {
	return fmt.Sprintf("%s|%d|%g", r.Scenario, r.RoomSize, r.Rate)
}

type results struct {
	all []result
	by  map[string]map[string][]result // key → server → runs in order
}

func load(path string) (*results, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rs := &results{by: map[string]map[string][]result{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r result
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rs.all = append(rs.all, r)
		if rs.by[r.key()] == nil {
			rs.by[r.key()] = map[string][]result{}
		}
		rs.by[r.key()][r.Server] = append(rs.by[r.key()][r.Server], r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rs.all) == 0 {
		return nil, errors.New(path + ": no results")
	}
	return rs, nil
}

// get returns the run of scenario on server; when it was repeated, the run with the median p99.
func (rs *results) get(scenario string, room int, rate float64, server string) (result, bool) {
	return median(rs.by[fmt.Sprintf("%s|%d|%g", scenario, room, rate)][server])
}

func median(runs []result) (result, bool) {
	if len(runs) == 0 {
		return result{}, false
	}
	s := append([]result(nil), runs...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].P99ms < s[j].P99ms })
	return s[(len(s)-1)/2], true
}

func main() {
	in := flag.String("in", "bench/results/results.jsonl", "results (JSON lines)")
	md := flag.String("md", "", "BENCHMARKS.md to update between <!-- bench:begin --> and <!-- bench:end -->")
	png := flag.String("png", "", "write the plot here")
	pngRef := flag.String("png-ref", "bench/results/plot.png", "path of the plot as linked from the markdown")
	echoRates := flag.String("echo-rates", "", "unused; kept for scripts")
	flag.Parse()
	_ = echoRates

	rs, err := load(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	targets := targetRows(rs)
	fmt.Println("Targets (Go vs Node, same generator, same run):")
	for _, t := range targets {
		fmt.Printf("  %-58s %-42s %s\n", t.name, t.measured, t.verdict)
	}
	if *png != "" {
		if err := plot(rs, *png); err != nil {
			fmt.Fprintln(os.Stderr, "report: plot:", err)
			os.Exit(1)
		}
	}
	if *md != "" {
		section := markdown(rs, targets, *pngRef)
		if err := replaceSection(*md, section); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

type targetRow struct{ name, measured, verdict string }

func verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "met"
	default:
		return "NOT met"
	}
}

func targetRows(rs *results) []targetRow {
	var out []targetRow
	// memory per idle client
	g, okg := rs.get("idle", 0, 0, "go")
	n, okn := rs.get("idle", 0, 0, "node")
	if okg && okn && n.RSSPerConn > 0 {
		ratio := g.RSSPerConn / n.RSSPerConn
		out = append(out, targetRow{"Memory per idle WebSocket client ≤ 1/4 of Node",
			fmt.Sprintf("RSS per client at %d clients: Go %.1f KB, Node %.1f KB: %.2f× (1/%.1f) after a forced GC in both (before it Go %.1f KB, Node %.1f KB); Go = %.1f KB heap + %.1f KB goroutine stack + runtime, Node V8 heap %.1f KB",
				g.Clients, g.RSSPerConn/1024, n.RSSPerConn/1024, ratio, 1/ratio, g.RSSPerConnNoGC/1024, n.RSSPerConnNoGC/1024,
				g.HeapPerConn/1024, g.StackPerConn/1024, n.HeapPerConn/1024), verdict(ratio <= 0.25, true)})
	} else {
		out = append(out, targetRow{"Memory per idle WebSocket client ≤ 1/4 of Node", "-", verdict(false, false)})
	}
	// fan-out per CPU and p99
	for _, room := range []int{100, 1000} {
		g, okg := rs.get("fanout", room, 0, "go")
		n, okn := rs.get("fanout", room, 0, "node")
		name := fmt.Sprintf("Room fan-out (room %d) ≥ 3× Node msgs/s at equal CPU, lower p99", room)
		if !okg || !okn || n.DeliveredPerCPUSec == 0 {
			out = append(out, targetRow{name, "-", verdict(false, false)})
			continue
		}
		ratio := g.DeliveredPerCPUSec / n.DeliveredPerCPUSec
		out = append(out, targetRow{name,
			fmt.Sprintf("%.2f× per server CPU-second (%.2f× per wall second); p99 %.1f ms vs %.1f ms",
				ratio, g.DeliveredPerSec/n.DeliveredPerSec, g.P99ms, n.P99ms),
			verdict(ratio >= 3 && g.P99ms < n.P99ms, true)})
	}
	// echo p99 at 5k/s
	g, okg = rs.get("echo", 0, 5000, "go")
	n, okn = rs.get("echo", 0, 5000, "node")
	if okg && okn && n.P99ms > 0 {
		ratio := g.P99ms / n.P99ms
		runs := rs.by["echo|0|5000"]
		out = append(out, targetRow{"Ack echo p99 at 5k msgs/s ≤ 1/2 of Node",
			fmt.Sprintf("median of %d alternating runs: Go %.2f ms, Node %.2f ms: %.2f× (every run's p99 in ms: Go %s, Node %s; p50 Go %.2f ms, Node %.2f ms)",
				len(runs["go"]), g.P99ms, n.P99ms, ratio, p99s(runs["go"]), p99s(runs["node"]), g.P50ms, n.P50ms),
			verdict(ratio <= 0.5 && g.Lost == 0, true)})
	} else {
		out = append(out, targetRow{"Ack echo p99 at 5k msgs/s ≤ 1/2 of Node", "-", verdict(false, false)})
	}
	// held
	if g, ok := rs.get("idle", 0, 0, "go"); ok {
		out = append(out, targetRow{fmt.Sprintf("%d idle clients held on one node", g.Clients),
			fmt.Sprintf("%d held (%d connect errors)", g.Held, g.ConnectErrors), verdict(g.Held >= int64(g.Clients) && g.Clients >= 10000, true)})
	}
	// stretch: as many idle clients as the fd limit allows (bench/run.sh), up to 50k
	if g, ok := rs.get("idle", 0, 0, "go-max"); ok {
		out = append(out, targetRow{"Stretch: 50000 idle clients held on one node",
			fmt.Sprintf("%d of %d held (%d connect errors), %.1f KB RSS each; bounded by the fd limit of this machine (see bench/run.sh)",
				g.Held, g.Clients, g.ConnectErrors, g.RSSPerConn/1024), verdict(g.Held >= 50000, true)})
	} else {
		out = append(out, targetRow{"Stretch: 50000 idle clients held on one node", "-", verdict(false, false)})
	}
	// raw
	for _, room := range []int{100, 1000} {
		g, okg := rs.get("fanout", room, 0, "go")
		r, okr := rs.get("fanout", room, 0, "raw")
		name := fmt.Sprintf("Fan-out (room %d) ≥ 70%% of raw WebSocket broadcast", room)
		if !okg || !okr || r.DeliveredPerSec == 0 {
			out = append(out, targetRow{name, "-", verdict(false, false)})
			continue
		}
		pct := 100 * g.DeliveredPerSec / r.DeliveredPerSec
		pcpu := 100 * g.DeliveredPerCPUSec / r.DeliveredPerCPUSec
		extra := ""
		if s, ok := rs.get("fanout", room, 0, "raw-sync"); ok && s.DeliveredPerSec > 0 {
			extra = fmt.Sprintf("; %.0f%% of the naive write-per-receiver raw", 100*g.DeliveredPerSec/s.DeliveredPerSec)
		}
		out = append(out, targetRow{name, fmt.Sprintf("%.0f%% per wall second, %.0f%% per CPU-second%s", pct, pcpu, extra), verdict(pct >= 70, true)})
	}
	return out
}

func p99s(runs []result) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = fmt.Sprintf("%.2f", r.P99ms)
	}
	return strings.Join(parts, " / ")
}

func markdown(rs *results, targets []targetRow, pngRef string) string {
	var b strings.Builder
	first, last := rs.all[0].Time, rs.all[len(rs.all)-1].Time
	minL, maxL := rs.all[0].LoadAvg, rs.all[0].LoadAvg
	for _, r := range rs.all {
		minL, maxL = min(minL, r.LoadAvg), max(maxL, r.LoadAvg)
	}
	fmt.Fprintf(&b, "Generated by `make bench` (bench/run.sh → bench/report) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s; %d cores (nproc), %s RAM; %s; Go %s, %s. Runs from %s to %s; 1-minute load average during the runs %.2f–%.2f.\n\n",
		cpuModel(), runtime.NumCPU(), memTotal(), kernel(), runtime.Version(), nodeVersion(), first, last, minL, maxL)
	b.WriteString("### Targets\n\n| Target | Measured | Verdict |\n|---|---|---|\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.name, t.measured, t.verdict)
	}
	b.WriteString("\n### All runs\n\n")
	b.WriteString("| server | scenario | clients | room | rate/s | connects/s | held | RSS/conn | gor./conn | delivered/s | delivered/CPU-s | server CPU | gen CPU | p50 ms | p99 ms | p999 ms | lost | errors | load |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	rows := append([]result(nil), rs.all...)
	sort.SliceStable(rows, func(i, j int) bool { return scenarioOrder(rows[i].Scenario) < scenarioOrder(rows[j].Scenario) })
	for _, r := range rows {
		rss := "-"
		if r.Scenario == "idle" {
			rss = fmt.Sprintf("%.1f KB", r.RSSPerConn/1024)
		}
		gor := "-"
		if r.Scenario == "idle" && r.Server != "node" {
			gor = fmt.Sprintf("%.2f", r.GoroutinesPerConn)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %.0f | %d | %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %d | %.2f |\n",
			r.Server, r.Scenario, r.Clients, dash(r.RoomSize), dashF(r.Rate), r.ConnectRate, r.Held, rss, gor,
			r.DeliveredPerSec, r.DeliveredPerCPUSec, r.ServerCPUUtil, r.GenCPUUtil, r.P50ms, r.P99ms, r.P999ms, r.Lost, r.Errors, r.LoadAvg)
	}
	b.WriteString("\n### Go / Node ratios\n\n| scenario | room | rate/s | delivered/s | delivered per CPU-s | p99 | connects/s |\n|---|---|---|---|---|---|---|\n")
	keys := make([]string, 0, len(rs.by))
	for k := range rs.by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, okg := median(rs.by[k]["go"])
		n, okn := median(rs.by[k]["node"])
		if !okg || !okn {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", g.Scenario, dash(g.RoomSize), dashF(g.Rate),
			ratio(g.DeliveredPerSec, n.DeliveredPerSec), ratio(g.DeliveredPerCPUSec, n.DeliveredPerCPUSec), ratio(g.P99ms, n.P99ms), ratio(g.ConnectRate, n.ConnectRate))
	}
	fmt.Fprintf(&b, "\n![latency vs load and fan-out throughput](%s)\n", pngRef)
	return b.String()
}

func scenarioOrder(s string) int {
	for i, n := range []string{"idle", "echo", "fanout", "chat", "churn", "churn-polling", "cluster"} {
		if n == s {
			return i
		}
	}
	return 99
}

func dash(v int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

func dashF(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%g", v)
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func replaceSection(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	const begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: markers %s … %s not found", path, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + section + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

func nodeVersion() string {
	if v := os.Getenv("NODE_VERSION"); v != "" {
		return "Node " + v
	}
	return "Node (version not given)"
}
