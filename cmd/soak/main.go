// Command soak runs the soak test (internal/soak) against a cmd/maoga binary:
//
//	soak -server bin/maoga -clients 300 -duration 45s -json /tmp/soak.json
//
// It starts the server with the embedded store in a temporary directory (kept with -keep, or when
// the run fails), registers the users, runs the warm-up and the load, prints the summary table,
// writes the JSON report and exits 1 when the run failed (2 when it could not be carried out).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/maoga/maoga/internal/soak"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg soak.Config
	flag.StringVar(&cfg.ServerBin, "server", "bin/maoga", "the cmd/maoga binary")
	flag.IntVar(&cfg.Clients, "clients", 300, "virtual users (one Socket.IO client each)")
	flag.DurationVar(&cfg.Duration, "duration", 45*time.Second, "the measured load phase")
	flag.DurationVar(&cfg.WarmUp, "warmup", 8*time.Second, "the same scenario before the baseline is read")
	flag.DurationVar(&cfg.Settle, "settle", 8*time.Second, "wait after every client left, before reading resources (> RECOVERY_MAX_DISCONNECTION, 5s)")
	flag.DurationVar(&cfg.OpTimeout, "op-timeout", 10*time.Second, "an ack or REST answer slower than this fails the run")
	flag.DurationVar(&cfg.ThinkMin, "think-min", 500*time.Millisecond, "shortest pause between one client's steps")
	flag.DurationVar(&cfg.ThinkMax, "think-max", 2500*time.Millisecond, "longest pause between one client's steps")
	flag.DurationVar(&cfg.Leave, "leave", 10*time.Second, "at the end of a phase clients close over this long (a thousand disconnects in one instant overload the embedded store)")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	flag.IntVar(&cfg.Bounds.Goroutines, "max-goroutines", 20, "goroutines allowed above the baseline after the run")
	flag.IntVar(&cfg.Bounds.OpenFDs, "max-fds", 10, "open fds allowed above the baseline after the run")
	heapMB := flag.Float64("max-heap-mb", 16, "live heap (MB, after a full GC) allowed above the baseline after the run")
	jsonPath := flag.String("json", "", "write the JSON report here")
	workDir := flag.String("dir", "", "work directory (data dir, server log); default a new temporary directory")
	keep := flag.Bool("keep", false, "keep the work directory when the run passes")
	flag.Parse()
	cfg.Bounds.HeapBytes = *heapMB * 1e6
	cfg.ServerEnv = flag.Args() // extra KEY=VALUE server settings
	cfg.Log = os.Stderr

	if cfg.WorkDir = *workDir; cfg.WorkDir == "" {
		d, err := os.MkdirTemp("", "maoga-soak-*")
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
		cfg.WorkDir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: could not run:", err)
		fmt.Fprintln(os.Stderr, "soak: work directory kept:", cfg.WorkDir)
		return 2
	}
	rep.WriteTable(os.Stdout)
	if *jsonPath != "" {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
		fmt.Println("JSON report:", *jsonPath)
	}
	if !rep.Passed() || *keep {
		fmt.Println("work directory kept:", cfg.WorkDir)
	} else {
		_ = os.RemoveAll(cfg.WorkDir)
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}
