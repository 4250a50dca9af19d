package engineio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestHandshakeErrors(t *testing.T) {
	ts := newTestServer(t, Options{
		AllowRequest: func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("origin not allowed")
			}
			return nil
		},
	}, false)
	cases := []struct {
		name, method, query string
		header              string
		status, code        int
		message             string
	}{
		{"no EIO", "GET", "transport=polling", "", 400, CodeUnsupportedProtocol, "Unsupported protocol version"},
		{"EIO 3", "GET", "EIO=3&transport=polling", "", 400, CodeUnsupportedProtocol, "Unsupported protocol version"},
		{"EIO abc", "GET", "EIO=abc&transport=polling", "", 400, CodeUnsupportedProtocol, "Unsupported protocol version"},
		{"no transport", "GET", "EIO=4", "", 400, CodeUnknownTransport, "Transport unknown"},
		{"bad transport", "GET", "EIO=4&transport=abc", "", 400, CodeUnknownTransport, "Transport unknown"},
		{"POST handshake", "POST", "EIO=4&transport=polling", "", 400, CodeBadHandshakeMethod, "Bad handshake method"},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", "", 400, CodeBadHandshakeMethod, "Bad handshake method"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", "", 400, CodeUnknownSID, "Session ID unknown"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", "", 400, CodeBadRequest, "Bad request"},
		{"forbidden", "GET", "EIO=4&transport=polling", "X-Deny", 403, CodeForbidden, "origin not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.url+"?"+tc.query, nil)
			if tc.header != "" {
				req.Header.Set(tc.header, "1")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || body.Code != tc.code || body.Message != tc.message {
				t.Fatalf("got %d %+v, want %d code %d %q", res.StatusCode, body, tc.status, tc.code, tc.message)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content-type %q", ct)
			}
		})
	}
	if n := ts.srv.Count(); n != 0 {
		t.Fatalf("Count = %d after refused handshakes", n)
	}
}

func TestPollingHandshake(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond,
		Cookie: &CookieOptions{HTTPOnly: true}}, false)
	res := ts.do("GET", "EIO=4&transport=polling&foo=bar", "")
	if res.status != 200 {
		t.Fatalf("status %d", res.status)
	}
	if ct := res.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Fatalf("content-type %q", ct)
	}
	o := parseOpen(t, res.body)
	if len(o.SID) != 20 || strings.ContainsAny(o.SID, "+/=") {
		t.Fatalf("sid %q is not 20 URL-safe chars", o.SID)
	}
	if len(o.Upgrades) != 1 || o.Upgrades[0] != "websocket" || o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1_000_000 {
		t.Fatalf("open packet %+v", o)
	}
	if ck := res.header.Get("Set-Cookie"); !strings.HasPrefix(ck, "io="+o.SID+";") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Lax") {
		t.Fatalf("cookie %q", ck)
	}
	c := ts.conn()
	if c.ID() != o.SID || c.Transport() != "polling" || ts.srv.Count() != 1 {
		t.Fatalf("conn %s %s count %d", c.ID(), c.Transport(), ts.srv.Count())
	}
	hs := c.Handshake()
	if hs.Query.Get("foo") != "bar" || hs.RemoteAddr == "" || hs.Time.IsZero() || !strings.Contains(hs.URL, "foo=bar") || hs.Secure {
		t.Fatalf("handshake %+v", hs)
	}
	if ts.pollingSession() == o.SID {
		t.Fatal("sids are not unique")
	}
}

func TestUpgradesDisabledOrWebsocketOnly(t *testing.T) {
	ts := newTestServer(t, Options{DisableUpgrades: true}, false)
	if o := parseOpen(t, ts.do("GET", "EIO=4&transport=polling", "").body); len(o.Upgrades) != 0 {
		t.Fatalf("upgrades %v with DisableUpgrades", o.Upgrades)
	}
	ts2 := newTestServer(t, Options{Transports: []string{"websocket"}}, false)
	if res := ts2.do("GET", "EIO=4&transport=polling", ""); res.status != 400 || !strings.Contains(res.body, `"code":0`) {
		t.Fatalf("polling allowed on websocket-only server: %d %s", res.status, res.body)
	}
}

func TestPollingRoundTrip(t *testing.T) {
	ts := newTestServer(t, Options{}, true)
	sid := ts.pollingSession()
	q := "EIO=4&transport=polling&sid=" + sid
	res := ts.do("POST", q, "4hello\x1e4\x1ebAQIDBA==\x1e4é")
	if res.status != 200 || res.body != "ok" {
		t.Fatalf("post: %d %q", res.status, res.body)
	}
	rec := ts.rec(sid)
	want := []Message{{Data: []byte("hello")}, {Data: []byte{}}, {Data: []byte{1, 2, 3, 4}, Binary: true}, {Data: []byte("é")}}
	for i, w := range want {
		m := rec.waitMsg(t)
		if !bytes.Equal(m.Data, w.Data) || m.Binary != w.Binary {
			t.Fatalf("message %d: %+v, want %+v", i, m, w)
		}
	}
	res = ts.do("GET", q, "")
	if res.status != 200 || res.body != "4hello\x1e4\x1ebAQIDBA==\x1e4é" {
		t.Fatalf("poll: %d %q", res.status, res.body)
	}
	if res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("cache-control %q", res.header.Get("Cache-Control"))
	}
}

func TestSendIsAtomicAndOrdered(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	c := ts.conn()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_ = c.Send(Message{Data: []byte("a")}, Message{Data: []byte("b")}, Message{Data: []byte("c")})
			}
		}()
	}
	wg.Wait()
	got := ""
	for len(got) < 4*20*3*2-1 {
		res := ts.do("GET", "EIO=4&transport=polling&sid="+sid, "")
		if res.status != 200 {
			t.Fatalf("poll %d", res.status)
		}
		if got != "" {
			got += "\x1e"
		}
		got += res.body
	}
	if want := strings.TrimSuffix(strings.Repeat("4a\x1e4b\x1e4c\x1e", 80), "\x1e"); got != want {
		t.Fatalf("interleaved payload: %q", got)
	}
}

func TestPollWaitsForData(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	c := ts.conn()
	done := make(chan httpResult)
	go func() { done <- ts.do("GET", "EIO=4&transport=polling&sid="+sid, "") }()
	select {
	case r := <-done:
		t.Fatalf("GET answered before data: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if !c.SendVolatile(Message{Data: []byte("v")}) {
		t.Fatal("SendVolatile dropped with a pending GET")
	}
	if r := <-done; r.body != "4v" {
		t.Fatalf("got %q", r.body)
	}
	if c.SendVolatile(Message{Data: []byte("dropped")}) {
		t.Fatal("SendVolatile queued without a pending GET")
	}
}

func TestPollingParseError(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	rec := ts.rec(sid)
	res := ts.do("POST", "EIO=4&transport=polling&sid="+sid, "4ok\x1eabc")
	if res.status != 400 {
		t.Fatalf("status %d", res.status)
	}
	if m := rec.waitMsg(t); string(m.Data) != "ok" {
		t.Fatalf("packet before the bad one not delivered: %q", m.Data)
	}
	if ev := rec.waitClose(t, time.Second); ev.reason != ReasonParseError {
		t.Fatalf("reason %q", ev.reason)
	}
	if res := ts.do("GET", "EIO=4&transport=polling&sid="+sid, ""); res.status != 400 {
		t.Fatalf("session still open: %d", res.status)
	}
}

func TestConcurrentGETClosesSession(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	rec := ts.rec(sid)
	q := "EIO=4&transport=polling&sid=" + sid
	first := make(chan httpResult)
	go func() { first <- ts.do("GET", q, "") }()
	time.Sleep(50 * time.Millisecond)
	second := ts.do("GET", q, "")
	if second.status != 400 {
		t.Fatalf("second GET: %d", second.status)
	}
	if r := <-first; r.status != 200 || r.body != "1" {
		t.Fatalf("first GET: %d %q", r.status, r.body)
	}
	if ev := rec.waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPollOverlap) {
		t.Fatalf("close %+v", ev)
	}
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("after close: %d", r.status)
	}
}

func TestClientClosePacketPolling(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	rec := ts.rec(sid)
	q := "EIO=4&transport=polling&sid=" + sid
	get := make(chan httpResult)
	go func() { get <- ts.do("GET", q, "") }()
	time.Sleep(50 * time.Millisecond)
	if r := ts.do("POST", q, "1"); r.status != 200 {
		t.Fatalf("post close: %d", r.status)
	}
	if r := <-get; r.status != 200 || r.body != "6" {
		t.Fatalf("pending GET: %d %q", r.status, r.body)
	}
	if ev := rec.waitClose(t, time.Second); ev.reason != ReasonTransportClose {
		t.Fatalf("reason %q", ev.reason)
	}
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("after close: %d", r.status)
	}
	if ts.srv.Count() != 0 {
		t.Fatalf("Count %d", ts.srv.Count())
	}
}

func TestClientCloseRacingGET(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	q := "EIO=4&transport=polling&sid=" + sid
	if r := ts.do("POST", q, "1"); r.status != 200 {
		t.Fatalf("post close: %d", r.status)
	}
	// the GET that was in flight when the close packet arrived gets noop, once
	if r := ts.do("GET", q, ""); r.status != 200 || r.body != "6" {
		t.Fatalf("racing GET: %d %q", r.status, r.body)
	}
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("later GET: %d", r.status)
	}
}

func TestPollingMaxPayload(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 100}, false)
	sid := ts.pollingSession()
	q := "EIO=4&transport=polling&sid=" + sid
	if r := ts.do("POST", q, "4"+strings.Repeat("x", 99)); r.status != 200 {
		t.Fatalf("payload of exactly maxPayload: %d", r.status)
	}
	if r := ts.do("POST", q, "4"+strings.Repeat("x", 100)); r.status != 413 {
		t.Fatalf("payload over maxPayload: %d", r.status)
	}
	if m := ts.rec(sid).waitMsg(t); len(m.Data) != 99 {
		t.Fatalf("got %d bytes", len(m.Data))
	}
	select {
	case m := <-ts.rec(sid).msgs:
		t.Fatalf("oversized payload delivered (%d bytes)", len(m.Data))
	case <-time.After(50 * time.Millisecond):
	}
}

func TestBinaryContentTypeRefused(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	req, _ := http.NewRequest("POST", ts.url+"?EIO=4&transport=polling&sid="+sid, strings.NewReader("4x"))
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError {
		t.Fatalf("reason %q", ev.reason)
	}
}

func TestCORS(t *testing.T) {
	ts := newTestServer(t, Options{CORS: &CORSOptions{Origins: []string{"https://a.example"}, Credentials: true, MaxAge: time.Hour}}, false)
	req, _ := http.NewRequest("OPTIONS", ts.url+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://a.example")
	req.Header.Set("Access-Control-Request-Headers", "x-token")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := res.Header
	if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://a.example" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Headers") != "x-token" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") != "3600" {
		t.Fatalf("preflight %d %v", res.StatusCode, h)
	}
	req, _ = http.NewRequest("GET", ts.url+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://evil.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("disallowed origin got ACAO %q", v)
	}

	star := newTestServer(t, Options{CORS: &CORSOptions{Origins: []string{"*"}}}, false)
	req, _ = http.NewRequest("GET", star.url+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://any.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "*" || res.StatusCode != 200 {
		t.Fatalf("star: %d ACAO %q", res.StatusCode, v)
	}
	starCred := newTestServer(t, Options{CORS: &CORSOptions{Origins: []string{"*"}, Credentials: true}}, false)
	req, _ = http.NewRequest("GET", starCred.url+"?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://any.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get("Access-Control-Allow-Origin"); v != "https://any.example" {
		t.Fatalf("star with credentials must reflect the origin, got %q", v)
	}
}

func TestWebSocketSession(t *testing.T) {
	ts := newTestServer(t, Options{}, true)
	c := ts.dialWS("EIO=4&transport=websocket")
	o := parseOpen(t, c.readText())
	if len(o.Upgrades) != 0 {
		t.Fatalf("upgrades %v", o.Upgrades)
	}
	conn := ts.conn()
	if conn.Transport() != "websocket" || conn.ID() != o.SID {
		t.Fatalf("conn %s %s", conn.Transport(), conn.ID())
	}
	c.sendText("4hello")
	if got := c.readText(); got != "4hello" {
		t.Fatalf("echo %q", got)
	}
	c.send(ws.OpBinary, []byte{1, 2, 3})
	f, err := c.read()
	if err != nil || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, []byte{1, 2, 3}) {
		t.Fatalf("binary echo: %v %v %v", err, f.Header.OpCode, f.Payload)
	}
	// a base64 binary packet in a text frame is a binary message too
	c.sendText("bAQID")
	f, err = c.read()
	if err != nil || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, []byte{1, 2, 3}) {
		t.Fatalf("b64 echo: %v %v %v", err, f.Header.OpCode, f.Payload)
	}
	// fragmented message with a ping in between
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpText, false, []byte("4fr"))))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewPingFrame([]byte("p"))))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, []byte("ag"))))
	f, err = c.read()
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "p" {
		t.Fatalf("pong: %v %v %q", err, f.Header.OpCode, f.Payload)
	}
	if got := c.readText(); got != "4frag" {
		t.Fatalf("fragmented echo %q", got)
	}
	c.sendText("1")
	if ev := ts.rec(o.SID).waitClose(t, time.Second); ev.reason != ReasonTransportClose {
		t.Fatalf("reason %q", ev.reason)
	}
	c.waitClosed()
}

func TestWebSocketParseError(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	c.sendText("abc")
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonParseError {
		t.Fatalf("reason %q", ev.reason)
	}
	c.waitClosed()
}

func TestWebSocketPeerGone(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	c.conn.Close()
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportClose {
		t.Fatalf("reason %q", ev.reason)
	}
}

func TestWebSocketMaxPayload(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 100}, true)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	c.sendText("4" + strings.Repeat("x", 99))
	if got := c.readText(); len(got) != 100 {
		t.Fatalf("echo of exactly maxPayload: %d bytes", len(got))
	}
	c.sendText("4" + strings.Repeat("x", 100))
	if code := c.waitClosed(); code != ws.StatusMessageTooBig {
		t.Fatalf("close code %d", code)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPayloadTooBig) {
		t.Fatalf("close %+v", ev)
	}
}

func TestWebSocketMaxPayloadAcrossFragments(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 100}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpText, false, []byte("4"+strings.Repeat("x", 60)))))
	_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, []byte(strings.Repeat("x", 60)))))
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError {
		t.Fatalf("close %+v", ev)
	}
}

func TestUpgrade(t *testing.T) {
	ts := newTestServer(t, Options{}, true)
	sid := ts.pollingSession()
	conn := ts.conn()
	q := "EIO=4&transport=polling&sid=" + sid
	pending := make(chan httpResult)
	go func() { pending <- ts.do("GET", q, "") }()
	time.Sleep(50 * time.Millisecond)

	c := ts.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	if got := c.readText(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if r := <-pending; r.status != 200 || r.body != "6" {
		t.Fatalf("pending GET during upgrade: %d %q", r.status, r.body)
	}
	// a second websocket for the same sid is closed
	c2 := ts.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c2.waitClosed()

	if err := conn.Send(Message{Data: []byte("queued")}); err != nil {
		t.Fatal(err)
	}
	c.sendText("5")
	if got := c.readText(); got != "4queued" {
		t.Fatalf("queued message after upgrade: %q", got)
	}
	if conn.Transport() != "websocket" {
		t.Fatalf("transport %q", conn.Transport())
	}
	c.sendText("4hi")
	if got := c.readText(); got != "4hi" {
		t.Fatalf("echo %q", got)
	}
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("polling after upgrade: %d", r.status)
	}
	if r := ts.do("POST", q, "4x"); r.status != 400 {
		t.Fatalf("polling POST after upgrade: %d", r.status)
	}
	c.sendText("4still")
	if got := c.readText(); got != "4still" {
		t.Fatalf("session broken by refused polling: %q", got)
	}
}

func TestUpgradeTimeout(t *testing.T) {
	ts := newTestServer(t, Options{UpgradeTimeout: 100 * time.Millisecond}, true)
	sid := ts.pollingSession()
	conn := ts.conn()
	c := ts.dialWS("EIO=4&transport=websocket&sid=" + sid)
	c.sendText("2probe")
	if got := c.readText(); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	c.waitClosed() // no "5" within UpgradeTimeout
	if conn.Transport() != "polling" {
		t.Fatalf("transport %q", conn.Transport())
	}
	q := "EIO=4&transport=polling&sid=" + sid
	if r := ts.do("POST", q, "4after"); r.status != 200 {
		t.Fatalf("post after failed upgrade: %d", r.status)
	}
	if r := ts.do("GET", q, ""); r.body != "4after" {
		t.Fatalf("poll after failed upgrade: %q", r.body)
	}
}

func TestHeartbeat(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	for i := 0; i < 3; i++ {
		if got := c.readText(); got != "2" {
			t.Fatalf("ping %d: %q", i, got)
		}
		c.sendText("3")
	}
	start := time.Now()
	if got := c.readText(); got != "2" {
		t.Fatalf("ping: %q", got)
	}
	ev := ts.rec(sid).waitClose(t, time.Second)
	if ev.reason != ReasonPingTimeout {
		t.Fatalf("reason %q", ev.reason)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("closed %v after the ping, before pingTimeout", d)
	}
}

func TestPollingPingTimeout(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond}, false)
	sid := ts.pollingSession()
	q := "EIO=4&transport=polling&sid=" + sid
	if r := ts.do("GET", q, ""); r.body != "2" {
		t.Fatalf("poll: %q", r.body)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonPingTimeout {
		t.Fatalf("reason %q", ev.reason)
	}
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("after ping timeout: %d", r.status)
	}
}

func TestClientPingIsError(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	c.sendText("2")
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrHeartbeatOrder) {
		t.Fatalf("close %+v", ev)
	}
}

func TestSlowConsumerPolling(t *testing.T) {
	ts := newTestServer(t, Options{MaxQueuedPackets: 4}, false)
	sid := ts.pollingSession()
	conn := ts.conn()
	for i := 0; i < 4; i++ {
		if err := conn.Send(Message{Data: []byte("x")}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := conn.Send(Message{Data: []byte("x")}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("send past the bound: %v", err)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrQueueFull) {
		t.Fatalf("close %+v", ev)
	}
	if err := conn.Send(Message{Data: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestSlowConsumerWebSocketDoesNotBlockOthers(t *testing.T) {
	ts := newTestServer(t, Options{MaxQueuedPackets: 8, WriteTimeout: 5 * time.Second}, false)
	slow := ts.dialWS("EIO=4&transport=websocket")
	slowSID := parseOpen(t, slow.readText()).SID
	slowConn := ts.conn()
	fast := ts.dialWS("EIO=4&transport=websocket")
	parseOpen(t, fast.readText())
	fastConn := ts.conn()

	big := Message{Data: bytes.Repeat([]byte("z"), 256<<10)}
	small := Message{Data: []byte("tick")}
	received := make(chan int)
	go func() {
		n := 0
		for {
			f, err := fast.read()
			if err != nil {
				break
			}
			if string(f.Payload) == "4tick" {
				n++
				if n == 200 {
					break
				}
			}
		}
		received <- n
	}()
	slowClosed := false
	start := time.Now()
	for i := 0; i < 200; i++ {
		if !slowClosed {
			if err := slowConn.Send(big); err != nil {
				slowClosed = true
			}
		}
		if err := fastConn.Send(small); err != nil {
			t.Fatalf("fast client send %d: %v", i, err)
		}
		time.Sleep(time.Millisecond)
	}
	if !slowClosed {
		t.Fatal("the client that does not read was never closed")
	}
	if ev := ts.rec(slowSID).waitClose(t, 3*time.Second); ev.reason != ReasonTransportError {
		t.Fatalf("slow close %+v", ev)
	}
	if n := <-received; n != 200 {
		t.Fatalf("fast client got %d/200", n)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("broadcast loop took %v: Send blocked on the slow client", d)
	}
}

func TestConnClosePolling(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	conn := ts.conn()
	q := "EIO=4&transport=polling&sid=" + sid
	_ = conn.Send(Message{Data: []byte("last")})
	conn.Close(ReasonForcedClose)
	if r := ts.do("GET", q, ""); r.status != 200 || r.body != "4last\x1e1" {
		t.Fatalf("poll after Close: %d %q", r.status, r.body)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonForcedClose {
		t.Fatalf("reason %q", ev.reason)
	}
	if err := conn.Send(Message{Data: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestGracefulServerClose(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	wsc := ts.dialWS("EIO=4&transport=websocket")
	wsSID := parseOpen(t, wsc.readText()).SID
	wsConn := ts.conn()
	pollSID := ts.pollingSession()
	ts.conn()
	pending := make(chan httpResult)
	go func() { pending <- ts.do("GET", "EIO=4&transport=polling&sid="+pollSID, "") }()
	time.Sleep(50 * time.Millisecond)

	_ = wsConn.Send(Message{Data: []byte("bye")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ts.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := wsc.readText(); got != "4bye" {
		t.Fatalf("queued message lost on close: %q", got)
	}
	if got := wsc.readText(); got != "1" {
		t.Fatalf("close packet: %q", got)
	}
	if code := wsc.waitClosed(); code != ws.StatusNormalClosure {
		t.Fatalf("close code %d", code)
	}
	if r := <-pending; r.body != "1" {
		t.Fatalf("polling client got %q", r.body)
	}
	for _, sid := range []string{wsSID, pollSID} {
		if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonServerShutdown {
			t.Fatalf("%s reason %q", sid, ev.reason)
		}
	}
	if ts.srv.Count() != 0 {
		t.Fatalf("Count %d", ts.srv.Count())
	}
	if r := ts.do("GET", "EIO=4&transport=polling", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Close: %d", r.status)
	}
}

func TestServerCloseBoundedByContext(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: time.Minute, PingTimeout: time.Minute}, false)
	sid := ts.pollingSession() // never polls again: its close packet cannot be delivered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonServerShutdown {
		t.Fatalf("reason %q", ev.reason)
	}
}

func TestHandlerCallsAreSerialized(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	conn := ts.conn()
	rec := ts.rec(sid)
	rec.mu.Lock()
	rec.slow = 150 * time.Millisecond
	rec.mu.Unlock()
	c.sendText("4first")
	c.sendText("4second")
	time.Sleep(50 * time.Millisecond) // "first" is being handled
	conn.Close(ReasonForcedClose)
	if ev := rec.waitClose(t, 2*time.Second); ev.reason != ReasonForcedClose {
		t.Fatalf("reason %q", ev.reason)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.closeInCall || rec.maxAct != 1 {
		t.Fatalf("handler calls overlapped (closeInCall=%v maxActive=%d)", rec.closeInCall, rec.maxAct)
	}
	if len(rec.msgs) != 1 {
		t.Fatalf("%d messages delivered, want only the one received before Close", len(rec.msgs))
	}
}

func TestPathMismatch(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	res, err := http.Get(ts.http.URL + "/other/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func TestPollAbortedByClient(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.url+"?EIO=4&transport=polling&sid="+sid, nil)
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request not cancelled")
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonTransportError || !errors.Is(ev.err, ErrPollAborted) {
		t.Fatalf("close %+v", ev)
	}
}

func TestWebSocketStickyCookie(t *testing.T) {
	ts := newTestServer(t, Options{Cookie: &CookieOptions{Name: "lb"}}, false)
	var cookie string
	d := ws.Dialer{OnHeader: func(k, v []byte) error {
		if strings.EqualFold(string(k), "Set-Cookie") {
			cookie = string(v)
		}
		return nil
	}}
	c := dialWSWith(t, d, "ws"+strings.TrimPrefix(ts.url, "http")+"?EIO=4&transport=websocket")
	sid := parseOpen(t, c.readText()).SID
	if !strings.HasPrefix(cookie, "lb="+sid+";") || !strings.Contains(cookie, "Path=/") {
		t.Fatalf("cookie %q for sid %s", cookie, sid)
	}
}

// A timer that fires late (busy machine) must not let a request arriving after
// the pong deadline find the session open.
func TestPongDeadlineCheckedOnRequest(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: time.Hour}, false)
	sid := ts.pollingSession()
	conn := ts.conn()
	q := "EIO=4&transport=polling&sid=" + sid
	if r := ts.do("GET", q, ""); r.body != "2" {
		t.Fatalf("poll: %q", r.body)
	}
	conn.mu.Lock()
	conn.hbDue = time.Now().Add(-time.Millisecond) // the timer "should" have fired
	conn.mu.Unlock()
	if r := ts.do("GET", q, ""); r.status != 400 {
		t.Fatalf("GET after the pong deadline: %d %q", r.status, r.body)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonPingTimeout {
		t.Fatalf("reason %q", ev.reason)
	}
}
