package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdio "io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/maoga/maoga/clienttest"
)

// logCounter counts log records by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }
func (h *logCounter) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

func TestLimitsEventRate(t *testing.T) {
	logs := &logCounter{}
	io, url := newServer(t, Options{Logger: slog.New(logs), Limits: Limits{EventsPerSecond: 10, EventBurst: 20}})
	var got atomic.Int64
	reasons := make(chan string, 1)
	io.OnConnection(func(s *Socket) {
		s.On("hit", func(*Event) { got.Add(1) })
		s.OnDisconnect(func(r string) { reasons <- r })
	})
	c := dial(t, url, clienttest.Options{})
	// 25 events at once: the burst (20) passes, the rest is dropped (a few ms may refill one token).
	for i := 0; i < 25; i++ {
		_ = c.Emit("hit", i)
	}
	time.Sleep(300 * time.Millisecond)
	if n := got.Load(); n < 20 || n > 22 {
		t.Fatalf("%d of 25 events delivered, want the burst of 20 (+ refill)", n)
	}
	// after a pause the socket has budget again
	before := got.Load()
	_ = c.Emit("hit", "again")
	eventually(t, "event after refill", func() bool { return got.Load() == before+1 })
	select {
	case <-c.Done():
		t.Fatal("client disconnected before a sustained flood")
	default:
	}
	// a sustained flood (more than EventBurst drops in the window) disconnects with a reason
	for i := 0; i < 200; i++ {
		if c.Emit("hit", i) != nil {
			break
		}
	}
	reason, err := c.WaitDisconnect(ctxT(t))
	var ce *clienttest.ConnectError
	if reason != "io server disconnect" || !errors.As(err, &ce) || ce.Message != "Rate limit exceeded" || !strings.Contains(string(ce.Data), `"RATE_LIMITED"`) {
		t.Fatalf("client saw %q %v, want io server disconnect + connect_error Rate limit exceeded", reason, err)
	}
	if r := recv(t, reasons); r != ReasonRateLimited {
		t.Fatalf("server reason %q", r)
	}
	if n := logs.count("socketio: events dropped by rate limit"); n != 1 {
		t.Fatalf("drops logged %d times, want once per window", n)
	}
	if n := logs.count("socketio: socket disconnected for sustained event flood"); n != 1 {
		t.Fatalf("kick logged %d times", n)
	}
	// other clients are unaffected
	c2 := dial(t, url, clienttest.Options{})
	before = got.Load()
	_ = c2.Emit("hit", 1)
	eventually(t, "other client's event", func() bool { return got.Load() == before+1 })
}

func TestLimitsRoomsPerSocket(t *testing.T) {
	logs := &logCounter{}
	io, url := newServer(t, Options{Logger: slog.New(logs), Limits: Limits{MaxRoomsPerSocket: 5}})
	conns := connected(io.Of("/"))
	dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	if err := s.Join("a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Join("a", "b", "c", "d", "e", s.ID()); err != nil { // already-joined rooms and its own room don't count
		t.Fatalf("join up to the limit: %v", err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Join("f", "g"); !errors.Is(err, ErrTooManyRooms) {
			t.Fatalf("join past the limit: %v", err)
		}
	}
	if n := len(s.Rooms()); n != 6 { // 5 + its own
		t.Fatalf("rooms %v after refused joins", s.Rooms())
	}
	s.Leave("a")
	if err := s.Join("f"); err != nil {
		t.Fatalf("join after a leave: %v", err)
	}
	if n := logs.count("socketio: join refused by room limit"); n != 1 {
		t.Fatalf("10 refusals logged %d times, want once", n)
	}
}

// rawSIO is a bare websocket speaking Engine.IO by hand, for several namespaces on one connection.
type rawSIO struct {
	t    *testing.T
	conn net.Conn
	rw   stdio.ReadWriter
}

type splitRW struct {
	stdio.Reader
	stdio.Writer
}

func dialSIO(t *testing.T, url string) *rawSIO {
	t.Helper()
	u := strings.Replace(url, "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	conn, br, _, err := ws.Dial(ctxT(t), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSIO{t: t, conn: conn, rw: conn}
	if br != nil {
		s.rw = splitRW{stdio.MultiReader(br, conn), conn}
	}
	if open := s.read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open %q", open)
	}
	return s
}

func (s *rawSIO) write(text string) {
	s.t.Helper()
	if err := wsutil.WriteClientText(s.rw, []byte(text)); err != nil {
		s.t.Fatal(err)
	}
}

// read returns the next text message, answering pings.
func (s *rawSIO) read() string {
	s.t.Helper()
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, op, err := wsutil.ReadServerData(s.rw)
		if err != nil {
			s.t.Fatalf("read: %v", err)
		}
		if op == ws.OpText && string(b) == "2" {
			s.write("3")
			continue
		}
		return string(b)
	}
}

func TestLimitsNamespacesPerClient(t *testing.T) {
	logs := &logCounter{}
	io, url := newServer(t, Options{Logger: slog.New(logs), Limits: Limits{MaxNamespacesPerClient: 3}})
	io.OfMatch(func(string, json.RawMessage) bool { return true })
	c := dialSIO(t, url)
	for i := 0; i < 3; i++ {
		c.write(fmt.Sprintf("40/n%d,", i))
		if got := c.read(); !strings.HasPrefix(got, fmt.Sprintf("40/n%d,{", i)) {
			t.Fatalf("connect %d: %q", i, got)
		}
	}
	for i := 3; i < 50; i++ {
		c.write(fmt.Sprintf("40/n%d,", i))
		if got, want := c.read(), fmt.Sprintf(`44/n%d,{"message":"Too many namespaces"}`, i); got != want {
			t.Fatalf("connect %d: %q, want %q", i, got, want)
		}
	}
	if n := logs.count("socketio: connect refused by namespace limit"); n != 1 {
		t.Fatalf("47 refusals logged %d times", n)
	}
	// leaving one frees a slot
	c.write("41/n0,")
	c.write("40/x,")
	if got := c.read(); !strings.HasPrefix(got, "40/x,{") {
		t.Fatalf("connect after leave: %q", got)
	}
}

// TestLimitsNamespaceFlood: a client connecting to thousands of namespaces, one after the other, through a
// matcher that accepts anything, creates no more than MaxNamespaces; invalid names create nothing.
func TestLimitsNamespaceFlood(t *testing.T) {
	logs := &logCounter{}
	io, url := newServer(t, Options{Logger: slog.New(logs), Limits: Limits{MaxNamespaces: 100}})
	io.OfMatch(func(name string, _ json.RawMessage) bool { return strings.HasPrefix(name, "/dyn-") })
	c := dialSIO(t, url)
	accepted := 0
	for i := 0; i < 2000; i++ {
		c.write(fmt.Sprintf("40/dyn-%d,", i))
		got := c.read()
		switch {
		case strings.HasPrefix(got, "40/dyn-"):
			accepted++
			c.write(fmt.Sprintf("41/dyn-%d,", i))
		case strings.HasPrefix(got, "44/dyn-") && strings.Contains(got, "Invalid namespace"):
		default:
			t.Fatalf("connect %d: %q", i, got)
		}
	}
	for i := 0; i < 2000; i++ {
		c.write(fmt.Sprintf("40/other-%d,", i))
		if got := c.read(); !strings.Contains(got, "Invalid namespace") {
			t.Fatalf("invalid namespace %d: %q", i, got)
		}
	}
	if n := len(io.Namespaces()); n != 100 || accepted != 99 {
		t.Fatalf("%d namespaces, %d accepted; want 100 (\"/\" + 99 dynamic)", n, accepted)
	}
	if n := logs.count("socketio: dynamic namespace refused by namespace limit"); n != 1 {
		t.Fatalf("refusals logged %d times", n)
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	if l.EventsPerSecond != 100 || l.EventBurst != 200 || l.MaxRoomsPerSocket != 1000 || l.MaxNamespacesPerClient != 32 || l.MaxNamespaces != 10_000 {
		t.Fatalf("defaults %+v", l)
	}
	off := Limits{EventsPerSecond: -1, MaxRoomsPerSocket: -1, MaxNamespacesPerClient: -1, MaxNamespaces: -1}.withDefaults()
	if off.EventsPerSecond != -1 || off.MaxRoomsPerSocket != -1 {
		t.Fatalf("negative must stay off: %+v", off)
	}
}
