package engineio

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// closeEvent is one OnClose call.
type closeEvent struct {
	reason string
	err    error
}

// recorder is a Handler that records everything and optionally echoes.
type recorder struct {
	echo   bool
	slow   time.Duration // OnMessage sleeps this long
	msgs   chan Message
	closes chan closeEvent

	mu          sync.Mutex
	active      int // OnMessage calls in progress (must never exceed 1)
	maxAct      int
	closeInCall bool // OnClose ran while an OnMessage was in progress
}

func newRecorder(echo bool) *recorder {
	return &recorder{echo: echo, msgs: make(chan Message, 1024), closes: make(chan closeEvent, 4)}
}

func (r *recorder) OnMessage(c *Conn, data []byte, binary bool) {
	r.mu.Lock()
	r.active++
	if r.active > r.maxAct {
		r.maxAct = r.active
	}
	slow := r.slow
	r.mu.Unlock()
	cp := append([]byte(nil), data...)
	time.Sleep(slow)
	if r.echo {
		_ = c.Send(Message{Data: cp, Binary: binary})
	}
	select {
	case r.msgs <- Message{Data: cp, Binary: binary}:
	default:
	}
	r.mu.Lock()
	r.active--
	r.mu.Unlock()
}

func (r *recorder) OnClose(c *Conn, reason string, err error) {
	r.mu.Lock()
	if r.active > 0 {
		r.closeInCall = true
	}
	r.mu.Unlock()
	r.closes <- closeEvent{reason, err}
}

func (r *recorder) waitClose(t *testing.T, d time.Duration) closeEvent {
	t.Helper()
	select {
	case ev := <-r.closes:
		select {
		case ev2 := <-r.closes:
			t.Fatalf("OnClose called twice: %v then %v", ev, ev2)
		case <-time.After(20 * time.Millisecond):
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no OnClose within %v", d)
	}
	return closeEvent{}
}

func (r *recorder) waitMsg(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(3 * time.Second):
		t.Fatal("no message")
	}
	return Message{}
}

// testServer runs an engine.io Server in httptest; conns receive their Conn and recorder.
type testServer struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	url   string // http://host/engine.io/
	conns chan *Conn
	recs  sync.Map // sid → *recorder
}

func newTestServer(t *testing.T, opts Options, echo bool) *testServer {
	t.Helper()
	if opts.Path == "" {
		opts.Path = "/engine.io/"
	}
	if opts.ReadMode == ReadModeDefault && os.Getenv("ENGINEIO_TEST_READ_MODE") == "goroutine" {
		opts.ReadMode = ReadModeGoroutine // the whole suite against the goroutine reader
	}
	ts := &testServer{t: t, srv: NewServer(opts), conns: make(chan *Conn, 64)}
	ts.srv.OnConnection(func(c *Conn) {
		rec := newRecorder(echo)
		ts.recs.Store(c.ID(), rec)
		c.SetHandler(rec)
		ts.conns <- c
	})
	ts.http = httptest.NewServer(ts.srv)
	ts.url = ts.http.URL + opts.Path
	t.Cleanup(func() {
		// sessions whose client stopped polling cannot get their close packet:
		// keep the wait short
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = ts.srv.Close(ctx)
		ts.http.CloseClientConnections()
		ts.http.Close()
	})
	return ts
}

func (ts *testServer) rec(sid string) *recorder {
	v, ok := ts.recs.Load(sid)
	if !ok {
		ts.t.Fatalf("no recorder for %s", sid)
	}
	return v.(*recorder)
}

func (ts *testServer) conn() *Conn {
	select {
	case c := <-ts.conns:
		return c
	case <-time.After(3 * time.Second):
		ts.t.Fatal("no connection")
	}
	return nil
}

type httpResult struct {
	status int
	body   string
	header http.Header
}

func (ts *testServer) do(method, query, body string) httpResult {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+"?"+query, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpResult{res.StatusCode, string(b), res.Header}
}

type openPayload struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t *testing.T, s string) openPayload {
	t.Helper()
	if !strings.HasPrefix(s, "0") {
		t.Fatalf("not an open packet: %q", s)
	}
	var o openPayload
	if err := json.Unmarshal([]byte(s[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", s, err)
	}
	return o
}

// pollingSession handshakes over polling and returns the sid.
func (ts *testServer) pollingSession() string {
	ts.t.Helper()
	res := ts.do("GET", "EIO=4&transport=polling", "")
	if res.status != 200 {
		ts.t.Fatalf("handshake: %d %s", res.status, res.body)
	}
	return parseOpen(ts.t, res.body).SID
}

// wsClient is a minimal websocket client for the tests.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	r    io.Reader
}

func (ts *testServer) dialWS(query string) *wsClient {
	ts.t.Helper()
	return dialWSWith(ts.t, ws.Dialer{}, "ws"+strings.TrimPrefix(ts.url, "http")+"?"+query)
}

func dialWSWith(t *testing.T, d ws.Dialer, u string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &wsClient{t: t, conn: conn, r: conn}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *wsClient) send(op ws.OpCode, p []byte) {
	c.t.Helper()
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(op, true, p))); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

func (c *wsClient) sendText(s string) { c.send(ws.OpText, []byte(s)) }

// read returns the next frame (control frames included).
func (c *wsClient) read() (ws.Frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	f, err := ws.ReadFrame(c.r)
	if err == nil && f.Header.Rsv1() {
		f.Payload, err = wsflate.DefaultHelper.Decompress(f.Payload)
	}
	return f, err
}

func (c *wsClient) readText() string {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("ws read: %v", err)
	}
	if f.Header.OpCode != ws.OpText {
		c.t.Fatalf("want text frame, got op %v %q", f.Header.OpCode, f.Payload)
	}
	return string(f.Payload)
}

// waitClosed reads until a close frame or EOF and returns the close code (0 on EOF).
func (c *wsClient) waitClosed() ws.StatusCode {
	c.t.Helper()
	for {
		f, err := c.read()
		if err != nil {
			return 0
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return code
		}
	}
}
