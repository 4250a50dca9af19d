package app_test

// The network edge (cluster helper): TRUSTED_PROXIES and the per-client limits of the protocol
// server (LIMIT_*), crossed through the whole app. The test process plays nginx: its connections
// come from 127.0.0.1, which the servers here trust (or not), and it sets X-Forwarded-For.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/engineio"
)

// startApp runs an app with cfg on a free port until the test ends.
func startApp(t *testing.T, cfg app.Config) (*app.App, string) {
	t.Helper()
	a, err := app.New(context.Background(), cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Start(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
		<-done
	})
	return a, "http://" + ln.Addr().String()
}

// engineHandshake opens an Engine.IO polling session as a client behind the proxy at xff.
func engineHandshake(t *testing.T, base, xff string) (status int, body string, sid string) {
	t.Helper()
	return engineHandshakeVia(t, http.DefaultClient, base, xff)
}

func engineHandshakeVia(t *testing.T, hc *http.Client, base, xff string) (status int, body string, sid string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/socket.io/?EIO=4&transport=polling", nil)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		var open struct{ SID string }
		_ = json.Unmarshal(bytes.TrimPrefix(raw, []byte("0")), &open)
		sid = open.SID
	}
	return res.StatusCode, string(raw), sid
}

// closeEngine ends a polling session (its slot is freed).
func closeEngine(t *testing.T, base, sid string) {
	t.Helper()
	res, err := http.Post(base+"/socket.io/?EIO=4&transport=polling&sid="+sid, "text/plain;charset=UTF-8", strings.NewReader("1"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func wantEngineRefusal(t *testing.T, status int, body string, wantStatus int, message string) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if status != wantStatus || json.Unmarshal([]byte(body), &e) != nil || e.Message != message {
		t.Fatalf("want %d %q, got %d %s", wantStatus, message, status, body)
	}
}

func lastLoginIP(t *testing.T, a *app.App, userID string) string {
	t.Helper()
	id, _ := models.ParseID(userID)
	var u struct {
		IP string `bson:"lastLoginIp"`
	}
	if err := a.Store.Collection(models.UsersCollection).FindOne(context.Background(), bson.M{"_id": id}).Decode(&u); err != nil {
		t.Fatal(err)
	}
	return u.IP
}

func loginFrom(t *testing.T, hc *http.Client, base, login, xff string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/auth/login", strings.NewReader(`{"login":"`+login+`","password":"password123"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", xff)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", res.StatusCode)
	}
}

// fromUntrusted is an HTTP client whose connections come from 127.0.0.2: loopback too (never
// limited), but not in TRUSTED_PROXIES, so its forwarding headers are its own claim.
func fromUntrusted() *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

// TestEdgeThroughTheApp crosses TRUSTED_PROXIES and the LIMIT_* settings on one server that trusts
// 127.0.0.1 (the test plays nginx from there) and not 127.0.0.2 (a client of its own).
func TestEdgeThroughTheApp(t *testing.T) {
	cfg := testConfig(t.TempDir())
	env := map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8", "LIMIT_CONNECTIONS_PER_IP": "2",
		"LIMIT_HANDSHAKES_PER_SECOND": "0.5", "LIMIT_HANDSHAKE_BURST": "4", "LIMIT_ROOMS_PER_SOCKET": "3",
		"LIMIT_NAMESPACES_PER_CLIENT": "1"}
	edge, err := app.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.EdgeConfig = edge.EdgeConfig
	a, base := startApp(t, cfg)
	t.Run("trusted proxy", func(t *testing.T) { trustedProxy(t, a, base) })
	t.Run("untrusted peer", func(t *testing.T) { untrustedPeer(t, a, base) })
	t.Run("rooms and namespaces", func(t *testing.T) { roomAndNamespaceLimits(t, a, base) })
}

// trustedProxy: behind a trusted proxy (127.0.0.1 here) the client is the right-most untrusted
// X-Forwarded-For hop, for the engine's per-address limits and for REST alike; a client past
// LIMIT_CONNECTIONS_PER_IP or LIMIT_HANDSHAKES_PER_SECOND gets the engine's refusal while other
// clients behind the same proxy go on.
func trustedProxy(t *testing.T, a *app.App, base string) {
	// REST: the login's recorded address is the forwarded client, not the proxy nor a forged hop.
	in := registerInput("edge")
	s, err := a.Auth.Register(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	loginFrom(t, http.DefaultClient, base, in.Username, "6.6.6.6, 198.51.100.7, 10.1.2.3")
	if ip := lastLoginIP(t, a, s.User.ID.Hex()); ip != "198.51.100.7" {
		t.Fatalf("REST client address %q, want 198.51.100.7", ip)
	}

	// Connections per address: two sessions for 198.51.100.7, the third is refused (403 {code:4,
	// message}); the same proxy forwards 198.51.100.8 meanwhile.
	var sids []string
	for i := 0; i < 2; i++ {
		st, body, sid := engineHandshake(t, base, "198.51.100.7")
		if st != http.StatusOK {
			t.Fatalf("session %d: %d %s", i, st, body)
		}
		sids = append(sids, sid)
	}
	st, body, _ := engineHandshake(t, base, "198.51.100.7")
	wantEngineRefusal(t, st, body, http.StatusForbidden, engineio.MessageTooManyConnections)
	// A forged left part does not buy a new budget: the proxy's client is still 198.51.100.7.
	st, body, _ = engineHandshake(t, base, "203.0.113.99, 198.51.100.7")
	wantEngineRefusal(t, st, body, http.StatusForbidden, engineio.MessageTooManyConnections)
	// Socket.IO over WebSocket through the same proxy, for the same client: refused before the upgrade.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = clienttest.Dial(ctx, base, clienttest.Options{Auth: map[string]any{"token": s.AccessToken},
		Header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("websocket past the limit: %v", err)
	}
	c := dialWith(t, base, s.AccessToken, http.Header{"X-Forwarded-For": {"198.51.100.8"}})
	_ = c.Close()
	closeEngine(t, base, sids[0])
	deadline := time.Now().Add(3 * time.Second)
	for { // the freed slot takes a moment (the session closes asynchronously)
		st, body, sid := engineHandshake(t, base, "198.51.100.7")
		if st == http.StatusOK {
			sids[0] = sid
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Handshakes per second per address: a burst of 4, then 429 with Retry-After.
	for i := 0; i < 4; i++ {
		st, body, sid := engineHandshake(t, base, "198.51.100.9")
		if st != http.StatusOK {
			t.Fatalf("handshake %d within the burst: %d %s", i, st, body)
		}
		closeEngine(t, base, sid)
	}
	st, body, _ = engineHandshake(t, base, "198.51.100.9")
	wantEngineRefusal(t, st, body, http.StatusTooManyRequests, engineio.MessageTooManyHandshakes)
	if st, body, _ := engineHandshake(t, base, "198.51.100.10"); st != http.StatusOK {
		t.Fatalf("another client behind the proxy: %d %s", st, body)
	}
}

// untrustedPeer: from a peer that is not a trusted proxy, X-Forwarded-For is the client's own claim
// and is ignored, for limits and REST.
func untrustedPeer(t *testing.T, a *app.App, base string) {
	hc := fromUntrusted()
	for i := 0; i < 3; i++ { // a believed header would meet LIMIT_CONNECTIONS_PER_IP=2
		if st, body, _ := engineHandshakeVia(t, hc, base, "198.51.100.77"); st != http.StatusOK {
			t.Fatalf("forged X-Forwarded-For was believed: handshake %d: %d %s", i, st, body)
		}
	}
	in := registerInput("edge")
	s, err := a.Auth.Register(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	loginFrom(t, hc, base, in.Username, "198.51.100.77")
	if ip := lastLoginIP(t, a, s.User.ID.Hex()); ip != "127.0.0.2" {
		t.Fatalf("REST took the forged address: %q", ip)
	}
}

func dialWith(t *testing.T, base, token string, h http.Header) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, base, clienttest.Options{Auth: map[string]any{"token": token}, Header: h})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roomAndNamespaceLimits crosses LIMIT_ROOMS_PER_SOCKET=3 (the user room and two more; a join past
// it answers JOIN_ERROR and leaves the socket as it was) and LIMIT_NAMESPACES_PER_CLIENT=1 (a CONNECT
// past it gets CONNECT_ERROR "Too many namespaces").
func roomAndNamespaceLimits(t *testing.T, a *app.App, base string) {
	ctx := context.Background()
	me, err := a.Auth.Register(ctx, registerInput("rooms"))
	if err != nil {
		t.Fatal(err)
	}
	var chats []string
	for i := 0; i < 3; i++ {
		other, err := a.Auth.Register(ctx, registerInput("roomsfriend"))
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := a.Chat.CreateDirect(ctx, me.User.ID.Hex(), other.User.ID.Hex())
		if err != nil {
			t.Fatal(err)
		}
		chats = append(chats, v.ID)
	}
	c := chatDialAt(t, base, me.AccessToken)
	for _, id := range chats[:2] {
		if r := c.ack("chat:join", map[string]any{"chatId": id}); r["ok"] != true {
			t.Fatalf("join %s: %v", id, r)
		}
	}
	r := c.ack("chat:join", map[string]any{"chatId": chats[2]})
	e, _ := r["error"].(map[string]any)
	if r["ok"] != false || e["code"] != "JOIN_ERROR" || !strings.Contains(e["message"].(string), "too many rooms") {
		t.Fatalf("join past the room limit: %v", r)
	}
	if r := c.ack("chat:message", map[string]any{"chatId": chats[2], "content": "hi"}); r["ok"] != false {
		t.Fatalf("the refused join left the socket in the room: %v", r)
	}
	if r := c.ack("chat:leave", map[string]any{"chatId": chats[0]}); r["ok"] != true {
		t.Fatalf("leave: %v", r)
	}
	if r := c.ack("chat:join", map[string]any{"chatId": chats[2]}); r["ok"] != true {
		t.Fatalf("join after leaving one: %v", r)
	}

	// A second namespace on one connection (a plain polling session): CONNECT_ERROR "Too many
	// namespaces" (the app has only "/", so without the limit the answer would be "Invalid namespace").
	st, body, sid := engineHandshake(t, base, "")
	if st != http.StatusOK {
		t.Fatalf("handshake: %d %s", st, body)
	}
	post := func(payload string) {
		res, err := http.Post(base+"/socket.io/?EIO=4&transport=polling&sid="+sid, "text/plain;charset=UTF-8", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	poll := func() string {
		res, err := http.Get(base + "/socket.io/?EIO=4&transport=polling&sid=" + sid)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return string(raw)
	}
	post(`40{"token":"` + me.AccessToken + `"}`)
	if ans := poll(); !strings.HasPrefix(ans, "40{") {
		t.Fatalf("connect to /: %q", ans)
	}
	post(`40/second,{"token":"` + me.AccessToken + `"}`)
	var ans string
	for i := 0; i < 20 && !strings.Contains(ans, "44/second,"); i++ {
		ans += poll()
	}
	if !strings.Contains(ans, `44/second,{"message":"Too many namespaces"}`) {
		t.Fatalf("second namespace past the limit: %q", ans)
	}
}
