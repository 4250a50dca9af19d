package metrics

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// RegisterRuntime adds the Go runtime and process gauges under the names Prometheus' own Go and
// process collectors use, so dashboards and the soak test (cmd/soak) read them the usual way:
//
//	go_goroutines, go_threads, go_memstats_heap_alloc_bytes, go_memstats_heap_inuse_bytes,
//	go_memstats_heap_objects, go_memstats_sys_bytes, go_memstats_next_gc_bytes, go_gc_cycles_total,
//	process_open_fds, process_max_fds, process_resident_memory_bytes, process_cpu_seconds_total,
//	process_start_time_seconds
//
// The process_* metrics come from /proc/self and are left out where it does not exist (not Linux).
// The memory statistics are read once per scrape (runtime.ReadMemStats, which stops the world for
// microseconds), not once per gauge.
func RegisterRuntime(r *Registry) {
	ms := &memStats{}
	r.OnScrape(ms.read)
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 {
		return float64(runtime.NumGoroutine())
	})
	r.GaugeFunc("go_threads", "Number of OS threads created.", func() float64 {
		n, _ := runtime.ThreadCreateProfile(nil)
		return float64(n)
	})
	r.GaugeFunc("go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects (live and not yet swept).",
		func() float64 { return float64(ms.get().HeapAlloc) })
	r.GaugeFunc("go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.",
		func() float64 { return float64(ms.get().HeapInuse) })
	r.GaugeFunc("go_memstats_heap_objects", "Number of allocated heap objects.",
		func() float64 { return float64(ms.get().HeapObjects) })
	r.GaugeFunc("go_memstats_sys_bytes", "Bytes of memory obtained from the OS by the Go runtime.",
		func() float64 { return float64(ms.get().Sys) })
	r.GaugeFunc("go_memstats_next_gc_bytes", "Heap size at which the next garbage collection will run.",
		func() float64 { return float64(ms.get().NextGC) })
	r.CounterFunc("go_gc_cycles_total", "Completed garbage collection cycles.",
		func() float64 { return float64(ms.get().NumGC) })

	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return
	}
	r.GaugeFunc("process_open_fds", "Number of open file descriptors.", func() float64 {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return -1
		}
		return float64(len(ents) - 1) // the directory being read is itself an open descriptor
	})
	r.GaugeFunc("process_max_fds", "Maximum number of open file descriptors.", func() float64 {
		return procLimit("Max open files")
	})
	r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 {
		st := procStat()
		if len(st) < 24 {
			return -1
		}
		pages, _ := strconv.ParseFloat(st[23], 64)
		return pages * float64(os.Getpagesize())
	})
	r.CounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", func() float64 {
		st := procStat()
		if len(st) < 15 {
			return -1
		}
		u, _ := strconv.ParseFloat(st[13], 64)
		s, _ := strconv.ParseFloat(st[14], 64)
		return (u + s) / clockTicks
	})
	start := float64(time.Now().Unix())
	r.GaugeFunc("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
		func() float64 { return start })
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/self/stat: 100 on every Linux
// architecture Go runs on.
const clockTicks = 100

// procStat returns the fields of /proc/self/stat (0-based as in proc(5) minus one), with the command
// name, which may hold spaces, collapsed to one field.
func procStat() []string {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"pid", "comm"}, bytesFields(b[i+1:])...)
}

func bytesFields(b []byte) []string {
	var out []string
	for _, f := range bytes.Fields(b) {
		out = append(out, string(f))
	}
	return out
}

// procLimit reads the soft limit of one line of /proc/self/limits ("Max open files  20000  20000  files").
func procLimit(name string) float64 {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return -1
			}
			if string(f[0]) == "unlimited" {
				return -1
			}
			v, err := strconv.ParseFloat(string(f[0]), 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

// memStats holds the runtime.ReadMemStats of the current scrape (Registry.OnScrape).
type memStats struct {
	mu   sync.Mutex
	stat runtime.MemStats
}

func (m *memStats) read() {
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	m.mu.Lock()
	m.stat = st
	m.mu.Unlock()
}

func (m *memStats) get() runtime.MemStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stat
}
