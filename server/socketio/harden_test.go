package socketio

// Hostile clients at the Socket.IO layer (issue 8): attachments declared and never sent, deep JSON
// nesting, invalid UTF-8 over polling, acks never answered and a slow consumer in a broadcast room.
// Each runs through real connections (raw websocket and raw long-polling) against a real server.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdio "io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/engineio"
)

// writeBinary sends one binary Engine.IO message (an attachment) on a raw websocket.
func (s *rawSIO) writeBinary(b []byte) {
	s.t.Helper()
	if err := wsutil.WriteClientBinary(s.rw, b); err != nil {
		s.t.Fatal(err)
	}
}

// waitGone reads until the server ends the session (close packet "1", close frame or EOF) and returns
// how long that took; it fails after d.
func (s *rawSIO) waitGone(d time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	_ = s.conn.SetReadDeadline(start.Add(d))
	for {
		b, op, err := wsutil.ReadServerData(s.rw)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.t.Fatalf("connection still open after %v", d)
			}
			return time.Since(start)
		}
		if op == ws.OpText && string(b) == "1" {
			return time.Since(start)
		}
		if op == ws.OpText && string(b) == "2" {
			_ = wsutil.WriteClientText(s.rw, []byte("3"))
		}
	}
}

// rawPoll is a bare Engine.IO long-polling session.
type rawPoll struct {
	t   *testing.T
	url string // ...?EIO=4&transport=polling&sid=...
}

func dialPoll(t *testing.T, base string) *rawPoll {
	t.Helper()
	res, err := http.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readBody(res)
	res.Body.Close()
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "0")), &open); err != nil || open.SID == "" {
		t.Fatalf("handshake %q: %v", body, err)
	}
	return &rawPoll{t: t, url: base + "/socket.io/?EIO=4&transport=polling&sid=" + open.SID}
}

func (p *rawPoll) post(body string) int {
	p.t.Helper()
	res, err := http.Post(p.url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	_, _ = readBody(res)
	res.Body.Close()
	return res.StatusCode
}

// get is one long-polling GET; it returns the body, or "" with the status when not 200.
func (p *rawPoll) get() (string, int) {
	res, err := http.Get(p.url)
	if err != nil {
		return "", 0
	}
	defer res.Body.Close()
	b, _ := readBody(res)
	if res.StatusCode != 200 {
		return "", res.StatusCode
	}
	return b, 200
}

// connect joins the main namespace and takes the CONNECT answer.
func (p *rawPoll) connect() {
	p.t.Helper()
	if st := p.post("40"); st != 200 {
		p.t.Fatalf("POST 40: %d", st)
	}
	if b, st := p.get(); st != 200 || !strings.HasPrefix(b, "40{") {
		p.t.Fatalf("connect answer %q (%d)", b, st)
	}
}

// waitGone polls until the session ends (a payload with the close packet, or a refusal) and returns
// how long that took.
func (p *rawPoll) waitGone(d time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		b, st := p.get()
		if st != 200 || b == "1" || strings.HasSuffix(b, "\x1e1") {
			return time.Since(start)
		}
	}
	p.t.Fatalf("session still open after %v", d)
	return 0
}

// disconnects records the disconnect reason of every socket of nsp, by socket id.
type disconnects struct {
	mu      sync.Mutex
	reasons map[string]string
	at      map[string]time.Time
	conns   chan *Socket
}

func watchSockets(nsp *Namespace) *disconnects {
	d := &disconnects{reasons: map[string]string{}, at: map[string]time.Time{}, conns: make(chan *Socket, 256)}
	nsp.OnConnection(func(s *Socket) {
		s.OnDisconnect(func(r string) {
			d.mu.Lock()
			d.reasons[s.ID()] = r
			d.at[s.ID()] = time.Now()
			d.mu.Unlock()
		})
		d.conns <- s
	})
	return d
}

func (d *disconnects) when(id string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at[id]
}

func (d *disconnects) reason(t *testing.T, id string) string {
	t.Helper()
	var r string
	eventually(t, "disconnect of "+id, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		var ok bool
		r, ok = d.reasons[id]
		return ok
	})
	return r
}

func placeholders(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,{"_placeholder":true,"num":%d}`, i)
	}
	return b.String()
}

// heapInUse is the live heap after a GC.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestAttachmentsDeclaredNeverSent: a binary packet declaring thousands of attachments closes the
// connection at once ("parse error", per the protocol's limit); one declaring a few and never sending
// them is closed once Limits.AttachmentTimeout passes, over websocket and long-polling, and what it
// held is freed; a client that sends its attachments slowly, each within the bound, is served.
func TestAttachmentsDeclaredNeverSent(t *testing.T) {
	const bound = 400 * time.Millisecond
	io, url := newServer(t, Options{Limits: Limits{AttachmentTimeout: bound}, Engine: engineio.Options{PingInterval: 20 * time.Second}})
	watch := watchSockets(io.Of("/"))
	got := make(chan []byte, 4)
	io.OnConnection(func(s *Socket) {
		s.On("upload", func(ev *Event) {
			var a, b []byte
			if err := ev.Decode(&a, &b); err == nil {
				got <- append(a, b...)
			}
		})
	})

	t.Run("thousands declared, websocket", func(t *testing.T) {
		c := dialSIO(t, url)
		c.write("40")
		c.read()
		s := recv(t, watch.conns)
		c.write(`455000-["upload"` + placeholders(3) + `]`)
		if took := c.waitGone(2 * time.Second); took > time.Second {
			t.Fatalf("closed after %v, want at once", took)
		}
		if r := watch.reason(t, s.ID()); r != engineio.ReasonParseError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("thousands declared, polling", func(t *testing.T) {
		p := dialPoll(t, url)
		p.connect()
		s := recv(t, watch.conns)
		p.post(`455000-["upload"` + placeholders(3) + `]`)
		if took := p.waitGone(2 * time.Second); took > time.Second {
			t.Fatalf("closed after %v, want at once", took)
		}
		if r := watch.reason(t, s.ID()); r != engineio.ReasonParseError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("a few declared, one sent, websocket", func(t *testing.T) {
		c := dialSIO(t, url)
		c.write("40")
		c.read()
		s := recv(t, watch.conns)
		start := time.Now()
		c.write(`452-["upload"` + placeholders(2) + `]`)
		c.writeBinary([]byte{1, 2, 3})
		c.waitGone(5 * time.Second)
		if took := time.Since(start); took < bound || took > bound+2*time.Second {
			t.Fatalf("closed after %v, want the bound %v (+ scheduling)", took, bound)
		}
		if r := watch.reason(t, s.ID()); r != engineio.ReasonParseError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("a few declared, none sent, polling", func(t *testing.T) {
		p := dialPoll(t, url)
		p.connect()
		s := recv(t, watch.conns)
		start := time.Now()
		p.post(`453-["upload"` + placeholders(3) + `]`)
		p.waitGone(5 * time.Second)
		if took := time.Since(start); took < bound || took > bound+2*time.Second {
			t.Fatalf("closed after %v, want the bound %v (+ scheduling)", took, bound)
		}
		if r := watch.reason(t, s.ID()); r != engineio.ReasonParseError {
			t.Fatalf("reason %q", r)
		}
	})
	t.Run("slow but steady attachments are served", func(t *testing.T) {
		c := dialSIO(t, url)
		c.write("40")
		c.read()
		<-watch.conns
		c.write(`452-["upload"` + placeholders(2) + `]`)
		time.Sleep(bound * 3 / 4)
		c.writeBinary([]byte{1, 2})
		time.Sleep(bound * 3 / 4) // over the bound in total, under it between attachments
		c.writeBinary([]byte{3})
		if b := recv(t, got); string(b) != "\x01\x02\x03" {
			t.Fatalf("upload %v", b)
		}
	})
	t.Run("memory of 40 pending packets is freed", func(t *testing.T) {
		before := heapInUse()
		pad := strings.Repeat("p", 100<<10)
		clients := make([]*rawSIO, 40)
		for i := range clients {
			clients[i] = dialSIO(t, url)
			clients[i].write("40")
			clients[i].read()
			<-watch.conns
			clients[i].write(`452-["upload","` + pad + `"` + placeholders(2) + `]`)
		}
		held := heapInUse() - before
		for _, c := range clients {
			c.waitGone(5 * time.Second)
		}
		eventually(t, "sessions closed", func() bool { return io.Engine().Count() == 0 })
		after := heapInUse() - before
		t.Logf("40 packets of 100 KiB waiting for attachments: heap +%d KiB while pending, +%d KiB after the bound",
			held>>10, after>>10)
		if after > 2<<20 {
			t.Fatalf("heap still %d KiB above the start after every pending packet was closed", after>>10)
		}
	})
}

// nested is an EVENT payload whose deepest value sits at depth levels.
func nested(event string, depth int) string {
	return `["` + event + `",` + strings.Repeat("[", depth-1) + "1" + strings.Repeat("]", depth-1) + "]"
}

// TestDeepJSONNesting: events nested 10,000 and 1,000 levels deep close the connection with
// "parse error" before anything is decoded; 64 levels (the default bound) are delivered, 65 are not;
// a 900 KB flat array is delivered. Over websocket and long-polling, each in bounded time and memory.
func TestDeepJSONNesting(t *testing.T) {
	io, url := newServer(t, Options{Engine: engineio.Options{PingInterval: 20 * time.Second}})
	watch := watchSockets(io.Of("/"))
	delivered := make(chan int, 4)
	io.OnConnection(func(s *Socket) {
		s.On("deep", func(ev *Event) {
			var v any
			if err := ev.Decode(&v); err != nil {
				delivered <- -1
				return
			}
			depth := 1 // the payload array
			for a, ok := v.([]any); ok && len(a) > 0; a, ok = a[0].([]any) {
				depth++
			}
			delivered <- depth
		})
		s.On("flat", func(ev *Event) {
			var v []any
			_ = ev.Decode(&v)
			delivered <- len(v)
		})
	})
	flat := `["flat",[` + strings.Repeat(`"ab",1,`, 900_000/7) + `0]]`
	cases := []struct {
		name    string
		payload string
		want    int // delivered value; 0: the connection is closed
	}{
		{"10k levels", nested("deep", 10_000), 0},
		{"1k levels", nested("deep", 1_000), 0},
		{"65 levels", nested("deep", 65), 0},
		{"64 levels", nested("deep", 64), 64},
		{"900 KB flat array", flat, 900_000/7*2 + 1},
	}
	for _, transport := range []string{"websocket", "polling"} {
		for _, tc := range cases {
			t.Run(transport+" "+tc.name, func(t *testing.T) {
				before := heapInUse()
				var send func(string)
				var gone func(time.Duration) time.Duration
				if transport == "websocket" {
					c := dialSIO(t, url)
					c.write("40")
					c.read()
					send, gone = c.write, c.waitGone
				} else {
					p := dialPoll(t, url)
					p.connect()
					send = func(s string) {
						if st := p.post(s); st != 200 {
							t.Fatalf("POST: %d", st)
						}
					}
					gone = p.waitGone
				}
				s := recv(t, watch.conns)
				start := time.Now()
				send("42" + tc.payload)
				if tc.want == 0 {
					gone(3 * time.Second)
					if r := watch.reason(t, s.ID()); r != engineio.ReasonParseError {
						t.Fatalf("reason %q", r)
					}
				} else if n := recv(t, delivered); n != tc.want {
					t.Fatalf("delivered %d, want %d", n, tc.want)
				}
				took := time.Since(start)
				grew := heapInUse() - before
				t.Logf("%s %s (%d bytes): %v, heap %+d KiB", transport, tc.name, len(tc.payload), took.Round(time.Millisecond), grew>>10)
				// ~250 ms for the flat array without -race, a few seconds with it on a busy machine
				if took > 10*time.Second {
					t.Fatalf("took %v", took)
				}
				if grew > 16<<20 {
					t.Fatalf("heap grew %d KiB", grew>>10)
				}
			})
		}
	}

	t.Run("configured bound", func(t *testing.T) {
		io2, url2 := newServer(t, Options{Limits: Limits{MaxNestingDepth: 8}})
		w2 := watchSockets(io2.Of("/"))
		ok := make(chan struct{}, 1)
		io2.OnConnection(func(s *Socket) { s.On("deep", func(*Event) { ok <- struct{}{} }) })
		c := dialSIO(t, url2)
		c.write("40")
		c.read()
		s := recv(t, w2.conns)
		c.write("42" + nested("deep", 8))
		recv(t, ok)
		c.write("42" + nested("deep", 9))
		c.waitGone(3 * time.Second)
		if r := w2.reason(t, s.ID()); r != engineio.ReasonParseError {
			t.Fatalf("reason %q", r)
		}
	})
}

// TestPollingInvalidUTF8Event: an event POSTed with invalid UTF-8 inside a JSON string reaches the
// handler with U+FFFD in its place (as Node reads a text body), the polling session stays open, and a
// websocket client the handler forwards it to receives valid UTF-8 (no 1007 close).
func TestPollingInvalidUTF8Event(t *testing.T) {
	io, url := newServer(t, Options{})
	joined := make(chan bool, 4)
	io.OnConnection(func(s *Socket) {
		s.Join("room")
		joined <- true
		s.On("say", func(ev *Event) {
			var text string
			_ = ev.Decode(&text)
			_ = s.To("room").Emit("said", text)
			_ = ev.Ack(text)
		})
	})
	listener := dial(t, url, clienttest.Options{})
	// The connection handlers run once the CONNECT answer is written: the client can see it (and the
	// test go on to the broadcast) before the listener is in the room.
	recv(t, joined)
	p := dialPoll(t, url)
	p.connect()
	if st := p.post("420[\"say\",\"caf\xc3e \xff\xfe ok\"]"); st != 200 {
		t.Fatalf("POST: %d", st)
	}
	want := "caf\uFFFDe \uFFFD\uFFFD ok"
	b, st := p.get()
	if st != 200 || !strings.Contains(b, want) {
		t.Fatalf("ack %q (%d), want it to carry %q", b, st, want)
	}
	args := wait(t, listener, "said")
	var text string
	if err := json.Unmarshal(args[0], &text); err != nil || text != want {
		t.Fatalf("forwarded %s", args[0])
	}
	if _, err := listener.EmitWithAck(ctxT(t), "say", "still connected"); err != nil {
		t.Fatalf("websocket client after the forward: %v", err)
	}
	p.post("1") // close the polling session: the server's shutdown need not wait for it
}

// TestAckTableBounded: a client that never answers acks cannot grow its socket's ack table past
// Limits.MaxPendingAcks (default 1000): past it EmitWithAck fails at once; entries leave the table on
// timeout (EmitWithAck's ctx, a broadcast's Timeout) and on disconnect.
func TestAckTableBounded(t *testing.T) {
	io, url := newServer(t, Options{})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{}) // no AckHandler: never answers
	s := recv(t, conns)

	// 5000 EmitWithAck without a deadline: 1000 wait, 4000 are refused at once.
	const total = DefaultMaxPendingAcks * 5
	var refused atomic.Int64
	errs := make(chan error, total)
	start := time.Now()
	for i := 0; i < total; i++ {
		go func() {
			_, err := s.EmitWithAck(context.Background(), "ping", i)
			if errors.Is(err, ErrTooManyPendingAcks) {
				refused.Add(1)
			}
			errs <- err
		}()
	}
	eventually(t, "refusals", func() bool { return refused.Load() == total-DefaultMaxPendingAcks })
	t.Logf("%d unanswered EmitWithAck: %d pending, %d refused in %v", total, s.pendingAcks(), refused.Load(), time.Since(start).Round(time.Millisecond))
	if n := s.pendingAcks(); n != DefaultMaxPendingAcks {
		t.Fatalf("ack table %d, want %d", n, DefaultMaxPendingAcks)
	}
	// a refused call costs no packet: the client received only the 1000 pending ones
	eventually(t, "packets", func() bool { return c.Pending("ping")+c.Dropped("ping") == DefaultMaxPendingAcks })

	// disconnect: the table empties and every waiting call returns ErrDisconnected
	s.Disconnect(false)
	for i := 0; i < DefaultMaxPendingAcks; i++ {
		for {
			err := <-errs
			if errors.Is(err, ErrTooManyPendingAcks) {
				continue
			}
			if !errors.Is(err, ErrDisconnected) {
				t.Fatalf("pending EmitWithAck after disconnect: %v", err)
			}
			break
		}
	}
	if n := s.pendingAcks(); n != 0 {
		t.Fatalf("ack table %d after disconnect", n)
	}

	// timeouts: entries of EmitWithAck with a deadline and of broadcasts with Timeout expire
	io2, url2 := newServer(t, Options{Limits: Limits{MaxPendingAcks: 100}})
	conns2 := connected(io2.Of("/"))
	dial(t, url2, clienttest.Options{})
	s2 := recv(t, conns2)
	s2.Join("r")
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, _ = s2.EmitWithAck(ctx, "ping")
		}()
	}
	for i := 0; i < 40; i++ {
		go func() { _, _ = io2.To("r").Timeout(300*time.Millisecond).EmitWithAck(context.Background(), "bping") }()
	}
	eventually(t, "100 pending", func() bool { return s2.pendingAcks() == 100 })
	if _, err := s2.EmitWithAck(context.Background(), "over"); !errors.Is(err, ErrTooManyPendingAcks) {
		t.Fatalf("101st: %v", err)
	}
	wg.Wait()
	eventually(t, "entries expired", func() bool { return s2.pendingAcks() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s2.EmitWithAck(ctx, "again"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after expiry the socket takes acks again: %v", err)
	}
}

// fastReader counts the "tick" events a raw websocket receives and their latency.
type fastReader struct {
	got       int
	inOrder   bool
	latencies []time.Duration
	err       error
}

// readTicks reads until want ticks arrived or the deadline; it answers engine pings.
func readTicks(conn net.Conn, rw stdio.ReadWriter, want int, deadline time.Time) fastReader {
	r := fastReader{inOrder: true, latencies: make([]time.Duration, 0, want)}
	_ = conn.SetReadDeadline(deadline)
	for r.got < want {
		b, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			r.err = err
			return r
		}
		if op != ws.OpText {
			continue
		}
		if string(b) == "2" {
			_ = wsutil.WriteClientText(rw, []byte("3"))
			continue
		}
		// 42["tick",<seq>,<unix ns>,"pad..."]: only the head is looked at
		head := b[:min(len(b), 64)]
		rest, ok := bytes.CutPrefix(head, []byte(`42["tick",`))
		if !ok {
			continue
		}
		f := strings.SplitN(string(rest), ",", 3)
		seq, _ := strconv.Atoi(f[0])
		sent, _ := strconv.ParseInt(f[1], 10, 64)
		r.latencies = append(r.latencies, time.Since(time.Unix(0, sent)))
		if seq != r.got {
			r.inOrder = false
		}
		r.got++
	}
	return r
}

// TestSlowConsumerBroadcast: a room of 8 fast websocket clients, one websocket client that never reads
// and one polling client that never polls. The room gets 300 broadcasts of 16 KiB, paced at 400/s. Each
// client's outgoing buffer is bounded (MaxQueuedPackets 1024, MaxQueuedBytes 1 MiB): the two that do
// not read are disconnected ("transport error") once theirs fills, while the broadcast loop never
// waits for them and every fast client receives every message, in order, with low latency.
func TestSlowConsumerBroadcast(t *testing.T) {
	const (
		fast     = 8
		messages = 300
		size     = 16 << 10
		perTick  = 2 // messages every 5 ms: 400/s
	)
	io := NewServer(Options{Engine: engineio.Options{
		PingInterval: 30 * time.Second, PingTimeout: 30 * time.Second,
		MaxQueuedPackets: 1024, MaxQueuedBytes: 1 << 20,
	}})
	hs := httptest.NewUnstartedServer(io)
	// Small kernel send buffers on the server side, so that a client that stops reading backs the
	// server's writer up after a few KiB instead of the megabytes loopback autotuning allows.
	hs.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(32 << 10)
		}
		return ctx
	}
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = io.Close(ctx)
		hs.Close()
	})
	url := hs.URL
	watch := watchSockets(io.Of("/"))
	io.OnConnection(func(s *Socket) { s.Join("room") })

	type fastClient struct {
		c   *rawSIO
		out chan fastReader
	}
	clients := make([]fastClient, fast)
	for i := range clients {
		c := dialSIO(t, url)
		c.write("40")
		c.read()
		<-watch.conns
		clients[i] = fastClient{c: c, out: make(chan fastReader, 1)}
	}
	slow := dialSIO(t, url)
	if tc, ok := slow.conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // a small window: the server's writes back up soon
	}
	slow.write("40")
	slow.read()
	slowWS := recv(t, watch.conns)
	poller := dialPoll(t, url)
	poller.connect()
	slowPoll := recv(t, watch.conns)

	deadline := time.Now().Add(20 * time.Second)
	for _, fc := range clients {
		go func() { fc.out <- readTicks(fc.c.conn, fc.c.rw, messages, deadline) }()
	}
	pad := strings.Repeat("x", size)
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < messages; i++ {
		t0 := time.Now()
		if err := io.To("room").Emit("tick", i, time.Now().UnixNano(), pad); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d > slowest {
			slowest = d
		}
		if i%perTick == perTick-1 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	emitted := time.Since(start)
	var all []time.Duration
	var lastDone time.Duration
	for i, fc := range clients {
		r := <-fc.out
		if r.got != messages || !r.inOrder {
			t.Fatalf("fast client %d: %d/%d messages, in order %v, err %v", i, r.got, messages, r.inOrder, r.err)
		}
		all = append(all, r.latencies...)
	}
	lastDone = time.Since(start)
	slices.Sort(all)
	p50, p99, max := all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	rate := float64(fast*messages) / lastDone.Seconds()
	t.Logf("fast clients: %d×%d messages of %d KiB in %v (%.0f msg/s, %.1f MiB/s); latency p50 %v p99 %v max %v; emit loop %v, slowest Emit %v",
		fast, messages, size>>10, lastDone.Round(time.Millisecond), rate, rate*size/(1<<20),
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), max.Round(time.Microsecond),
		emitted.Round(time.Millisecond), slowest.Round(time.Microsecond))

	if r := watch.reason(t, slowWS.ID()); r != "transport error" {
		t.Fatalf("websocket client that never reads: reason %q", r)
	}
	if r := watch.reason(t, slowPoll.ID()); r != "transport error" {
		t.Fatalf("polling client that never polls: reason %q", r)
	}
	t.Logf("disconnected after: websocket reader that stopped %v, poller that stopped %v",
		watch.when(slowWS.ID()).Sub(start).Round(time.Millisecond), watch.when(slowPoll.ID()).Sub(start).Round(time.Millisecond))
	// The pacing alone takes 0.75 s. An Emit that waited for a stuck client would take the write
	// timeout (10 s): the bounds are well under it and leave room for a loaded machine (and -race).
	// The fast clients keep up with the sender: the last of them is done soon after the last Emit.
	if slowest > 2*time.Second {
		t.Fatalf("one Emit took %v: the broadcast waited for a slow client", slowest)
	}
	if lastDone-emitted > 3*time.Second {
		t.Fatalf("emit loop %v, last delivery %v after the start: the fast clients fell behind", emitted, lastDone)
	}
	if p99 > 2*time.Second || max > 5*time.Second {
		t.Fatalf("latency p99 %v max %v", p99, max)
	}
}
