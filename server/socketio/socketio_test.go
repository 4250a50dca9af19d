package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdio "io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/engineio"
)

func newServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.Engine.PingInterval == 0 {
		opts.Engine.PingInterval = 2 * time.Second
		opts.Engine.PingTimeout = 2 * time.Second
	}
	io := NewServer(opts)
	hs := httptest.NewServer(io)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = io.Close(ctx)
		hs.Close()
	})
	return io, hs.URL
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opts clienttest.Options) *clienttest.Client {
	t.Helper()
	c, err := clienttest.Dial(ctxT(t), url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", opts.Namespace, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func wait(t *testing.T, c *clienttest.Client, event string) []json.RawMessage {
	t.Helper()
	args, err := c.Wait(ctxT(t), event)
	if err != nil {
		t.Fatalf("wait %q: %v", event, err)
	}
	return args
}

// eventually polls cond for up to 3s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// connected returns a channel receiving the sockets of nsp as they connect.
func connected(nsp *Namespace) chan *Socket {
	ch := make(chan *Socket, 16)
	nsp.OnConnection(func(s *Socket) { ch <- s })
	return ch
}

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(3 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}

func TestNamespacesStaticDynamicAndInvalid(t *testing.T) {
	io, url := newServer(t, Options{})
	static := connected(io.Of("/static"))
	io.OfMatch(func(name string, auth json.RawMessage) bool { return strings.HasPrefix(name, "/dyn-") })
	dynamic := make(chan *Socket, 1)
	io.OnNewNamespace(func(n *Namespace) {
		if strings.HasPrefix(n.Name(), "/dyn-") {
			n.OnConnection(func(s *Socket) { dynamic <- s })
		}
	})

	c := dial(t, url, clienttest.Options{Namespace: "/static"})
	if s := recv(t, static); s.ID() != c.ID() || s.Namespace().Name() != "/static" {
		t.Fatalf("socket %s in %s, client id %s", s.ID(), s.Namespace().Name(), c.ID())
	}
	dial(t, url, clienttest.Options{Namespace: "/dyn-42"})
	if s := recv(t, dynamic); s.Namespace().Name() != "/dyn-42" {
		t.Fatalf("dynamic namespace %s", s.Namespace().Name())
	}
	_, err := clienttest.Dial(ctxT(t), url, clienttest.Options{Namespace: "/nope"})
	var ce *clienttest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "Invalid namespace" {
		t.Fatalf("unknown namespace: %v", err)
	}
}

func TestMiddlewareRejectAndAuth(t *testing.T) {
	io, url := newServer(t, Options{})
	var order []string
	var mu sync.Mutex
	nsp := io.Of("/private")
	nsp.Use(func(s *Socket) error {
		mu.Lock()
		order = append(order, "first")
		mu.Unlock()
		var auth struct{ Token string }
		if err := json.Unmarshal(s.Handshake().Auth, &auth); err != nil || auth.Token == "" {
			return &ConnectError{Message: "unauthorized", Data: map[string]any{"code": 401}}
		}
		if auth.Token == "plain" {
			return errors.New("plain refusal")
		}
		s.SetData(auth.Token)
		return nil
	})
	nsp.Use(func(s *Socket) error {
		mu.Lock()
		order = append(order, "second")
		mu.Unlock()
		return nil
	})
	conns := connected(nsp)

	_, err := clienttest.Dial(ctxT(t), url, clienttest.Options{Namespace: "/private"})
	var ce *clienttest.ConnectError
	if !errors.As(err, &ce) || ce.Message != "unauthorized" || string(ce.Data) != `{"code":401}` {
		t.Fatalf("reject with data: %v (%+v)", err, ce)
	}
	_, err = clienttest.Dial(ctxT(t), url, clienttest.Options{Namespace: "/private", Auth: map[string]string{"token": "plain"}})
	if !errors.As(err, &ce) || ce.Message != "plain refusal" || ce.Data != nil {
		t.Fatalf("plain error: %v", err)
	}
	dial(t, url, clienttest.Options{Namespace: "/private", Auth: map[string]string{"token": "t1"}})
	s := recv(t, conns)
	if s.Data() != "t1" || string(s.Handshake().Auth) != `{"token":"t1"}` {
		t.Fatalf("data %v auth %s", s.Data(), s.Handshake().Auth)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, []string{"first", "first", "first", "second"}) {
		t.Fatalf("middleware order %v", order)
	}
}

func TestHandshakeDetails(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	dial(t, url, clienttest.Options{Query: map[string][]string{"room": {"r1"}}})
	s := recv(t, conns)
	h := s.Handshake()
	if h.Headers.Get("Host") == "" || h.Query.Get("room") != "r1" || h.Address != "127.0.0.1" || h.Issued == 0 || h.Time == "" || !strings.Contains(h.URL, "/socket.io/") || string(h.Auth) != "{}" {
		t.Fatalf("handshake %+v", h)
	}
	// Behind a trusted proxy the engine's ClientAddress is the socket's handshake address.
	io2, url2 := newServer(t, Options{Engine: engineio.Options{ClientAddress: func(r *http.Request) string {
		return r.Header.Get("X-Forwarded-For")
	}}})
	conns2 := connected(io2.Of("/"))
	dial(t, url2, clienttest.Options{Header: http.Header{"X-Forwarded-For": {"198.51.100.23"}}})
	if a := recv(t, conns2).Handshake().Address; a != "198.51.100.23" {
		t.Fatalf("address behind a proxy %q", a)
	}
}

func TestConnectTimeout(t *testing.T) {
	_, url := newServer(t, Options{ConnectTimeout: 150 * time.Millisecond})
	// An engine connection that never joins a namespace is closed.
	var closed sync.WaitGroup
	closed.Add(1)
	start := time.Now()
	raw := dialRaw(t, url)
	go func() { defer closed.Done(); raw.drain() }()
	closed.Wait()
	if d := time.Since(start); d < 140*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

type point struct {
	X, Y int
	Tag  string `json:"tag"`
}

func TestEventsDecodeAndAcks(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	got := make(chan string, 4)
	s.On("move", func(ev *Event) {
		var p point
		var n int
		var missing string
		if err := ev.Decode(&p, &n, &missing); err != nil {
			got <- "err " + err.Error()
			return
		}
		got <- p.Tag + "/" + string(rune('0'+p.X)) + "/" + string(rune('0'+n))
		if ev.HasAck() {
			_ = ev.Ack("ok", p)
			if err := ev.Ack("again"); !errors.Is(err, ErrAlreadyAcked) {
				got <- "second ack sent"
			}
		}
	})
	var anyNames []string
	s.OnAny(func(name string, ev *Event) { anyNames = append(anyNames, name) })
	_ = c.Emit("move", point{X: 1, Y: 2, Tag: "a"}, 3)
	if v := recv(t, got); v != "a/1/3" {
		t.Fatal(v)
	}
	reply, err := c.EmitWithAck(ctxT(t), "move", point{X: 4, Tag: "b"}, 5)
	if err != nil || len(reply) != 2 || string(reply[0]) != `"ok"` || !strings.Contains(string(reply[1]), `"tag":"b"`) {
		t.Fatalf("ack reply %s, %v", reply, err)
	}
	if v := recv(t, got); v != "b/4/5" {
		t.Fatal(v)
	}
	if len(anyNames) != 2 {
		t.Fatalf("OnAny saw %v", anyNames)
	}

	// Server → client with ack, and a timeout when the client stays silent.
	c.SetAckHandler(func(event string, args []json.RawMessage) []any {
		if event == "silent" {
			return nil
		}
		return []any{"pong", json.RawMessage(args[0])}
	})
	r, err := s.EmitWithAck(ctxT(t), "ping", 42)
	if err != nil || len(r) != 2 || string(r[0]) != `"pong"` || string(r[1]) != "42" {
		t.Fatalf("server ack: %s %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "silent"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent client: %v", err)
	}
	if n := s.pendingAcks(); n != 0 {
		t.Fatalf("ack table holds %d entries after the timeout", n)
	}
	if err := s.Emit("disconnect"); err == nil {
		t.Fatal("reserved event emitted")
	}
}

func TestBinaryBothWays(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	s.On("upload", func(ev *Event) {
		var file struct {
			Name string `json:"name"`
			Body []byte `json:"body"`
		}
		var extra []byte
		if err := ev.Decode(&file, &extra); err != nil {
			return
		}
		_ = s.Emit("download", map[string]any{"name": file.Name, "body": append(file.Body, extra...)})
		_ = ev.Ack([]byte{9, 9})
	})
	reply, err := c.EmitWithAck(ctxT(t), "upload", map[string]any{"name": "f", "body": []byte{1, 2}}, []byte{3})
	if err != nil {
		t.Fatal(err)
	}
	var ackBytes []byte
	if err := json.Unmarshal(reply[0], &ackBytes); err != nil || !slices.Equal(ackBytes, []byte{9, 9}) {
		t.Fatalf("binary ack %s: %v", reply[0], err)
	}
	ev, err := c.WaitEvent(ctxT(t), "download")
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Attachments) != 1 || !slices.Equal(ev.Attachments[0], []byte{1, 2, 3}) {
		t.Fatalf("download attachments %v (%s)", ev.Attachments, ev.Data)
	}
	// Server → client binary ack reply.
	c.SetAckHandler(func(string, []json.RawMessage) []any { return []any{[]byte{7}} })
	r, err := s.EmitWithAck(ctxT(t), "give")
	var b []byte
	if err != nil || json.Unmarshal(r[0], &b) != nil || !slices.Equal(b, []byte{7}) {
		t.Fatalf("binary reply %s %v", r, err)
	}
}

// room fixture: four clients a, b, c, d; a in r1, b in r1+r2, c in r2, d in none.
func roomFixture(t *testing.T, opts Options) (*Server, map[string]*clienttest.Client, map[string]*Socket) {
	io, url := newServer(t, opts)
	conns := connected(io.Of("/"))
	clients := map[string]*clienttest.Client{}
	socks := map[string]*Socket{}
	rooms := map[string][]string{"a": {"r1"}, "b": {"r1", "r2"}, "c": {"r2"}, "d": nil}
	for _, name := range []string{"a", "b", "c", "d"} {
		clients[name] = dial(t, url, clienttest.Options{})
		s := recv(t, conns)
		s.Join(rooms[name]...)
		socks[name] = s
	}
	return io, clients, socks
}

var markers atomic.Int64

// receivedBy emits a marker through op and returns who got it.
func receivedBy(t *testing.T, clients map[string]*clienttest.Client, emit func(event string) error) []string {
	t.Helper()
	marker := fmt.Sprintf("m%d", markers.Add(1))
	if err := emit(marker); err != nil {
		t.Fatal(err)
	}
	// a final broadcast to everyone marks the end of the stream
	time.Sleep(50 * time.Millisecond)
	var got []string
	for name, c := range clients {
		if c.Pending(marker) > 0 {
			got = append(got, name)
		}
		if c.Pending(marker) > 1 {
			t.Fatalf("%s received %d copies", name, c.Pending(marker))
		}
	}
	sort.Strings(got)
	return got
}

func TestRoomsAndBroadcast(t *testing.T) {
	io, clients, socks := roomFixture(t, Options{})
	cases := []struct {
		name string
		emit func(ev string) error
		want []string
	}{
		{"all", func(ev string) error { return io.Emit(ev) }, []string{"a", "b", "c", "d"}},
		{"to one room", func(ev string) error { return io.To("r1").Emit(ev) }, []string{"a", "b"}},
		{"union", func(ev string) error { return io.To("r1").In("r2").Emit(ev) }, []string{"a", "b", "c"}},
		{"union minus excluded", func(ev string) error { return io.To("r1", "r2").Except("r2").Emit(ev) }, []string{"a"}},
		{"except only", func(ev string) error { return io.Except("r1").Emit(ev) }, []string{"c", "d"}},
		{"from socket excludes sender", func(ev string) error { return socks["b"].To("r1", "r2").Emit(ev) }, []string{"a", "c"}},
		{"socket broadcast", func(ev string) error { return socks["a"].Broadcast().Emit(ev) }, []string{"b", "c", "d"}},
		{"to a socket id", func(ev string) error { return io.To(socks["d"].ID()).Emit(ev) }, []string{"d"}},
		{"volatile", func(ev string) error { return io.Volatile().To("r2").Emit(ev) }, []string{"b", "c"}},
		{"local", func(ev string) error { return io.Local().To("r1").Emit(ev) }, []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := receivedBy(t, clients, tc.emit); !slices.Equal(got, tc.want) {
				t.Fatalf("received by %v, want %v", got, tc.want)
			}
		})
	}
	rooms := socks["b"].Rooms()
	sort.Strings(rooms)
	if want := []string{socks["b"].ID(), "r1", "r2"}; !slices.Equal(rooms, sortedCopy(want)) {
		t.Fatalf("rooms of b %v", rooms)
	}
	socks["b"].Leave("r1")
	if got := receivedBy(t, clients, func(ev string) error { return io.To("r1").Emit(ev) }); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after leave: %v", got)
	}
}

func sortedCopy(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

func TestFetchJoinLeaveDisconnectSockets(t *testing.T) {
	io, clients, socks := roomFixture(t, Options{})
	socks["c"].SetData(map[string]string{"user": "carol"})
	found, err := io.In("r2").FetchSockets(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range found {
		ids = append(ids, r.ID())
		if r.ID() == socks["c"].ID() && r.Data().(map[string]string)["user"] != "carol" {
			t.Fatalf("data %v", r.Data())
		}
		if !slices.Contains(r.Rooms(), "r2") || r.Handshake().Address == "" {
			t.Fatalf("details %+v", r)
		}
	}
	if !slices.Equal(sortedCopy(ids), sortedCopy([]string{socks["b"].ID(), socks["c"].ID()})) {
		t.Fatalf("fetched %v", ids)
	}
	_ = io.Except("r1").SocketsJoin("new")
	if got := receivedBy(t, clients, func(ev string) error { return io.To("new").Emit(ev) }); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("joined: %v", got)
	}
	_ = io.SocketsLeave("new")
	if got := receivedBy(t, clients, func(ev string) error { return io.To("new").Emit(ev) }); len(got) != 0 {
		t.Fatalf("left: %v", got)
	}
	_ = found[0].Emit("direct")
	// Remote-socket style operations go through the adapter too.
	disc := make(chan string, 4)
	for _, s := range socks {
		s.OnDisconnect(func(reason string) { disc <- reason })
	}
	_ = io.In("r1").DisconnectSockets(false)
	for i := 0; i < 2; i++ {
		if r := recv(t, disc); r != "server namespace disconnect" {
			t.Fatalf("reason %q", r)
		}
	}
	eventually(t, "two sockets left", func() bool { return len(io.Of("/").Sockets()) == 2 })
}

func TestBroadcastWithAck(t *testing.T) {
	io, clients, socks := roomFixture(t, Options{})
	for name, c := range clients {
		name := name
		c.SetAckHandler(func(event string, args []json.RawMessage) []any {
			if name == "d" {
				return nil // never answers
			}
			return []any{name}
		})
	}
	replies, err := io.To("r1", "r2").EmitWithAck(ctxT(t), "q")
	if err != nil || len(replies) != 3 {
		t.Fatalf("replies %s err %v", replies, err)
	}
	var names []string
	for _, r := range replies {
		var n string
		_ = json.Unmarshal(r[0], &n)
		names = append(names, n)
	}
	if !slices.Equal(sortedCopy(names), []string{"a", "b", "c"}) {
		t.Fatalf("names %v", names)
	}
	replies, err = io.Timeout(100*time.Millisecond).EmitWithAck(context.Background(), "q")
	if !errors.Is(err, adapter.ErrTimeout) || len(replies) != 3 {
		t.Fatalf("with a silent client: %d replies, %v", len(replies), err)
	}
	// The silent client's ack entry expires with the timeout: nothing accumulates.
	eventually(t, "ack table empty", func() bool { return socks["d"].pendingAcks() == 0 })
	empty, err := io.To("nobody").EmitWithAck(ctxT(t), "q")
	if err != nil || len(empty) != 0 {
		t.Fatalf("no receivers: %v %v", empty, err)
	}
}

func TestDisconnectReasons(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	type result struct {
		disconnecting, disconnect string
		rooms                     []string
	}
	track := func(s *Socket) chan result {
		ch := make(chan result, 1)
		var r result
		s.OnDisconnecting(func(reason string) { r.disconnecting = reason; r.rooms = s.Rooms() })
		s.OnDisconnect(func(reason string) { r.disconnect = reason; ch <- r })
		return ch
	}
	cases := []struct {
		reason string
		do     func(c *clienttest.Client, s *Socket)
	}{
		{"client namespace disconnect", func(c *clienttest.Client, s *Socket) { _ = c.Close() }},
		{"transport close", func(c *clienttest.Client, s *Socket) { c.CloseTransport() }},
		{"server namespace disconnect", func(c *clienttest.Client, s *Socket) { s.Disconnect(false) }},
		{"server namespace disconnect", func(c *clienttest.Client, s *Socket) { s.Disconnect(true) }},
		{"parse error", func(c *clienttest.Client, s *Socket) { _ = c.WriteEngineText("4abc") }},
		{"forced close", func(c *clienttest.Client, s *Socket) { _ = c.WriteEngineText(`42/other,["x"]`) }},
	}
	for _, tc := range cases {
		c := dial(t, url, clienttest.Options{})
		s := recv(t, conns)
		s.Join("room")
		ch := track(s)
		tc.do(c, s)
		r := recv(t, ch)
		if r.disconnect != tc.reason || r.disconnecting != tc.reason || !slices.Contains(r.rooms, "room") {
			t.Fatalf("want %q, got %+v", tc.reason, r)
		}
		if s.Connected() || s.Rooms() != nil {
			t.Fatalf("%s: still connected or in rooms %v", tc.reason, s.Rooms())
		}
	}
	// server shutting down
	c := dial(t, url, clienttest.Options{})
	_ = c
	ch := track(recv(t, conns))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = io.Close(ctx)
	if r := recv(t, ch); r.disconnect != "server shutting down" {
		t.Fatalf("shutdown reason %+v", r)
	}
}

func TestSlowHandlerKeepsHeartbeatAndOrder(t *testing.T) {
	io, url := newServer(t, Options{
		Engine: engineio.Options{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond},
	})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	seen := orderRecorder(s, 0, 400*time.Millisecond) // a slow DB call: several ping intervals
	for i := 0; i < 10; i++ {
		_ = c.Emit("n", i)
	}
	if got := recv(t, seen); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("order %v", got)
	}
	if !s.Connected() {
		t.Fatal("a slow handler let the heartbeat time out")
	}
}

// TestInboxBound crosses the inbox limit: the reader waits (backpressure) and nothing is lost.
func TestInboxBound(t *testing.T) {
	io, url := newServer(t, Options{InboxSize: 2})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	var maxQueued atomic.Int64
	s.OnAny(func(string, *Event) {
		s.inMu.Lock()
		if n := int64(len(s.queue)); n > maxQueued.Load() {
			maxQueued.Store(n)
		}
		s.inMu.Unlock()
	})
	seen := orderRecorder(s, 0, 200*time.Millisecond)
	for i := 0; i < 10; i++ {
		_ = c.Emit("n", i)
	}
	if got := recv(t, seen); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("order %v", got)
	}
	if m := maxQueued.Load(); m > 2 || m == 0 {
		t.Fatalf("inbox held %d packets, limit 2", m)
	}
}

// orderRecorder handles "n" events, sleeping on slowN, and sends the order once 9 is seen.
func orderRecorder(s *Socket, slowN int, d time.Duration) chan []int {
	out := make(chan []int, 1)
	var seen []int
	s.On("n", func(ev *Event) {
		var n int
		_ = ev.Decode(&n)
		if n == slowN {
			time.Sleep(d)
		}
		seen = append(seen, n)
		if n == 9 {
			out <- seen
		}
	})
	return out
}

// clusterBus links the adapters of several in-process servers for server-side emits, the way a
// Redis adapter would: it shows that a cluster adapter plugs in through adapter.Factory alone.
type clusterBus struct {
	mu    sync.Mutex
	nodes []adapter.Namespace
}

type busAdapter struct {
	*adapter.Memory
	bus  *clusterBus
	self adapter.Namespace
}

func (b *clusterBus) factory(nsp adapter.Namespace) adapter.Adapter {
	b.mu.Lock()
	b.nodes = append(b.nodes, nsp)
	b.mu.Unlock()
	return &busAdapter{Memory: adapter.NewMemory(nsp), bus: b, self: nsp}
}

func (a *busAdapter) others() []adapter.Namespace {
	a.bus.mu.Lock()
	defer a.bus.mu.Unlock()
	var out []adapter.Namespace
	for _, n := range a.bus.nodes {
		if n != a.self && n.Name() == a.self.Name() {
			out = append(out, n)
		}
	}
	return out
}

func (a *busAdapter) ServerCount(context.Context) (int, error) { return len(a.others()) + 1, nil }

func (a *busAdapter) ServerSideEmit(args []json.RawMessage) error {
	for _, n := range a.others() {
		n.OnServerSideEmit(args, nil)
	}
	return nil
}

func (a *busAdapter) ServerSideEmitWithAck(ctx context.Context, args []json.RawMessage) ([][]json.RawMessage, error) {
	others := a.others()
	ch := make(chan []json.RawMessage, len(others))
	for _, n := range others {
		n.OnServerSideEmit(args, func(reply []json.RawMessage) { ch <- reply })
	}
	var out [][]json.RawMessage
	for range others {
		select {
		case r := <-ch:
			out = append(out, r)
		case <-ctx.Done():
			return out, adapter.ErrTimeout
		}
	}
	return out, nil
}

func TestServerSideEmit(t *testing.T) {
	bus := &clusterBus{}
	a, _ := newServer(t, Options{Adapter: bus.factory})
	b, _ := newServer(t, Options{Adapter: bus.factory})
	got := make(chan string, 2)
	b.OnServerSideEmit("hello", func(ev *Event) {
		var who string
		_ = ev.Decode(&who)
		got <- who
		if ev.HasAck() {
			_ = ev.Ack("hi " + who)
		}
	})
	if err := a.ServerSideEmit("hello", "node-a"); err != nil {
		t.Fatal(err)
	}
	if v := recv(t, got); v != "node-a" {
		t.Fatal(v)
	}
	replies, err := a.ServerSideEmitWithAck(ctxT(t), "hello", "again")
	if err != nil || len(replies) != 1 || string(replies[0][0]) != `"hi again"` {
		t.Fatalf("replies %s %v", replies, err)
	}
	if err := a.ServerSideEmit("connect"); err == nil {
		t.Fatal("reserved name accepted")
	}
	// The memory adapter alone has no other node: nothing to do, no error.
	solo, _ := newServer(t, Options{})
	if r, err := solo.ServerSideEmitWithAck(ctxT(t), "x"); err != nil || len(r) != 0 {
		t.Fatalf("solo: %v %v", r, err)
	}
}

func TestConnectionStateRecovery(t *testing.T) {
	io, url := newServer(t, Options{ConnectionStateRecovery: &RecoveryOptions{MaxDisconnectionDuration: 300 * time.Millisecond}})
	var middlewareRuns atomic.Int64
	io.Use(func(*Socket) error { middlewareRuns.Add(1); return nil })
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	if c.PID() == "" || s.Recovered() {
		t.Fatalf("pid %q recovered %v", c.PID(), s.Recovered())
	}
	s.Join("room")
	s.SetData("kept")
	_ = s.Emit("first", 1)
	wait(t, c, "first")
	offset := c.Offset()
	if offset == "" {
		t.Fatal("no offset in the event")
	}
	discon := make(chan string, 1)
	s.OnDisconnect(func(r string) { discon <- r })
	c.CloseTransport()
	if r := recv(t, discon); r != "transport close" {
		t.Fatal(r)
	}
	_ = io.To("room").Emit("missed", "m1")
	_ = io.Except("room").Emit("not-for-you")
	_ = io.Emit("missed", "m2")

	c2 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: offset})
	s2 := recv(t, conns)
	if !c2.Recovered() || !s2.Recovered() || c2.ID() != c.ID() || s2.ID() != s.ID() {
		t.Fatalf("not recovered: client %v server %v ids %s %s", c2.Recovered(), s2.Recovered(), c2.ID(), c.ID())
	}
	if n := middlewareRuns.Load(); n != 1 {
		t.Fatalf("middlewares ran %d times; a recovered session skips them", n)
	}
	if s2.Data() != "kept" || !slices.Contains(s2.Rooms(), "room") {
		t.Fatalf("data %v rooms %v", s2.Data(), s2.Rooms())
	}
	var m1, m2 string
	_ = json.Unmarshal(wait(t, c2, "missed")[0], &m1)
	_ = json.Unmarshal(wait(t, c2, "missed")[0], &m2)
	if m1 != "m1" || m2 != "m2" || c2.Pending("not-for-you") != 0 {
		t.Fatalf("missed %q %q, other %d", m1, m2, c2.Pending("not-for-you"))
	}

	// Expired: a fresh session.
	offset2 := c2.Offset()
	c2.CloseTransport()
	time.Sleep(400 * time.Millisecond)
	c3 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: offset2})
	s3 := recv(t, conns)
	if c3.Recovered() || s3.Recovered() || c3.ID() == c.ID() || slices.Contains(s3.Rooms(), "room") {
		t.Fatalf("expired session restored: %v %s", c3.Recovered(), c3.ID())
	}
	if n := middlewareRuns.Load(); n != 2 {
		t.Fatalf("middlewares ran %d times, want 2 (fresh sessions only)", n)
	}
}

// A broadcast made while a recovered session runs its middlewares (after RestoreSession, before
// the socket is back in its rooms) reaches the client once.
func TestRecoveryBroadcastDuringMiddlewares(t *testing.T) {
	io, url := newServer(t, Options{ConnectionStateRecovery: &RecoveryOptions{
		MaxDisconnectionDuration: 10 * time.Second, RunMiddlewares: true}})
	inMiddleware, proceed := make(chan struct{}, 1), make(chan struct{})
	io.Use(func(s *Socket) error {
		if s.Recovered() {
			inMiddleware <- struct{}{}
			<-proceed
		}
		return nil
	})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	s.Join("room")
	_ = s.Emit("first")
	wait(t, c, "first")
	done := make(chan struct{})
	s.OnDisconnect(func(string) { close(done) })
	off := c.Offset()
	c.CloseTransport()
	recv(t, done)
	_ = io.To("room").Emit("missed", 1)

	type result struct {
		c   *clienttest.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		c2, err := clienttest.Dial(context.Background(), url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: off})
		res <- result{c2, err}
	}()
	recv(t, inMiddleware)
	_ = io.To("room").Emit("gap", 2) // after RestoreSession, before the rooms are joined
	close(proceed)
	r := recv(t, res)
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = r.c.Close() })
	if !r.c.Recovered() {
		t.Fatal("not recovered")
	}
	wait(t, r.c, "missed")
	wait(t, r.c, "gap")
	_ = io.To("room").Emit("live", 3)
	wait(t, r.c, "live")
	if n := r.c.Pending("gap") + r.c.Pending("missed"); n != 0 {
		t.Fatalf("%d duplicates", n)
	}
}

// A RecoveryVetter sees the socket after the middlewares and the rooms of the restored session; when
// it declines, the client gets a fresh session: new id, no rooms, none of the missed packets, and
// the middlewares run even when recovered sessions skip them.
func TestRecoveryVetterDeclines(t *testing.T) {
	for _, runMW := range []bool{false, true} {
		t.Run(fmt.Sprintf("RunMiddlewares=%v", runMW), func(t *testing.T) {
			io, url := newServer(t, Options{ConnectionStateRecovery: &RecoveryOptions{
				MaxDisconnectionDuration: 10 * time.Second, RunMiddlewares: runMW}})
			var mwRuns atomic.Int64
			io.Use(func(s *Socket) error { mwRuns.Add(1); s.SetData("fresh"); return nil })
			var allow atomic.Bool
			var seen atomic.Value
			io.Of("/").VetRecovery(func(s *Socket, rooms []string) bool {
				seen.Store(fmt.Sprintf("%v %v", s.Data(), rooms))
				return allow.Load()
			})
			conns := connected(io.Of("/"))
			c := dial(t, url, clienttest.Options{})
			s := recv(t, conns)
			s.Join("secret")
			s.SetData("old")
			_ = s.Emit("first")
			wait(t, c, "first")

			drop := func(c *clienttest.Client, s *Socket) string {
				done := make(chan struct{})
				s.OnDisconnect(func(string) { close(done) })
				off := c.Offset()
				c.CloseTransport()
				recv(t, done)
				_ = io.To("secret").Emit("missed")
				return off
			}
			// Accepted: the same session, rooms kept, the missed packet delivered.
			allow.Store(true)
			off := drop(c, s)
			c2 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: off})
			s2 := recv(t, conns)
			if !c2.Recovered() || s2.ID() != s.ID() || !slices.Contains(s2.Rooms(), "secret") {
				t.Fatalf("accepted recovery: recovered %v id %s rooms %v", c2.Recovered(), s2.ID(), s2.Rooms())
			}
			wait(t, c2, "missed")
			want := "old"
			if runMW {
				want = "fresh"
			}
			if got, _ := seen.Load().(string); !strings.HasPrefix(got, want+" [") || !strings.Contains(got, "secret") || !strings.Contains(got, s.ID()) {
				t.Fatalf("vetter saw %q, want data %q and the session's rooms", got, want)
			}
			// Declined: a fresh session, nothing of the old one.
			allow.Store(false)
			runsBefore := mwRuns.Load()
			off = drop(c2, s2)
			c3 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: off})
			s3 := recv(t, conns)
			if c3.Recovered() || s3.Recovered() || c3.ID() == c.ID() || s3.ID() != c3.ID() ||
				slices.Contains(s3.Rooms(), "secret") || c3.PID() == "" || c3.PID() == c.PID() {
				t.Fatalf("declined recovery kept state: recovered %v/%v id %s (old %s) rooms %v pid %q",
					c3.Recovered(), s3.Recovered(), c3.ID(), c.ID(), s3.Rooms(), c3.PID())
			}
			if mwRuns.Load() != runsBefore+1 || s3.Data() != "fresh" {
				t.Fatalf("middlewares ran %d times for the declined session, data %v", mwRuns.Load()-runsBefore, s3.Data())
			}
			_ = io.To("secret").Emit("later")
			_ = s3.Emit("probe")
			wait(t, c3, "probe")
			if c3.Pending("missed") != 0 || c3.Pending("later") != 0 {
				t.Fatalf("declined session got the old rooms' packets: missed %d later %d", c3.Pending("missed"), c3.Pending("later"))
			}
			// The session was consumed: the same pid cannot be used again.
			c3.CloseTransport()
			allow.Store(true)
			c4 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: off})
			if c4.Recovered() {
				t.Fatal("a declined session was restored later")
			}
		})
	}
}

func TestParseErrorOnInvalidPackets(t *testing.T) {
	_, url := newServer(t, Options{})
	for _, bad := range []string{"4abc", "42{}", `42abc["x"]`, `40"str"`} {
		c := dial(t, url, clienttest.Options{})
		_ = c.WriteEngineText(bad)
		select {
		case <-c.Done():
		case <-time.After(2 * time.Second):
			t.Fatalf("%q did not close the connection", bad)
		}
	}
}

// rawConn is a bare Engine.IO websocket that never speaks Socket.IO.
type rawConn struct{ conn net.Conn }

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	u := strings.Replace(url, "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	conn, _, _, err := ws.Dial(ctxT(t), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{conn: conn}
}

// drain reads frames until the server closes the connection.
func (r *rawConn) drain() {
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := wsutil.ReadServerData(r.conn); err != nil {
			return
		}
	}
}

// TestVolatileDroppedWhenNotWritable uses a long-polling client with no GET pending: a volatile
// emit is dropped, a normal one waits for the next GET.
func TestVolatileDroppedWhenNotWritable(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	base := url + "/socket.io/?EIO=4&transport=polling"
	get := func(u string) string {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := readBody(resp)
		return b
	}
	open := get(base)
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil {
		t.Fatalf("open %q: %v", open, err)
	}
	u := base + "&sid=" + hs.SID
	resp, err := http.Post(u, "text/plain;charset=UTF-8", strings.NewReader("40"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := recv(t, conns)
	if got := get(u); !strings.HasPrefix(got, "40{") {
		t.Fatalf("connect answer %q", got)
	}
	// No GET pending now: the transport is not writable.
	if err := io.Volatile().Emit("vol", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.EmitVolatile("vol", 2); err != nil {
		t.Fatal(err)
	}
	_ = io.Emit("kept", 3)
	got := get(u)
	if strings.Contains(got, "vol") || !strings.Contains(got, `42["kept",3]`) {
		t.Fatalf("poll after volatile emits: %q", got)
	}
}

func readBody(resp *http.Response) (string, error) {
	b, err := stdio.ReadAll(resp.Body)
	return string(b), err
}

// TestConcurrentChatRace: many clients chatting in rooms while joining and leaving, for the race
// detector, and every message delivered to every other member.
func TestConcurrentChatRace(t *testing.T) {
	io, url := newServer(t, Options{})
	nsp := io.Of("/chat")
	nsp.OnConnection(func(s *Socket) {
		s.Join("lobby")
		s.On("say", func(ev *Event) {
			var text string
			_ = ev.Decode(&text)
			_ = s.To("lobby").Emit("said", text)
			s.Join("tmp-" + text)
			s.Leave("tmp-" + text)
			_ = ev.Ack(len(s.Rooms()))
		})
	})
	const clients, msgs = 8, 10
	cs := make([]*clienttest.Client, clients)
	for i := range cs {
		cs[i] = dial(t, url, clienttest.Options{Namespace: "/chat"})
	}
	eventually(t, "all joined", func() bool { return len(nsp.Adapter().Sockets("lobby")) == clients })
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := 0; m < msgs; m++ {
				if _, err := c.EmitWithAck(context.Background(), "say", fmt.Sprintf("%d-%d", i, m)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range cs {
		for k := 0; k < (clients-1)*msgs; k++ {
			wait(t, c, "said")
		}
		if n := c.Pending("said"); n != 0 {
			t.Fatalf("%d extra messages", n)
		}
	}
	if rooms := nsp.Adapter().Rooms(); len(rooms) != clients+1 {
		t.Fatalf("rooms left: %v", rooms)
	}
}
