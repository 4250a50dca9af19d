package clienttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakeServer is a hand-driven Engine.IO/Socket.IO peer: each test writes
// the frames the server side sends and reads what the client sent, so the
// client's framing is checked byte by byte.
type fakeServer struct {
	t     *testing.T
	srv   *httptest.Server
	conns chan net.Conn
	reqs  chan *http.Request
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, conns: make(chan net.Conn, 4), reqs: make(chan *http.Request, 4)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		f.reqs <- r
		f.conns <- conn
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type fakeConn struct {
	t    *testing.T
	conn net.Conn
}

func (f *fakeServer) accept() *fakeConn {
	select {
	case c := <-f.conns:
		f.t.Cleanup(func() { c.Close() })
		return &fakeConn{t: f.t, conn: c}
	case <-time.After(5 * time.Second):
		f.t.Fatal("no connection")
		return nil
	}
}

func (c *fakeConn) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteServerText(c.conn, []byte(s)); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

func (c *fakeConn) sendBinary(b []byte) {
	c.t.Helper()
	if err := wsutil.WriteServerBinary(c.conn, b); err != nil {
		c.t.Fatalf("send binary: %v", err)
	}
}

func (c *fakeConn) recv() (string, ws.OpCode) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, op, err := wsutil.ReadClientData(c.conn)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return string(data), op
}

func (c *fakeConn) expect(want string) {
	c.t.Helper()
	got, op := c.recv()
	if got != want || op != ws.OpText {
		c.t.Fatalf("got %q (op %v), want %q", got, op, want)
	}
}

const openPacket = `0{"sid":"eng1","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}`

// dialFake dials in the background and plays the server side of the handshake.
func dialFake(t *testing.T, f *fakeServer, opts Options, connectReq, connectReply string) (*Client, *fakeConn, error) {
	t.Helper()
	type result struct {
		c   *Client
		err error
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		c, err := Dial(ctx, f.srv.URL, opts)
		res <- result{c, err}
	}()
	sc := f.accept()
	sc.send(openPacket)
	sc.expect(connectReq)
	sc.send(connectReply)
	r := <-res
	if r.c != nil {
		t.Cleanup(func() { r.c.Close() })
	}
	return r.c, sc, r.err
}

func TestFakeHandshakeURLAndAuth(t *testing.T) {
	f := newFakeServer(t)
	opts := Options{
		Namespace: "/chat",
		Auth:      map[string]string{"token": "abc"},
		Query:     map[string][]string{"room": {"r1"}},
		Header:    http.Header{"X-Test": {"yes"}},
	}
	c, _, err := dialFake(t, f, opts, `40/chat,{"token":"abc"}`, `40/chat,{"sid":"sock1"}`)
	if err != nil {
		t.Fatal(err)
	}
	r := <-f.reqs
	if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" ||
		r.URL.Query().Get("room") != "r1" || r.Header.Get("X-Test") != "yes" {
		t.Fatalf("handshake request %v %v", r.URL, r.Header)
	}
	if c.ID() != "sock1" || c.EngineID() != "eng1" || c.PID() != "" {
		t.Fatalf("ids %q %q %q", c.ID(), c.EngineID(), c.PID())
	}
}

func TestFakeConnectError(t *testing.T) {
	f := newFakeServer(t)
	_, _, err := dialFake(t, f, Options{}, `40`, `44{"message":"not authorized","data":{"code":401}}`)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Message != "not authorized" || string(ce.Data) != `{"code":401}` {
		t.Fatalf("err = %v", err)
	}
}

func TestFakeHandshakeIgnoresOtherNamespaceAndAnswersPing(t *testing.T) {
	f := newFakeServer(t)
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := Dial(ctx, f.srv.URL, Options{Namespace: "/a"})
		if c != nil {
			defer c.Close()
		}
		res <- err
	}()
	sc := f.accept()
	sc.send(openPacket)
	sc.expect(`40/a,`)
	sc.send("2")
	sc.expect("3")
	sc.send(`40/b,{"sid":"other"}`)
	sc.send(`40/a,{"sid":"mine"}`)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

func TestFakeHandshakeTimeout(t *testing.T) {
	f := newFakeServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, f.srv.URL, Options{})
		res <- err
	}()
	sc := f.accept()
	sc.send(openPacket)
	sc.expect("40") // then never answer
	select {
	case err := <-res:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Dial did not honour ctx")
	}
}

func TestFakeEventsAcksAndBinary(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{}, "40", `40{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Events sent before Wait are buffered, in order.
	sc.send(`42["news",1]`)
	sc.send(`42["news",2]`)
	sc.send(`451-["file",{"name":"a","data":{"_placeholder":true,"num":0}}]`)
	sc.sendBinary([]byte{1, 2, 3})
	time.Sleep(50 * time.Millisecond)
	for _, want := range []string{"1", "2"} {
		args, err := c.Wait(ctx, "news")
		if err != nil || len(args) != 1 || string(args[0]) != want {
			t.Fatalf("news: %s %v", args, err)
		}
	}
	ev, err := c.WaitEvent(ctx, "file")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Name string
		Data []byte
	}
	if err := json.Unmarshal(ev.Args[0], &file); err != nil || file.Name != "a" || !bytes.Equal(file.Data, []byte{1, 2, 3}) {
		t.Fatalf("file %+v %v (%s)", file, err, ev.Args[0])
	}
	if len(ev.Attachments) != 1 || !strings.Contains(string(ev.Data), "_placeholder") {
		t.Fatalf("raw event %+v", ev)
	}

	// Client emits: plain, binary, with ack.
	if err := c.Emit("hello", "world", 1); err != nil {
		t.Fatal(err)
	}
	sc.expect(`42["hello","world",1]`)
	if err := c.Emit("up", []byte{9}); err != nil {
		t.Fatal(err)
	}
	sc.expect(`451-["up",{"_placeholder":true,"num":0}]`)
	if b, op := sc.recv(); op != ws.OpBinary || b != "\x09" {
		t.Fatalf("attachment %q %v", b, op)
	}
	ackRes := make(chan []json.RawMessage, 1)
	go func() {
		reply, err := c.EmitWithAck(ctx, "ask", "q")
		if err != nil {
			t.Error(err)
		}
		ackRes <- reply
	}()
	sc.expect(`420["ask","q"]`)
	sc.send(`461-0[{"_placeholder":true,"num":0},"ok"]`)
	sc.sendBinary([]byte("bin"))
	reply := <-ackRes
	var b []byte
	if len(reply) != 2 || json.Unmarshal(reply[0], &b) != nil || string(b) != "bin" || string(reply[1]) != `"ok"` {
		t.Fatalf("reply %s", reply)
	}

	// Server asks for an ack.
	c.SetAckHandler(func(event string, args []json.RawMessage) []any {
		if event == "ping?" {
			return []any{"pong!", []byte{7}}
		}
		return nil
	})
	sc.send(`42/x,1["ping?"]`) // other namespace: ignored
	sc.send(`425["ping?",true]`)
	sc.expect(`461-5["pong!",{"_placeholder":true,"num":0}]`)
	if b, op := sc.recv(); op != ws.OpBinary || b != "\x07" {
		t.Fatalf("ack attachment %q %v", b, op)
	}
	sc.send(`426["silent"]`) // handler returns nil: no ack
	sc.send("2")
	sc.expect("3") // the next thing the client sends is the pong, not an ack
	if c.Pending("ping?") != 1 || c.Pending("silent") != 1 {
		t.Fatal("events with ack ids are queued too")
	}

	if err := c.Emit("disconnect"); !errors.Is(err, ErrReservedName) {
		t.Fatalf("reserved: %v", err)
	}
}

func TestFakeOnHandlersRunInOrder(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{}, "40", `40{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	c.On("n", func(args []json.RawMessage) { got <- string(args[0]) })
	var names []string
	c.OnAny(func(ev *Event) { names = append(names, ev.Name) })
	sc.send(`42["n",1]`)
	sc.send(`42["n",2]`)
	for _, want := range []string{"1", "2"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %s want %s", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler not called")
		}
	}
}

func TestFakeDisconnectReasons(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cases := []struct {
		name   string
		server func(sc *fakeConn)
		reason string
	}{
		{"server namespace disconnect", func(sc *fakeConn) { sc.send("41") }, "io server disconnect"},
		{"engine close", func(sc *fakeConn) { sc.send("1") }, "transport close"},
		{"websocket close", func(sc *fakeConn) {
			_ = wsutil.WriteServerMessage(sc.conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		}, "transport close"},
		{"tcp drop", func(sc *fakeConn) { sc.conn.Close() }, "transport close"},
		{"parse error", func(sc *fakeConn) { sc.send(`42{"not":"an array"}`) }, "parse error"},
		{"unexpected binary", func(sc *fakeConn) { sc.sendBinary([]byte{1}) }, "parse error"},
		{"ping timeout", func(sc *fakeConn) {}, "ping timeout"}, // open packet says 300+200 ms
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, sc, err := dialFake(t, f, Options{StrictPingTimeout: true}, "40", `40{"sid":"s"}`)
			if err != nil {
				t.Fatal(err)
			}
			sc.send(`42["before",1]`)
			tc.server(sc)
			reason, _ := c.WaitDisconnect(ctx)
			if reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			// Buffered events survive the disconnect, then Wait fails.
			if args, err := c.Wait(ctx, "before"); err != nil || string(args[0]) != "1" {
				t.Fatalf("buffered event: %v %v", args, err)
			}
			if _, err := c.Wait(ctx, "before"); !errors.Is(err, ErrDisconnected) {
				t.Fatalf("Wait after disconnect: %v", err)
			}
			if _, err := c.EmitWithAck(ctx, "x"); err == nil {
				t.Fatal("EmitWithAck after disconnect: no error")
			}
		})
	}
}

func TestFakeClientClose(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{Namespace: "/n"}, "40/n,", `40/n,{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	sc.expect("41/n,")
	<-done
	reason, _ := c.WaitDisconnect(context.Background())
	if reason != "io client disconnect" {
		t.Fatal(reason)
	}
	if err := c.Emit("x"); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("emit after close: %v", err)
	}
}

func TestFakeWaitTimeoutAndBufferBound(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{MaxBuffered: 2}, "40", `40{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	for i := 1; i <= 3; i++ {
		sc.send(`42["e",` + string(rune('0'+i)) + `]`)
	}
	sc.send(`42["last"]`)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := c.Wait(ctx2, "last"); err != nil {
		t.Fatal(err)
	}
	if c.Pending("e") != 2 || c.Dropped("e") != 1 {
		t.Fatalf("pending %d dropped %d", c.Pending("e"), c.Dropped("e"))
	}
	args, _ := c.Wait(ctx2, "e")
	if string(args[0]) != "2" {
		t.Fatalf("oldest kept %s", args[0])
	}
}

func TestFakeRecoveryOffsetStripped(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{RecoverPID: "p1", RecoverOffset: "o1", Auth: map[string]int{"a": 1}},
		`40{"a":1,"offset":"o1","pid":"p1"}`, `40{"sid":"s","pid":"p1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Recovered() || c.Offset() != "o1" {
		t.Fatalf("recovered %v offset %q", c.Recovered(), c.Offset())
	}
	sc.send(`42["m","x","o2"]`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.Wait(ctx, "m")
	if err != nil || len(args) != 1 || string(args[0]) != `"x"` || c.Offset() != "o2" {
		t.Fatalf("%s %v %q", args, err, c.Offset())
	}
}

func TestFakeFragmentedAndControlFrames(t *testing.T) {
	f := newFakeServer(t)
	c, sc, err := dialFake(t, f, Options{}, "40", `40{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	// A websocket ping between two fragments of one message.
	_ = ws.WriteFrame(sc.conn, ws.NewFrame(ws.OpText, false, []byte(`42["fr`)))
	_ = ws.WriteFrame(sc.conn, ws.NewPingFrame([]byte("p")))
	_ = ws.WriteFrame(sc.conn, ws.NewFrame(ws.OpContinuation, true, []byte(`ag"]`)))
	sc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(sc.conn)
	if err != nil || h.OpCode != ws.OpPong || !h.Masked || h.Length != 1 {
		t.Fatalf("pong header %+v %v", h, err)
	}
	payload := make([]byte, 1)
	_, _ = io.ReadFull(sc.conn, payload)
	ws.Cipher(payload, h.Mask, 0)
	if string(payload) != "p" {
		t.Fatalf("pong payload %q", payload)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Wait(ctx, "frag"); err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:3000":       "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket",
		"https://example.com/ignored": "wss://example.com/socket.io/?EIO=4&transport=websocket",
		"ws://h:1":                    "ws://h:1/socket.io/?EIO=4&transport=websocket",
	} {
		got, err := handshakeURL(in, Options{Path: "/socket.io/", Transport: "websocket"})
		if err != nil || got.String() != want {
			t.Errorf("%s → %s %v", in, got, err)
		}
	}
	got, err := handshakeURL("ws://h:1", Options{Path: "/x/", Transport: "polling", Query: map[string][]string{"a": {"b"}}})
	if err != nil || got.String() != "http://h:1/x/?EIO=4&a=b&transport=polling" {
		t.Errorf("polling → %s %v", got, err)
	}
	if _, err := handshakeURL("ftp://x", Options{Transport: "websocket"}); err == nil {
		t.Error("ftp accepted")
	}
}

func TestFakePingGrace(t *testing.T) {
	f := newFakeServer(t)
	c, _, err := dialFake(t, f, Options{PingGrace: 400 * time.Millisecond}, "40", `40{"sid":"s"}`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reason, _ := c.WaitDisconnect(ctx)
	// 300 ms interval + 200 ms timeout + 400 ms grace.
	if reason != "ping timeout" || time.Since(start) < 850*time.Millisecond {
		t.Fatalf("%q after %v", reason, time.Since(start))
	}
}
