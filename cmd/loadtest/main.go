// Command loadtest is the benchmark load generator: lean Engine.IO v4 / Socket.IO v5 clients over
// WebSocket (and HTTP long-polling for churn-polling) that open N connections fast, run one scenario
// against a bench server (cmd/benchserver, bench/node/server.js) and print a table and one JSON line.
//
//	loadtest -url http://127.0.0.1:PORT -scenario idle|echo|fanout|chat|churn|churn-polling|cluster [flags]
//
// Scenarios (see BENCHMARKS.md): idle (memory and goroutines per connection, clients held), echo (ack
// round trips at -rate msgs/s), fanout (one sender, a room of -room-size; -rate 0 = as fast as a
// window of -window messages in flight allows), chat (-clients in rooms of -room-size, -rate msgs/s in
// total), churn / churn-polling (-workers connect+disconnect loops), cluster (fanout with the sender on
// -url and the room on -url2, two nodes on Redis). -raw targets the raw WebSocket baseline server
// (benchserver -mode raw; fanout only).
//
// Server RSS and CPU come from /proc/<pid> when -pid (and -pid2) are given, else from the server's
// /debug/stats; goroutines always from /debug/stats. Latency is measured from the send time carried
// in each message to its receipt, on the generator's monotonic clock.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	var cfg config
	u := flag.String("url", "", "server base URL (http://host:port)")
	u2 := flag.String("url2", "", "second node (cluster scenario)")
	pid := flag.Int("pid", 0, "server pid (RSS and CPU from /proc)")
	pid2 := flag.Int("pid2", 0, "second node pid")
	flag.StringVar(&cfg.scenario, "scenario", "idle", "idle | echo | fanout | chat | churn | churn-polling | cluster")
	flag.StringVar(&cfg.server, "label", "go", "server label in the results")
	flag.BoolVar(&cfg.raw, "raw", false, "raw WebSocket baseline server (fanout)")
	flag.IntVar(&cfg.clients, "clients", 1000, "clients (idle, echo, chat)")
	flag.IntVar(&cfg.roomSize, "room-size", 100, "room size (fanout, cluster, chat)")
	flag.Float64Var(&cfg.rate, "rate", 0, "messages per second in total (echo, chat; fanout: 0 = max)")
	flag.IntVar(&cfg.window, "window", 16, "fanout: messages in flight before the sender waits")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measurement window (idle: hold time)")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "load before the window starts (idle: settle time)")
	flag.IntVar(&cfg.payload, "payload", 64, "padding bytes per message")
	flag.IntVar(&cfg.concurrency, "concurrency", 100, "parallel dials")
	flag.IntVar(&cfg.workers, "workers", 20, "churn loops")
	jsonOut := flag.String("json", "", "append the result as one JSON line to this file")
	flag.Parse()

	if *u == "" {
		fmt.Fprintln(os.Stderr, "loadtest: -url is required")
		os.Exit(2)
	}
	cfg.targets = []target{mkTarget(*u, *pid)}
	if *u2 != "" {
		cfg.targets = append(cfg.targets, mkTarget(*u2, *pid2))
	}
	res, err := execute(cfg)
	if res != nil {
		printTable(res)
		line, _ := json.Marshal(res)
		fmt.Printf("RESULT %s\n", line)
		if *jsonOut != "" {
			f, ferr := os.OpenFile(*jsonOut, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if ferr == nil {
				_, ferr = f.Write(append(line, '\n'))
				f.Close()
			}
			if ferr != nil {
				fmt.Fprintln(os.Stderr, "loadtest:", ferr)
				os.Exit(1)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if broken(res) {
		os.Exit(3)
	}
}

func mkTarget(u string, pid int) target {
	u = strings.TrimRight(u, "/")
	ws := "ws://" + strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "ws://")
	httpU := "http://" + strings.TrimPrefix(ws, "ws://")
	return target{ws: ws, http: httpU, pid: pid}
}

// broken is the smoke-test verdict: the scenario produced nothing it should have.
func broken(r *Result) bool {
	switch r.Scenario {
	case "idle":
		return r.Held == 0 || r.ConnectErrors > 0
	case "churn", "churn-polling":
		return r.Delivered == 0
	default:
		return r.Delivered == 0 || r.ConnectErrors > 0
	}
}

func printTable(r *Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "server\tscenario\tclients\troom\trate\tconn/s\theld\tRSS/conn\tgor/conn\tdeliv/s\tdeliv/cpu-s\tsrv cpu\tp50ms\tp99ms\tp999ms\tlost\terrors\tload\n")
	fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%d\t%.1fKB\t%.2f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%.2f\n",
		r.Server, r.Scenario, r.Clients, r.RoomSize, r.Rate, r.ConnectRate, r.Held, r.RSSPerConn/1024, r.GoroutinesPerConn,
		r.DeliveredPerSec, r.DeliveredPerCPUSec, r.ServerCPUUtil, r.P50ms, r.P99ms, r.P999ms, r.Lost, r.Errors, r.LoadAvg)
	w.Flush()
}
