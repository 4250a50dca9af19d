package engineio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// logRecord is one captured log line.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// recordingHandler keeps every record with its attributes.
type recordingHandler struct {
	mu   sync.Mutex
	recs []logRecord
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// find returns the records with message msg.
func (h *recordingHandler) find(msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestPayloadTooLargeAnswerAndLog: a polling POST over maxPayload (announced or streamed) is answered
// 413 with the JSON body of the other engine errors, and logged once per session at Warn with the sid
// and the client address; a websocket frame over maxPayload is logged the same way.
func TestPayloadTooLargeAnswerAndLog(t *testing.T) {
	const max = 10_000
	logs := &recordingHandler{}
	ts := newTestServer(t, Options{MaxPayload: max, Logger: slog.New(logs)}, false)
	sid := ts.pollingSession()
	<-ts.conns
	q := "EIO=4&transport=polling&sid=" + sid
	check := func(what string, status int, body string) {
		t.Helper()
		var e struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s: status %d %q", what, status, body)
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == nil || *e.Code != CodeBadRequest || e.Message != MessagePayloadTooLarge {
			t.Fatalf("%s: body %q (%v), want {\"code\":3,\"message\":%q}", what, body, err, MessagePayloadTooLarge)
		}
	}
	for i := 0; i < 3; i++ { // announced Content-Length
		res := ts.do("POST", q, "4"+strings.Repeat("x", 2*max))
		check("announced", res.status, res.body)
	}
	// streamed without Content-Length
	req, _ := http.NewRequest("POST", ts.url+"?"+q, &endless{})
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := readAll(res)
	check("chunked", res.StatusCode, b)

	recs := logs.find("engineio: message over maxPayload refused")
	if len(recs) != 1 {
		t.Fatalf("4 refusals of one session logged %d times, want once", len(recs))
	}
	if r := recs[0]; r.level != slog.LevelWarn || r.attrs["sid"] != sid || !strings.HasPrefix(r.attrs["remote"], "127.0.0.1:") {
		t.Fatalf("log record %+v, want Warn with sid %s and the remote address", r, sid)
	}
	// the session still works (as Node: the client decides what to do after a 413)
	if res := ts.do("POST", q, "4ok"); res.status != 200 {
		t.Fatalf("POST after 413: %d %s", res.status, res.body)
	}

	// websocket: 1009 and one Warn line for that session
	c := ts.dialWS("EIO=4&transport=websocket")
	wsSID := parseOpen(t, c.readText()).SID
	<-ts.conns
	c.sendText("4" + strings.Repeat("y", max+1))
	if code := c.waitClosed(); code != ws.StatusMessageTooBig && code != 0 {
		t.Fatalf("close code %d", code)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		recs = logs.find("engineio: message over maxPayload refused")
		if len(recs) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(recs) != 2 || recs[1].attrs["sid"] != wsSID || recs[1].level != slog.LevelWarn || recs[1].attrs["transport"] != TransportWebSocket {
		t.Fatalf("websocket refusal log: %+v", recs)
	}
}

func readAll(res *http.Response) (string, error) {
	defer res.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(res.Body)
	return b.String(), err
}

// TestPollingInvalidUTF8: a text POST body with invalid UTF-8 is read as Node reads it (as a UTF-8
// string): each invalid byte becomes U+FFFD, in a bare message and inside a JSON string; the session
// stays open and valid UTF-8 (also multi-byte) is untouched.
func TestPollingInvalidUTF8(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	conn := ts.conn()
	rec := ts.rec(sid)
	q := "EIO=4&transport=polling&sid=" + sid
	cases := []struct{ body, want string }{
		{"4a\xffb", "a\uFFFDb"},
		{"4\xff\xfe\xfd", "\uFFFD\uFFFD\uFFFD"},
		{"4" + `42["chat","h` + "\xe2\x82" + `i"]`, `42["chat","h` + "\uFFFD\uFFFD" + `i"]`},
		{"4héllo €", "héllo €"},
		{"4x\x1e4y\xc0", "x"}, // two packets: "x", then "y\uFFFD"
	}
	for _, tc := range cases {
		res := ts.do("POST", q, tc.body)
		if res.status != 200 || res.body != "ok" {
			t.Fatalf("POST %q: %d %q", tc.body, res.status, res.body)
		}
		if got := string(rec.waitMsg(t).Data); got != tc.want {
			t.Fatalf("POST %q delivered %q, want %q", tc.body, got, tc.want)
		}
	}
	if got := string(rec.waitMsg(t).Data); got != "y\uFFFD" {
		t.Fatalf("second packet %q", got)
	}
	if err := conn.Send(Message{Data: []byte("still open")}); err != nil {
		t.Fatalf("session closed by invalid UTF-8: %v", err)
	}
}

// TestSlowConsumerByteBound: MaxQueuedBytes closes a client whose queue holds too many bytes even
// though it is far below MaxQueuedPackets; a single message larger than the bound still goes out
// through an empty queue.
func TestSlowConsumerByteBound(t *testing.T) {
	const bound = 64 << 10
	ts := newTestServer(t, Options{MaxQueuedBytes: bound}, false)
	sid := ts.pollingSession() // polling without a GET: nothing leaves the queue
	conn := ts.conn()
	chunk := Message{Data: bytes.Repeat([]byte("b"), 16<<10)}
	for i := 0; i < 4; i++ { // 64 KiB: exactly the bound
		if err := conn.Send(chunk); err != nil {
			t.Fatalf("send %d (%d bytes queued): %v", i, i*len(chunk.Data), err)
		}
	}
	if err := conn.Send(Message{Data: []byte("z")}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("send past the byte bound: %v", err)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrQueueFull) {
		t.Fatalf("close %+v", ev)
	}

	// one message bigger than the bound on an empty queue is accepted and delivered
	sid2 := ts.pollingSession()
	conn2 := ts.conn()
	huge := bytes.Repeat([]byte("h"), 3*bound)
	if err := conn2.Send(Message{Data: huge}); err != nil {
		t.Fatalf("single big message: %v", err)
	}
	if res := ts.do("GET", "EIO=4&transport=polling&sid="+sid2, ""); res.status != 200 || len(res.body) != 1+len(huge) {
		t.Fatalf("poll: %d, %d bytes", res.status, len(res.body))
	}
	// after the poll took the queue, the byte count starts again from zero
	for i := 0; i < 4; i++ {
		if err := conn2.Send(chunk); err != nil {
			t.Fatalf("send %d after the poll: %v", i, err)
		}
	}
}

// TestSlowConsumerOverflowDoesNotWait: the Send that overflows the queue of a websocket client that
// does not read returns at once, although the session's writer is stuck in a write (the close frame
// that would wait for it, up to closeLockWait, is sent from another goroutine).
func TestSlowConsumerOverflowDoesNotWait(t *testing.T) {
	ts := newTestServer(t, Options{MaxQueuedPackets: 1 << 20, MaxQueuedBytes: 1 << 20, WriteTimeout: 30 * time.Second}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	conn := ts.conn()
	if tc, ok := c.conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // a small window: the writer blocks soon
	}
	big := Message{Data: bytes.Repeat([]byte("s"), 64<<10)}
	var worst time.Duration
	sent := 0
	for ; sent < 10_000; sent++ {
		t0 := time.Now()
		err := conn.Send(big)
		if d := time.Since(t0); d > worst {
			worst = d
		}
		if errors.Is(err, ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let the writer catch up, until it blocks on the full socket
	}
	if ev := ts.rec(sid).waitClose(t, 3*time.Second); !errors.Is(ev.err, ErrQueueFull) {
		t.Fatalf("close %+v", ev)
	}
	t.Logf("closed after %d sends of 64 KiB (%d MiB into the kernel and the queue); slowest Send %v", sent, sent>>4, worst)
	if worst >= closeLockWait {
		t.Fatalf("a Send took %v: the overflow waited for the stuck writer", worst)
	}
}
