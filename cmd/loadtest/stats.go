package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverStats is what a bench server reports at /debug/stats (cmd/benchserver, bench/node/server.js),
// with RSS and CPU overridden from /proc/<pid> when the pid is known.
type serverStats struct {
	RSS        int64 `json:"rss"`
	CPUms      int64 `json:"cpu_ms"`
	Goroutines int   `json:"goroutines"`
	HeapInuse  int64 `json:"heap_inuse"`
	StackInuse int64 `json:"stack_inuse"` // Go only
	Conns      int   `json:"conns"`
}

// target is one server under test.
type target struct {
	ws   string // ws://host:port
	http string // http://host:port
	pid  int    // 0: trust the endpoint for RSS and CPU
}

var statsClient = &http.Client{Timeout: 10 * time.Second}

// fetchStats reads /debug/stats, or /debug/gc (a full GC first) when gc is set.
func (t target) fetchStats(gc bool) (serverStats, error) {
	path := "/debug/stats"
	if gc {
		path = "/debug/gc"
	}
	var st serverStats
	resp, err := statsClient.Get(t.http + path)
	if err != nil {
		return st, fmt.Errorf("stats %s: %w", t.http, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("stats %s: %w", t.http, err)
	}
	if t.pid > 0 {
		if rss, err := procRSS(t.pid); err == nil {
			st.RSS = rss
		}
		if cpu, err := procCPUms(t.pid); err == nil {
			st.CPUms = cpu
		}
	}
	return st, nil
}

// procRSS reads VmRSS of pid in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// procCPUms reads utime+stime of pid (all threads) in milliseconds.
func procCPUms(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // fields 14 and 15 of stat, counted after the name
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	const hz = 100 // USER_HZ on Linux
	return (ut + st) * 1000 / hz, nil
}

// selfCPU is the generator's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average of the machine (how noisy the run was).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
