package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/friends"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/users"
)

var testSecret = []byte("test-secret-for-socket-handlers")

// store is shared by the package's tests (FerretDB start-up is the slow part);
// each test registers its own users.
var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "socket_test", &store) }

// env is a running server: Socket.IO with the platform handlers, the real
// services on the embedded store, on a free port.
type env struct {
	t        *testing.T
	url      string
	auth     *auth.Service
	users    *models.Users
	friends  *friends.Service
	notes    *notifications.Service
	presence presence.Service
	bus      *events.Memory
	nsp      *socketio.Namespace

	mu         sync.Mutex
	handshakes map[string]int           // OnHandshake results
	ready      map[string]chan struct{} // socket id → closed when its handlers are registered
}

// readyFeature runs last on every connection: once it ran, the socket's
// handlers are registered. Tests wait for it before emitting, because
// server/socketio may dispatch an event that arrives right after the CONNECT
// answer before the connection handlers ran (its known bug, see
// clienttest/race_test.go).
func (e *env) readyFeature(c *socket.Conn) {
	close(e.readyChan(c.Socket.ID()))
}

func (e *env) readyChan(id string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := e.ready[id]
	if ch == nil {
		ch = make(chan struct{})
		e.ready[id] = ch
	}
	return ch
}

func (e *env) handshakeCount(result string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handshakes[result]
}

func newEnv(t *testing.T, features ...socket.Feature) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	bus := events.NewMemory(events.MemoryOptions{Logger: log})
	authSvc, err := auth.New(store, auth.Config{Secret: testSecret, BcryptCost: bcrypt.MinCost}, bus, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	io := socketio.NewServer(socketio.Options{Logger: log})
	nsp := io.Of("/")
	emitter := socket.Emitter(nsp)
	backend := presence.FromModels(models.NewUsers(store), models.NewFriendships(store))
	pres := presence.NewLocal(presence.LocalOptions{Users: backend, Friends: backend, Emitter: emitter})
	usersSvc := users.New(users.Options{Store: store, Presence: pres, Emitter: emitter, Events: bus, Logger: log})
	friendsSvc := friends.New(store, usersSvc, bus, log)
	notes := notifications.New(notifications.Options{Store: models.NewNotifications(store), Users: models.NewUsers(store),
		Emitter: emitter, Logger: log})
	notes.Subscribe(bus)
	e := &env{t: t, handshakes: map[string]int{}, ready: map[string]chan struct{}{}}
	features = append(features, e.readyFeature)
	socket.Register(nsp, socket.Options{OnHandshake: func(r string) {
		e.mu.Lock()
		e.handshakes[r]++
		e.mu.Unlock()
	},
		Tokens: authSvc, Users: models.NewUsers(store), Presence: pres, Logger: log,
		Features: features, HandlerTimeout: 300 * time.Millisecond})

	srv := httptest.NewServer(io)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = io.Close(ctx)
		srv.Close()
		_ = bus.Close(ctx)
	})
	e.url, e.auth, e.users, e.friends, e.notes, e.presence, e.bus = srv.URL, authSvc, models.NewUsers(store), friendsSvc, notes, pres, bus
	e.nsp = nsp
	return e
}

var userSeq atomic.Int64

type user struct {
	ID    string
	Name  string
	Token string
}

// register creates an account and waits for its welcome notification, so
// later counts are predictable.
func (e *env) register(name string) user {
	e.t.Helper()
	n := userSeq.Add(1)
	uname := fmt.Sprintf("%s%d_%d", name, n, time.Now().UnixNano()%1e6)
	sess, err := e.auth.Register(context.Background(), auth.RegisterInput{
		Username: uname, Email: uname + "@example.com", Password: "password123", DisplayName: name})
	if err != nil {
		e.t.Fatal(err)
	}
	u := user{ID: sess.User.ID.Hex(), Name: name, Token: sess.AccessToken}
	e.eventually(func() bool {
		c, err := e.notes.Counts(context.Background(), u.ID)
		return err == nil && c.Total == 1
	}, "welcome notification of "+name)
	return u
}

func (e *env) befriend(a, b user) {
	e.t.Helper()
	ctx := context.Background()
	f, err := e.friends.Request(ctx, a.ID, b.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.friends.Accept(ctx, b.ID, f.ID.Hex()); err != nil {
		e.t.Fatal(err)
	}
	// The request and the acceptance each notify someone: wait for both so
	// that later notification counts are predictable.
	e.waitTotal(b, 2)
	e.waitTotal(a, 2)
}

func (e *env) waitTotal(u user, total int64) {
	e.t.Helper()
	e.eventually(func() bool {
		c, err := e.notes.Counts(context.Background(), u.ID)
		return err == nil && c.Total == total
	}, fmt.Sprintf("%d notifications of %s", total, u.Name))
}

func (e *env) eventually(cond func() bool, what string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) dial(opts clienttest.Options) (*clienttest.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, e.url, opts)
	if err != nil {
		return nil, err
	}
	e.t.Cleanup(func() { _ = c.Close() })
	select {
	case <-e.readyChan(c.ID()):
	case <-ctx.Done():
		e.t.Fatalf("connection handlers of %s did not run", c.ID())
	}
	return c, nil
}

func (e *env) connect(u user) *clienttest.Client {
	e.t.Helper()
	c, err := e.dial(clienttest.Options{Auth: map[string]any{"token": u.Token}})
	if err != nil {
		e.t.Fatalf("connect %s: %v", u.Name, err)
	}
	return c
}

func ctx5() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// next decodes the next event named name into v.
func next(t *testing.T, c *clienttest.Client, name string, v any) {
	t.Helper()
	ctx, cancel := ctx5()
	defer cancel()
	args, err := c.Wait(ctx, name)
	if err != nil {
		t.Fatalf("waiting for %s: %v", name, err)
	}
	if len(args) == 0 {
		t.Fatalf("%s without payload", name)
	}
	if err := json.Unmarshal(args[0], v); err != nil {
		t.Fatalf("%s payload %s: %v", name, args[0], err)
	}
}

func connectError(t *testing.T, err error) string {
	t.Helper()
	var ce *clienttest.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("want a connect error, got %v", err)
	}
	return ce.Message
}
