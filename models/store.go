// Package models is the persistence layer: document types, their collections and indexes, and the
// Store that connects to MongoDB (MONGODB_URI) or, with no URI, to an embedded FerretDB v1 that keeps
// its data in SQLite files. The same driver code path serves both, so every query here must also work
// on FerretDB v1: no positional `$` updates, no arrayFilters, no transactions. Documents that several
// writers change at once carry a `version` field and are updated conditionally (see versioned.go).
//
// Lost updates on the embedded store: FerretDB v1 (SQLite) executes updateOne/updateMany/findAndModify
// as "read the matching documents, apply the operators in Go, write each whole document back". Two
// concurrent updates of one document, even of different fields, therefore lose one of them (measured:
// a $set of delivery.email racing a $set of status loses one side every time). Any write to an existing
// document that can race another write must hold LockDoc for that document (UpdateIfVersion,
// UpdateVersioned and the Users/Friendships/RefreshTokens methods do). For updateMany, lock a key all
// writers of those documents share, e.g. LockDoc(NotificationsCollection, userID) around every write
// of a user's notifications.
package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Config says where the data lives.
type Config struct {
	// URI of a MongoDB deployment (MONGODB_URI). Empty: start the embedded FerretDB.
	URI string
	// Database name; default "maoga".
	Database string
	// DataDir is the embedded store's SQLite directory (DATA_DIR); default "./data". Created if missing.
	DataDir string
	// Logger for the store's own lines; the embedded FerretDB only logs errors through it
	// (its warnings are about commands the driver tries and FerretDB v1 lacks, e.g. endSessions).
	Logger *slog.Logger
	// ConnectTimeout bounds start-up (embedded start, first ping, index creation); default 30s.
	ConnectTimeout time.Duration
	// Timeout (MONGODB_TIMEOUT) bounds every operation whose context has no deadline of its own, the
	// wait for a reachable server (server selection) and opening a connection; default
	// DefaultTimeout. With the database unreachable a request therefore fails after about this long
	// (as SERVICE_UNAVAILABLE, see IsUnavailable) instead of hanging for the driver's 30 s default.
	Timeout time.Duration
}

// DefaultTimeout is Config.Timeout when unset.
const DefaultTimeout = 5 * time.Second

// Store is an open connection to the database.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	uri      string
	embedded bool
	log      *slog.Logger

	outage *outageWatch

	stopFerret context.CancelFunc
	ferretDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// Open connects (starting the embedded FerretDB first when cfg.URI is empty), pings, and creates the
// registered indexes.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		cfg.Database = "maoga"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./data"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()

	s := &Store{uri: cfg.URI, log: cfg.Logger, outage: newOutageWatch(cfg.Logger)}
	if s.uri == "" {
		if err := s.startEmbedded(ctx, cfg); err != nil {
			return nil, err
		}
	}

	copts := clientOptions(s.uri, cfg.Timeout, s.outage)
	if s.embedded {
		// A fixed pool: SQLite takes one writer at a time, so connections past a few dozen add files
		// and lock contention, not throughput; and a pool opened in full at start keeps the process's
		// file descriptors flat under load (the soak's leak check compares them with a baseline).
		copts.SetMinPoolSize(EmbeddedPoolSize).SetMaxPoolSize(EmbeddedPoolSize)
	}
	client, err := mongo.Connect(copts)
	if err != nil {
		s.stopEmbedded()
		return nil, fmt.Errorf("models: connect: %w", err)
	}
	s.client = client
	s.db = client.Database(cfg.Database)

	if err := s.Ping(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("models: first ping: %w", err)
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	if s.embedded {
		s.log.Info("store ready (embedded FerretDB, SQLite)", "dataDir", cfg.DataDir, "database", cfg.Database)
	} else {
		s.log.Info("store ready (MongoDB)", "database", cfg.Database)
	}
	return s, nil
}

// clientOptions: the URI's own settings, then the fail-fast timeouts (they win over the URI's, so
// MONGODB_TIMEOUT is the one knob) and the outage watch on the driver's deployment monitoring.
// EmbeddedPoolSize is the driver's connection pool size for the embedded store (opened in full at
// start). Against MongoDB the URI's maxPoolSize/minPoolSize apply (driver default: 100, 0).
const EmbeddedPoolSize = 32

func clientOptions(uri string, timeout time.Duration, w *outageWatch) *options.ClientOptions {
	// Heartbeats notice an outage (and its end) without a request having to fail first; no more
	// often than the driver's floor of 500 ms, no less often than its default of 10 s.
	heartbeat := min(max(timeout, 500*time.Millisecond), 10*time.Second)
	return options.Client().ApplyURI(uri).SetAppName("maoga").
		SetTimeout(timeout).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetHeartbeatInterval(heartbeat).
		SetServerMonitor(w.monitor())
}

// startEmbedded runs FerretDB on a free loopback port with the SQLite handler and sets s.uri.
func (s *Store) startEmbedded(ctx context.Context, cfg Config) error {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("models: data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("models: data dir: %w", err)
	}
	if err := repairInterruptedDatabases(dir, s.log); err != nil {
		return err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
		Logger:    slog.New(minLevel{h: cfg.Logger.Handler(), min: slog.LevelError}).With("component", "ferretdb"),
	})
	if err != nil {
		return fmt.Errorf("models: start embedded FerretDB: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx) // returns nil when runCtx is cancelled; listener errors surface as a failed ping
	}()
	// MongoDBURI blocks until the listener is bound; do not wait for it past ctx or Run's end.
	uriCh := make(chan string, 1)
	go func() { uriCh <- f.MongoDBURI() }()
	select {
	case s.uri = <-uriCh:
	case <-done:
		stop()
		return errors.New("models: embedded FerretDB stopped during start-up")
	case <-ctx.Done():
		stop()
		<-done
		return fmt.Errorf("models: embedded FerretDB start: %w", ctx.Err())
	}
	s.embedded, s.stopFerret, s.ferretDone = true, stop, done
	return nil
}

func (s *Store) stopEmbedded() {
	if s.stopFerret != nil {
		s.stopFerret()
		<-s.ferretDone
	}
}

// DB is the application database.
func (s *Store) DB() *mongo.Database { return s.db }

// Collection is a shortcut for DB().Collection(name).
func (s *Store) Collection(name string) *mongo.Collection { return s.db.Collection(name) }

// Embedded reports whether the store runs the embedded FerretDB.
func (s *Store) Embedded() bool { return s.embedded }

// ErrStoreDown is the cause of requests refused while the store is in an outage (Down).
var ErrStoreDown = errors.New("models: database unreachable (outage)")

// Down reports whether the store is in an outage: the driver has seen no server that takes writes
// since it last saw one (the outage watch; heartbeats and failed operations move it). Callers may
// refuse work at once instead of each waiting the store's timeout for the same error.
func (s *Store) Down() bool { return s.outage.isDown() }

// Ping checks the database answers (used by /readyz).
func (s *Store) Ping(ctx context.Context) error {
	return s.client.Ping(ctx, readpref.Primary())
}

// Close disconnects and stops the embedded FerretDB. Safe to call more than once.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.outage.close()
		if s.client != nil {
			s.closeErr = s.client.Disconnect(ctx)
		}
		s.stopEmbedded()
	})
	return s.closeErr
}

// minLevel drops records below min: FerretDB logs every connection at info level.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{h: m.h.WithGroup(g), min: m.min} }
