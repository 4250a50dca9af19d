package engineio

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestHostileHandshakes: malformed handshakes and unknown sids are answered with Node's
// status and {code, message}, and none of them creates a session.
func TestHostileHandshakes(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	longSID := strings.Repeat("A", 10_000)
	cases := []struct {
		name, method, query string
		header              map[string]string
		status, code        int
	}{
		{"EIO 3", "GET", "EIO=3&transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"EIO missing", "GET", "transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"EIO garbage", "GET", "EIO=%FF%FE&transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"transport missing", "GET", "EIO=4", nil, 400, CodeUnknownTransport},
		{"transport unknown", "GET", "EIO=4&transport=flash", nil, 400, CodeUnknownTransport},
		{"transport twice", "GET", "EIO=4&transport=carrier-pigeon&transport=polling", nil, 400, CodeUnknownTransport},
		{"garbage query", "GET", "%zz%%=&&&=;;EIO", nil, 400, CodeUnknownTransport},
		{"POST handshake", "POST", "EIO=4&transport=polling", nil, 400, CodeBadHandshakeMethod},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", nil, 400, CodeBadHandshakeMethod},
		{"DELETE handshake", "DELETE", "EIO=4&transport=polling", nil, 400, CodeBadHandshakeMethod},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", nil, 400, CodeBadRequest},
		{"upgrade header on polling", "GET", "EIO=4&transport=polling", map[string]string{"Upgrade": "websocket"}, 400, CodeBadRequest},
		{"unknown sid GET", "GET", "EIO=4&transport=polling&sid=nope", nil, 400, CodeUnknownSID},
		{"unknown sid POST", "POST", "EIO=4&transport=polling&sid=nope", nil, 400, CodeUnknownSID},
		{"10 KB sid", "GET", "EIO=4&transport=polling&sid=" + longSID, nil, 400, CodeUnknownSID},
		{"sid with injection", "GET", "EIO=4&transport=polling&sid=%7B%22%24ne%22%3A1%7D", nil, 400, CodeUnknownSID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.url+"?"+tc.query, strings.NewReader("4hello"))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			b, _ := io.ReadAll(res.Body)
			if err := json.Unmarshal(b, &body); err != nil || body.Code == nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if res.StatusCode != tc.status || *body.Code != tc.code || body.Message == "" {
				t.Fatalf("got %d %s, want %d code %d", res.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	// a bad method on a known sid
	sid := ts.pollingSession()
	<-ts.conns
	if res := ts.do("PATCH", "EIO=4&transport=polling&sid="+sid, "4x"); res.status != 400 || !strings.Contains(res.body, `"code":3`) {
		t.Fatalf("PATCH on a session: %d %s", res.status, res.body)
	}
	if n := ts.srv.Count(); n != 1 {
		t.Fatalf("%d sessions after %d malformed handshakes, want only the valid one", n, len(cases))
	}
}

// TestHostilePollingBodies: a POST body over maxPayload is refused with 413 whether it
// announces its length or streams without end; the server reads a bounded amount.
func TestHostilePollingBodies(t *testing.T) {
	const max = 100_000
	ts := newTestServer(t, Options{MaxPayload: max}, false)
	sid := ts.pollingSession()
	<-ts.conns
	u := ts.url + "?EIO=4&transport=polling&sid=" + sid

	// Content-Length over the limit: refused without reading.
	res := ts.do("POST", "EIO=4&transport=polling&sid="+sid, "4"+strings.Repeat("x", 2*max))
	if res.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("announced huge body: %d %q", res.status, res.body)
	}

	// An endless chunked body: the server stops after max+1 bytes.
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	body := &endless{}
	req, _ := http.NewRequest("POST", u, body)
	req.ContentLength = -1 // chunked
	done := make(chan *http.Response, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- nil
			return
		}
		r.Body.Close()
		done <- r
	}()
	select {
	case r := <-done:
		if r != nil && r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("endless body: status %d", r.StatusCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("endless body still being read after 5s (%d bytes)", body.n.Load())
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	sent := body.n.Load()
	// net/http drains at most 256 KB after the handler; the rest is socket buffers.
	if sent > 16<<20 {
		t.Fatalf("client could push %d bytes into an endless body", sent)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes during an endless body", grew)
	}
	t.Logf("endless chunked body: client wrote %d bytes before the 413 (maxPayload %d)", sent, max)

	// The session survives both refusals (as Node: the client decides).
	if res := ts.do("POST", "EIO=4&transport=polling&sid="+sid, "4ok"); res.status != 200 {
		t.Fatalf("normal POST afterwards: %d %s", res.status, res.body)
	}
}

// endless is a request body that never ends.
type endless struct{ n atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	if e.n.Add(int64(len(p))) > 1<<30 {
		return 0, errors.New("stop")
	}
	return len(p), nil
}

// TestHostileWebSocketFrames: a frame over maxPayload closes with 1009, invalid UTF-8 in a text
// frame with 1007 (RFC 6455 §8.1), a masked-less client frame with 1002; each ends the session
// with "transport error" and other sessions keep working.
func TestHostileWebSocketFrames(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 1000}, true)
	cases := []struct {
		name   string
		frame  ws.Frame
		mask   bool
		code   ws.StatusCode
		reason string
	}{
		{"over maxPayload", ws.NewTextFrame([]byte("4" + strings.Repeat("x", 1001))), true, ws.StatusMessageTooBig, ReasonTransportError},
		{"binary over maxPayload", ws.NewBinaryFrame(make([]byte, 5000)), true, ws.StatusMessageTooBig, ReasonTransportError},
		{"invalid UTF-8", ws.NewTextFrame([]byte("4\xff\xfe\xfd")), true, ws.StatusInvalidFramePayloadData, ReasonTransportError},
		{"truncated UTF-8", ws.NewTextFrame([]byte("4h\xe2\x82")), true, ws.StatusInvalidFramePayloadData, ReasonTransportError},
		{"unmasked", ws.NewTextFrame([]byte("4hi")), false, ws.StatusProtocolError, ReasonTransportError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dialWS("EIO=4&transport=websocket")
			parseOpen(t, c.readText())
			conn := ts.conn()
			f := tc.frame
			if tc.mask {
				f = ws.MaskFrame(f)
			}
			if err := ws.WriteFrame(c.conn, f); err != nil {
				t.Fatal(err)
			}
			// 0: the connection ended without a close frame. sendClose skips the frame when the
			// session's writer holds the write lock at that moment (TryLock); the session closes either way.
			if code := c.waitClosed(); code != tc.code && code != 0 {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			if ev := ts.rec(conn.ID()).waitClose(t, 3*time.Second); ev.reason != tc.reason {
				t.Fatalf("reason %q (%v), want %q", ev.reason, ev.err, tc.reason)
			}
		})
	}
	// the server still serves
	c := ts.dialWS("EIO=4&transport=websocket")
	parseOpen(t, c.readText())
	<-ts.conns
	c.sendText("4still here")
	if got := c.readText(); got != "4still here" {
		t.Fatalf("echo %q", got)
	}
}
