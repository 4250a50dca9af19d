// Command conformance starts the reference servers the official test suites run against:
//
//	go run ./cmd/conformance -suite engineio   # engine.io-protocol test-suite, :3000
//	go run ./cmd/conformance -suite socketio   # socket.io-protocol test-suite, :3000
//	go run ./cmd/conformance -suite client     # socket.io-client's own test suite, :3210
//
// -addr overrides the listen address (e.g. -addr :3002 for development runs).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	suite := flag.String("suite", "socketio", "engineio | socketio | client")
	addr := flag.String("addr", "", "listen address (default :3000, or :3210 for -suite client)")
	flag.Parse()

	var err error
	switch *suite {
	case "engineio":
		err = runEngineIOSuite(orDefault(*addr, ":3000"))
	case "socketio":
		err = runSocketIOSuite(orDefault(*addr, ":3000"))
	case "client":
		err = runClientSuite(orDefault(*addr, ":3210"))
	default:
		err = fmt.Errorf("unknown suite %q (engineio | socketio | client)", *suite)
	}
	if err != nil {
		slog.Error("conformance", "suite", *suite, "err", err)
		os.Exit(1)
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serve runs h on addr until SIGINT/SIGTERM, then calls shutdown.
func serve(addr string, h http.Handler, shutdown func(ctx context.Context) error) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("conformance server listening", "addr", addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if shutdown != nil {
		if err := shutdown(ctx); err != nil {
			slog.Warn("conformance: shutdown", "err", err)
		}
	}
	return srv.Shutdown(ctx)
}
