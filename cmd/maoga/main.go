// Command maoga is the Maoga server: REST API and Socket.IO on one port. Configuration comes from
// environment variables (see app.Config / README-run.md); with none set it runs on :8080 with the
// embedded store under ./data and a development JWT secret (loudly logged).
//
// `maoga admin set-status <user> <status> [reason]` changes a user's account status (app.Admin).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/maoga/maoga/cmd/maoga/app"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 && os.Args[1] == "admin" {
		return admin(os.Args[2:])
	}
	cfg, err := app.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "maoga: configuration:", err)
		return 2
	}
	log := cfg.NewLogger()
	slog.SetDefault(log)

	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	a, err := app.New(sigCtx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		log.Error("listen failed", "addr", cfg.Addr(), "err", err)
		_ = a.Shutdown(context.Background())
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- a.Start(ln) }()

	select {
	case <-sigCtx.Done():
		log.Info("signal received: shutting down", "timeout", cfg.ShutdownTimeout)
	case err := <-served:
		log.Error("server stopped", "err", err)
		_ = a.Shutdown(context.Background())
		return 1
	}
	stop() // a second signal now kills the process the default way

	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		return 1
	}
	if err := <-served; err != nil {
		log.Error("serve", "err", err)
		return 1
	}
	return 0
}

// admin runs `maoga admin ...` (app.Admin) with the server's environment.
func admin(args []string) int {
	cfg, err := app.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "maoga: configuration:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return app.Admin(ctx, cfg, args, os.Stdout, os.Stderr, cfg.NewLogger())
}
