// Package sharedstore runs the embedded FerretDB (SQLite) on a fixed address so that several maoga
// processes can share one database without MongoDB: a local cluster (deploy/cluster.sh through
// cmd/storeserver) and multi-node tests. models.Open embeds its own FerretDB per process on a random
// port, which the other nodes cannot reach; this one listens where they are told to connect
// (MONGODB_URI=mongodb://<addr>/).
package sharedstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is a running FerretDB.
type Server struct {
	uri  string
	stop context.CancelFunc
	done chan struct{}
}

// Start serves the SQLite databases under dir on addr ("127.0.0.1:27017"; port 0 picks one) until
// Stop. log receives FerretDB's errors.
func Start(ctx context.Context, dir, addr string, log *slog.Logger) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(abs) + "/",
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("sharedstore: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	s := &Server{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := f.Run(runCtx); err != nil {
			log.Error("ferretdb stopped", "err", err)
		}
	}()
	uri := make(chan string, 1)
	go func() { uri <- f.MongoDBURI() }() // blocks until the listener is bound
	select {
	case s.uri = <-uri:
		return s, nil
	case <-s.done:
		stop()
		return nil, errors.New("sharedstore: FerretDB stopped during start-up (address in use?)")
	case <-ctx.Done():
		stop()
		<-s.done
		return nil, ctx.Err()
	}
}

// URI is the MongoDB connection string of the server.
func (s *Server) URI() string { return s.uri }

// Stop ends the server and waits for it.
func (s *Server) Stop() {
	s.stop()
	<-s.done
}
