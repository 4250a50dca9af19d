// Package storetest gives a package's tests a store of their own: the embedded one (FerretDB on
// SQLite, as the server runs without MONGODB_URI) in a temporary directory removed afterwards.
package storetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/maoga/maoga/models"
)

// Main is a package's TestMain: it opens the store in database name, sets *store to it, runs the
// tests, closes and removes the store and exits with the tests' code. The store's own log lines
// (outage warnings the fault tests provoke on purpose) are discarded: tests check returned errors.
func Main(m *testing.M, name string, store **models.Store) {
	os.Exit(run(m, name, store))
}

func run(m *testing.M, name string, store **models.Store) int {
	dir, err := os.MkdirTemp("", "maoga-"+name+"-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	s, err := models.Open(context.Background(), models.Config{DataDir: dir, Database: name,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest: opening the embedded store:", err)
		return 1
	}
	defer s.Close(context.Background())
	*store = s
	return m.Run()
}
