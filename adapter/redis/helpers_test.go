package redisadapter

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
)

// redisServer is a redis-server process of one test, on a loopback port of its own, so that the
// test can kill and restart it.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts redis-server on a free port; the test is skipped only when the binary is missing.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server); the Redis adapter tests need a real Redis")
	}
	r := &redisServer{t: t, port: freePort(t)}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start (re)starts the server on its port and waits until it answers.
func (r *redisServer) Start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if testing.Verbose() {
		r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	cl := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer cl.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := cl.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server abruptly (SIGKILL) and waits for it to exit.
func (r *redisServer) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *redisServer) Client(t *testing.T) *redis.Client {
	cl := redis.NewClient(&redis.Options{Addr: r.Addr(), DialTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// node is one Go socket.io server with the Redis adapter.
type node struct {
	io      *socketio.Server
	url     string
	cluster *Cluster
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startNode starts a Go socket.io server whose sockets join the rooms of their "rooms" query parameter
// (comma separated) and keep {"user": <"user" query parameter>} as data.
func startNode(t *testing.T, rs *redisServer, opts Options) *node {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.RequestsTimeout == 0 {
		opts.RequestsTimeout = 2 * time.Second
	}
	c := NewCluster(rs.Client(t), opts)
	io := socketio.NewServer(socketio.Options{
		Adapter: c.Factory(),
		Engine:  engineio.Options{PingInterval: 2 * time.Second, PingTimeout: 2 * time.Second},
		Logger:  opts.Logger,
	})
	io.OnConnection(func(s *socketio.Socket) {
		q := s.Handshake().Query
		if rooms := q.Get("rooms"); rooms != "" {
			s.Join(strings.Split(rooms, ",")...)
		}
		s.SetData(map[string]any{"user": q.Get("user")})
		s.On("ping-node", func(ev *socketio.Event) { _ = ev.Ack("pong") })
	})
	hs := httptest.NewServer(io)
	n := &node{io: io, url: hs.URL, cluster: c}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = io.Close(ctx)
		hs.Close()
	})
	return n
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a test client to url; rooms and user go to the query.
func dial(t *testing.T, url, user string, rooms ...string) *clienttest.Client {
	t.Helper()
	q := map[string][]string{"user": {user}}
	if len(rooms) > 0 {
		q["rooms"] = []string{strings.Join(rooms, ",")}
	}
	c, err := clienttest.Dial(ctxT(t, 5*time.Second), url, clienttest.Options{Query: q})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// The connection handler (rooms, data) runs after CONNECT is answered; a socket's handlers run in
	// order, so once "ping-node" is acknowledged it has run.
	if _, err := c.EmitWithAck(ctxT(t, 5*time.Second), "ping-node"); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
	return c
}

// waitServers waits until ServerCount of namespace "/" of n is want.
func waitServers(t *testing.T, n *node, want int) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("%d servers", want), func() bool {
		got, err := n.io.Of("/").Adapter().ServerCount(context.Background())
		return err == nil && got == want
	})
}

func eventually(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectEvent waits for event on c and returns its first argument as a string.
func expectEvent(t *testing.T, c *clienttest.Client, event string) string {
	t.Helper()
	args, err := c.Wait(ctxT(t, 3*time.Second), event)
	if err != nil {
		t.Fatalf("client %s: waiting for %q: %v", c.ID(), event, err)
	}
	if len(args) == 0 {
		return ""
	}
	return string(args[0])
}

// expectNoEvent checks that event does not reach c within d.
func expectNoEvent(t *testing.T, c *clienttest.Client, event string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if args, err := c.Wait(ctx, event); err == nil {
		t.Fatalf("client %s got unexpected %q %s", c.ID(), event, args)
	}
}

// waitRoomSubscribers waits, in sharded mode, until each room channel has want subscribers (the
// nodes subscribe room channels asynchronously when a room gets its first local member).
func waitRoomSubscribers(t *testing.T, rs *redisServer, opts Options, want map[string]int) {
	t.Helper()
	if !opts.Sharded {
		return
	}
	for room, n := range want {
		waitShardSubscribers(t, rs, "socket.io#/#"+room+"#", n)
	}
}

func waitShardSubscribers(t *testing.T, rs *redisServer, ch string, n int) {
	t.Helper()
	cl := rs.Client(t)
	eventually(t, 5*time.Second, "subscribers of "+ch, func() bool {
		res, err := cl.PubSubShardNumSub(context.Background(), ch).Result()
		return err == nil && res[ch] == int64(n)
	})
}

// countingHandler counts log records by message (and passes them on when verbose).
type countingHandler struct {
	mu     *sync.Mutex
	counts map[string]int
	next   slog.Handler
}

func newCountingLogger() (*slog.Logger, func(msg string) int) {
	h := &countingHandler{mu: &sync.Mutex{}, counts: map[string]int{}, next: quietLogger().Handler()}
	return slog.New(h), func(msg string) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.counts[msg]
	}
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Message]++
	h.mu.Unlock()
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
