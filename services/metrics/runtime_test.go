package metrics

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// scrape renders r and returns the unlabelled samples by name.
func scrape(t *testing.T, r *Registry) map[string]float64 {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		out[name] = v
	}
	return out
}

func TestRuntimeMetrics(t *testing.T) {
	r := NewRegistry()
	RegisterRuntime(r)
	before := scrape(t, r)
	for _, name := range []string{"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_heap_objects", "go_memstats_sys_bytes",
		"go_memstats_next_gc_bytes"} {
		if before[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, before[name])
		}
	}
	// The gauges are read at scrape time: more goroutines and more open files show.
	stop := make(chan struct{})
	for i := 0; i < 50; i++ {
		go func() { <-stop }()
	}
	var files []*os.File
	if runtime.GOOS == "linux" {
		for i := 0; i < 20; i++ {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	runtime.GC()
	after := scrape(t, r)
	if after["go_gc_cycles_total"] < before["go_gc_cycles_total"]+1 {
		t.Errorf("go_gc_cycles_total %v after a GC, was %v", after["go_gc_cycles_total"], before["go_gc_cycles_total"])
	}
	close(stop)
	for _, f := range files {
		f.Close()
	}
	if d := after["go_goroutines"] - before["go_goroutines"]; d < 50 {
		t.Errorf("go_goroutines rose by %v with 50 more goroutines", d)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if d := after["process_open_fds"] - before["process_open_fds"]; d < 20 || d > 22 {
		t.Errorf("process_open_fds rose by %v with 20 more open files", d)
	}
	if before["process_resident_memory_bytes"] < 1<<20 || before["process_max_fds"] < 1 ||
		before["process_cpu_seconds_total"] < 0 || before["process_start_time_seconds"] < 1e9 {
		t.Errorf("process metrics %v", before)
	}
}
