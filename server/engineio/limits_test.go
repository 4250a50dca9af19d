package engineio

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// headerIP keys the limits on X-Test-IP, so one test process can play several addresses.
func headerIP(r *http.Request) string { return r.Header.Get("X-Test-IP") }

func (ts *testServer) handshakeFrom(ip string) httpResult {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.url+"?EIO=4&transport=polling", nil)
	req.Header.Set("X-Test-IP", ip)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpResult{res.StatusCode, string(b), res.Header}
}

func wantRefusal(t *testing.T, res httpResult, status int, message string) {
	t.Helper()
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if res.status != status || json.Unmarshal([]byte(res.body), &body) != nil || body.Code != CodeForbidden || body.Message != message {
		t.Fatalf("want %d {code:4, message:%q}, got %d %q", status, message, res.status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
}

func TestLimitsConnectionsPerIP(t *testing.T) {
	logs := &countingHandler{}
	ts := newTestServer(t, Options{Logger: slog.New(logs), Limits: Limits{
		ConnectionsPerIP: 3, HandshakesPerSecond: -1, ClientIP: headerIP}}, false)
	var sids []string
	for i := 0; i < 3; i++ {
		res := ts.handshakeFrom("10.0.0.1")
		if res.status != 200 {
			t.Fatalf("handshake %d: %d %s", i, res.status, res.body)
		}
		sids = append(sids, parseOpen(t, res.body).SID)
	}
	for i := 0; i < 10; i++ {
		wantRefusal(t, ts.handshakeFrom("10.0.0.1"), http.StatusForbidden, MessageTooManyConnections)
	}
	// a websocket handshake over the limit is refused before the upgrade
	req, _ := http.NewRequest("GET", ts.url+"?EIO=4&transport=websocket", nil)
	req.Header.Set("X-Test-IP", "10.0.0.1")
	_, _, _, err := ws.Dialer{Header: ws.HandshakeHeaderHTTP(req.Header)}.Dial(context.Background(),
		"ws"+strings.TrimPrefix(ts.url, "http")+"?EIO=4&transport=websocket")
	var se ws.StatusError
	if err == nil || !errors.As(err, &se) || int(se) != http.StatusForbidden {
		t.Fatalf("websocket over the limit: %v", err)
	}
	// other addresses are not affected
	if res := ts.handshakeFrom("10.0.0.2"); res.status != 200 {
		t.Fatalf("other address: %d %s", res.status, res.body)
	}
	if got := logs.count("engineio: handshake refused by limit"); got != 1 {
		t.Fatalf("11 refusals logged %d times, want once", got)
	}
	if ts.srv.Count() != 4 {
		t.Fatalf("sessions %d, want 4", ts.srv.Count())
	}
	// closing a session frees its slot
	if res := ts.do("POST", "EIO=4&transport=polling&sid="+sids[0], "1"); res.status != 200 {
		t.Fatalf("close: %d %s", res.status, res.body)
	}
	deadline := time.Now().Add(3 * time.Second)
	for ts.srv.limits.openFor("10.0.0.1") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %d open", ts.srv.limits.openFor("10.0.0.1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if res := ts.handshakeFrom("10.0.0.1"); res.status != 200 {
		t.Fatalf("after a close: %d %s", res.status, res.body)
	}
}

// TestLimitsConcurrentHandshakes: 50 simultaneous handshakes from one address never
// open more sessions than ConnectionsPerIP (slots are reserved before the session exists).
func TestLimitsConcurrentHandshakes(t *testing.T) {
	ts := newTestServer(t, Options{Limits: Limits{ConnectionsPerIP: 10, HandshakesPerSecond: -1, ClientIP: headerIP}}, false)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := ts.handshakeFrom("10.0.0.9")
			mu.Lock()
			defer mu.Unlock()
			switch res.status {
			case 200:
				ok++
			case 403:
				refused++
			}
		}()
	}
	wg.Wait()
	if ok != 10 || refused != 40 || ts.srv.Count() != 10 {
		t.Fatalf("ok %d refused %d sessions %d, want 10/40/10", ok, refused, ts.srv.Count())
	}
}

func TestLimitsHandshakeRate(t *testing.T) {
	logs := &countingHandler{}
	ts := newTestServer(t, Options{Logger: slog.New(logs), Limits: Limits{
		ConnectionsPerIP: -1, HandshakesPerSecond: 10, HandshakeBurst: 5, ClientIP: headerIP}}, false)
	for i := 0; i < 5; i++ {
		if res := ts.handshakeFrom("10.0.1.1"); res.status != 200 {
			t.Fatalf("handshake %d within the burst: %d %s", i, res.status, res.body)
		}
	}
	for i := 0; i < 5; i++ {
		res := ts.handshakeFrom("10.0.1.1")
		wantRefusal(t, res, http.StatusTooManyRequests, MessageTooManyHandshakes)
		if res.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if got := logs.count("engineio: handshake refused by limit"); got != 1 {
		t.Fatalf("5 refusals logged %d times, want once", got)
	}
	if res := ts.handshakeFrom("10.0.1.2"); res.status != 200 {
		t.Fatalf("other address: %d", res.status)
	}
	time.Sleep(150 * time.Millisecond) // 10/s refills one token in 100 ms
	if res := ts.handshakeFrom("10.0.1.1"); res.status != 200 {
		t.Fatalf("after refill: %d %s", res.status, res.body)
	}
}

func TestLimitsDefaultClientIP(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000": "", "[::1]:80": "", "10.1.2.3:4444": "10.1.2.3", "[2001:db8::1]:1": "2001:db8::1", "garbage": "garbage",
	} {
		if got := remoteIP(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("remoteIP(%q) = %q, want %q", addr, got, want)
		}
	}
	l := Limits{}.withDefaults()
	if l.ConnectionsPerIP != 100 || l.HandshakesPerSecond != 20 || l.HandshakeBurst != 40 {
		t.Fatalf("defaults %+v", l)
	}
}

// TestLimitsClientAddress: Options.ClientAddress (a trusted proxy's forwarded address) fills
// Handshake.Address and keys the limits when Limits.ClientIP is not set; loopback clients stay
// unlimited; without it Address is the peer's host.
func TestLimitsClientAddress(t *testing.T) {
	ts := newTestServer(t, Options{ClientAddress: headerIP, Limits: Limits{ConnectionsPerIP: 2, HandshakesPerSecond: -1}}, false)
	for i := 0; i < 2; i++ {
		if res := ts.handshakeFrom("198.51.100.4"); res.status != 200 {
			t.Fatalf("handshake %d: %d %s", i, res.status, res.body)
		}
		if c := ts.conn(); c.Handshake().Address != "198.51.100.4" || !strings.HasPrefix(c.Handshake().RemoteAddr, "127.0.0.1:") {
			t.Fatalf("handshake address %q remote %q", c.Handshake().Address, c.Handshake().RemoteAddr)
		}
	}
	wantRefusal(t, ts.handshakeFrom("198.51.100.4"), http.StatusForbidden, MessageTooManyConnections)
	if res := ts.handshakeFrom("198.51.100.5"); res.status != 200 {
		t.Fatalf("another forwarded address: %d", res.status)
	}
	for i := 0; i < 4; i++ { // a loopback client behind the proxy is not limited
		if res := ts.handshakeFrom("127.0.0.1"); res.status != 200 {
			t.Fatalf("loopback %d: %d %s", i, res.status, res.body)
		}
	}

	plain := newTestServer(t, Options{}, false)
	if res := plain.handshakeFrom("198.51.100.4"); res.status != 200 {
		t.Fatalf("plain: %d", res.status)
	}
	if c := plain.conn(); c.Handshake().Address != "127.0.0.1" {
		t.Fatalf("default address %q", c.Handshake().Address)
	}
}

// TestLimitsStateBounded: addresses that come and go leave nothing behind.
func TestLimitsStateBounded(t *testing.T) {
	l := newLimiter(Limits{ConnectionsPerIP: 5, HandshakesPerSecond: 1000, HandshakeBurst: 1,
		ClientIP: headerIP, LogWindow: 10 * time.Millisecond}, slog.New(&countingHandler{}))
	for i := 0; i < 2000; i++ {
		r := &http.Request{Header: http.Header{"X-Test-Ip": {"10.2." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)}}}
		slot, e, _ := l.admit(r)
		if e != nil {
			t.Fatalf("admit %d: %v", i, e)
		}
		slot.taken = true
		slot.free()
	}
	time.Sleep(1100 * time.Millisecond) // sweeps run at most once per second
	_, _, _ = l.admit(&http.Request{Header: http.Header{"X-Test-Ip": {"10.3.0.1"}}})
	if n := l.entries(); n > 2 {
		t.Fatalf("%d per-address entries left after 2000 addresses came and went", n)
	}
}
