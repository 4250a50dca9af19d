// Command storeserver runs the embedded FerretDB (SQLite files under DATA_DIR) on STORE_ADDR so that
// several maoga processes on one machine share one database without installing MongoDB:
//
//	DATA_DIR=./data/cluster STORE_ADDR=127.0.0.1:27017 go run ./cmd/storeserver
//	MONGODB_URI=mongodb://127.0.0.1:27017/ PORT=8081 go run ./cmd/maoga   # and 8082, 8083
//
// It prints the connection string on stdout and stops on SIGINT/SIGTERM. For development and local
// clusters only: production runs a real MongoDB.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/maoga/maoga/internal/sharedstore"
)

func main() {
	dir := envOr("DATA_DIR", "./data/shared")
	addr := envOr("STORE_ADDR", "127.0.0.1:27017")
	// FerretDB logs every unsupported command the driver tries (endSessions, …) as a warning: errors only.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := sharedstore.Start(startCtx, dir, addr, log)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storeserver:", err)
		os.Exit(1)
	}
	fmt.Println(s.URI())
	fmt.Fprintln(os.Stderr, "storeserver: serving", dir, "at", s.URI())
	<-ctx.Done()
	s.Stop()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
