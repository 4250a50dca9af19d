package app_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/models"
)

func TestHealthReadyMetrics(t *testing.T) {
	r := call(t, "GET", "/healthz", "", nil)
	if r.Status != 200 || r.data()["status"] != "ok" {
		t.Fatalf("healthz %d %s", r.Status, r.Raw)
	}
	r = call(t, "GET", "/readyz", "", nil)
	if r.Status != 200 || r.data()["checks"].(map[string]any)["store"] != "ok" {
		t.Fatalf("readyz %d %s", r.Status, r.Raw)
	}
	register(t)
	call(t, "GET", "/no/such/route", "", nil)
	expect(t, call(t, "POST", "/debug/gc", "", nil), 404, "NOT_FOUND") // DEBUG_ENDPOINTS is off
	r = call(t, "GET", "/metrics", "", nil)
	text := string(r.Raw)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`maoga_http_requests_total{method="POST",route="/api/auth/register",status="201"}`,
		`maoga_http_requests_total{method="GET",route="unmatched",status="404"}`,
		`maoga_http_request_duration_seconds_bucket{method="POST",route="/api/auth/register",le="+Inf"}`,
		`maoga_errors_total{code="NOT_FOUND",origin="rest"}`,
		"# TYPE maoga_sockets_connected gauge",
		"# TYPE maoga_socket_events_in_total counter",
		"# TYPE maoga_socket_handler_duration_seconds histogram",
		"# TYPE go_goroutines gauge", "process_open_fds ", "go_memstats_heap_alloc_bytes ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Under /api an anonymous caller learns nothing about which routes exist (401); an authenticated one
// gets the NOT_FOUND envelope. Elsewhere unknown routes are plain NOT_FOUND.
func TestUnknownRouteEnvelope(t *testing.T) {
	u := register(t)
	expect(t, call(t, "GET", "/api/nothing-here", "", nil), 401, "UNAUTHORIZED")
	expect(t, call(t, "GET", "/api/nothing-here", u.Access, nil), 404, "NOT_FOUND")
	expect(t, call(t, "PUT", "/api/auth/login", u.Access, map[string]any{}), 404, "NOT_FOUND")
	expect(t, call(t, "GET", "/nothing-here", "", nil), 404, "NOT_FOUND")
}

func TestSocketMetrics(t *testing.T) {
	u := register(t)
	c := dial(t, u.Access)
	waitFor(t, func() bool {
		return strings.Contains(string(call(t, "GET", "/metrics", "", nil).Raw), "maoga_sockets_connected ")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.EmitWithAck(ctx, "user:status", map[string]any{"status": "away"}); err != nil {
		t.Fatal(err)
	}
	_ = c.Emit("made:up:event", 1)
	if _, err := c.EmitWithAck(ctx, "user:status", map[string]any{"status": "sleeping"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		text := string(call(t, "GET", "/metrics", "", nil).Raw)
		return strings.Contains(text, `maoga_socket_events_in_total{event="user:status"}`) &&
			strings.Contains(text, `maoga_errors_total{code="VALIDATION_ERROR",origin="socket"}`) &&
			strings.Contains(text, `maoga_socket_handler_duration_seconds_count{event="user:status"}`)
	})
	c.Close()

	// events_out counts what the handlers send themselves (lobby:joined, lobby:update to the caller),
	// what the services broadcast (lobby:member:ready) and the `error` answers.
	host := register(t)
	lb := createLobby(t, host, map[string]any{"gameId": "arena-shooter", "gameMode": "1v1"})
	hc := lobbyDial(t, host)
	lobbyAck(t, hc, "lobby:join", map[string]any{"lobbyId": lb["id"]})
	lobbyAck(t, hc, "lobby:ready", map[string]any{"lobbyId": lb["id"], "isReady": true})
	lobbyFail(t, hc, "lobby:join", map[string]any{"lobbyId": 7}, "VALIDATION_ERROR")
	waitFor(t, func() bool {
		text := string(call(t, "GET", "/metrics", "", nil).Raw)
		return strings.Contains(text, `maoga_socket_events_out_total{event="lobby:joined"}`) &&
			strings.Contains(text, `maoga_socket_events_out_total{event="lobby:update"}`) &&
			strings.Contains(text, `maoga_socket_events_out_total{event="lobby:member:ready"}`) &&
			strings.Contains(text, `maoga_socket_events_out_total{event="error"}`)
	})
}

// A second server in its own data dir: shutdown disconnects sockets with a reason, answers /readyz
// 503 while draining, returns within its bound, and refuses to start again.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t.TempDir())
	dead, err := net.Listen("tcp", "127.0.0.1:0") // a port where no Redis answers
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL = "redis://" + dead.Addr().String() + "/0"
	dead.Close()
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
	url := "http://" + ln.Addr().String()

	tokens, err := a.Auth.Register(context.Background(), registerInput("shutdown"))
	if err != nil {
		t.Fatal(err)
	}
	c := dialURL(t, url, tokens.AccessToken)

	// Readiness names what is down: here Redis.
	rr := readyz(t, a)
	if rr.Code != 503 || !strings.Contains(rr.Body.String(), `"SERVICE_UNAVAILABLE"`) ||
		!strings.Contains(rr.Body.String(), `"store":"ok"`) || !strings.Contains(rr.Body.String(), `"redis":"`) {
		t.Fatalf("readyz with Redis down: %d %s", rr.Code, rr.Body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	if err := <-done; err != nil {
		t.Fatalf("Start returned %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer wcancel()
	if _, err := c.WaitDisconnect(wctx); err != nil {
		t.Fatalf("socket not disconnected: %v", err)
	}
	if rr := readyz(t, a); rr.Code != 503 || !strings.Contains(rr.Body.String(), "shutting down") {
		t.Fatalf("readyz after shutdown: %d %s", rr.Code, rr.Body)
	}
	// The sockets' presence bookkeeping finished before the store closed: reopen the data dir and look.
	st, err := models.Open(context.Background(), models.Config{DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	u, err := models.NewUsers(st).ByID(context.Background(), tokens.User.ID)
	_ = st.Close(context.Background())
	if err != nil || u.Status != models.StatusOffline || u.LastActive == nil || u.LastActive.Before(start.Add(-time.Second)) {
		t.Fatalf("after shutdown the user is %+v (%v): want offline with lastActive saved", u, err)
	}
	if err := a.Start(ln); err == nil {
		t.Fatal("Start after Shutdown must fail")
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}

func readyz(t *testing.T, a *app.App) *httptest.ResponseRecorder {
	t.Helper()
	rr := httptest.NewRecorder()
	a.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/readyz", nil))
	return rr
}

func TestCORSPreflight(t *testing.T) {
	req, _ := http.NewRequest("OPTIONS", baseURL+"/api/auth/login", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,authorization")
	r := send(t, req)
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
}

// With a Redis that answers, /readyz reports it ok (skipped where redis-server is not installed).
func TestReadyzWithRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	cfg := testConfig(t.TempDir())
	cfg.RedisURL = "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	a, err := app.New(context.Background(), cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		rr := readyz(t, a)
		if rr.Code == 200 && strings.Contains(rr.Body.String(), `"redis":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz: %d %s", rr.Code, rr.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
