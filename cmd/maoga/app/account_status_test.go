package app_test

// Suspended and banned users lose access at once (issue 8): users.SetAccountStatus stores the status,
// revokes the refresh tokens and publishes user.account.status.changed, on which every node
// disconnects the user's sockets. Also the admin command that does it from a shell.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/services/events"
)

// waitAccessDenied waits for the `error` event and the disconnect the server sends a deactivated
// user's socket, and returns how long after since they came.
func waitAccessDenied(t *testing.T, c *clienttest.Client, status string, since time.Time) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.Wait(ctx, "error")
	if err != nil {
		t.Fatalf("no error event: %v", err)
	}
	var body struct{ Code, Message string }
	if err := json.Unmarshal(args[0], &body); err != nil || body.Code != "ACCESS_DENIED" || body.Message != "Account is "+status {
		t.Fatalf("error event %s", args[0])
	}
	reason, _ := c.WaitDisconnect(ctx)
	took := time.Since(since)
	if reason != "io server disconnect" {
		t.Fatalf("disconnect reason %q", reason)
	}
	return took
}

// TestSuspendedUserLosesAccessAtOnce: an idle socket (websocket and long-polling) of a user who is
// suspended gets `error` ACCESS_DENIED "Account is suspended" and is disconnected within a second,
// through the event bus; a reconnect is refused with "Account is suspended", REST with 403 and the
// refresh token no longer works, also after the account is active again (a new login does).
func TestSuspendedUserLosesAccessAtOnce(t *testing.T) {
	u := register(t)
	friend := register(t)
	ws := dialURL(t, baseURL, u.Access)
	defer ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	poll, err := clienttest.Dial(ctx, baseURL, clienttest.Options{Transport: "polling", Auth: map[string]any{"token": u.Access}})
	if err != nil {
		t.Fatal(err)
	}
	defer poll.Close()
	other := dialURL(t, baseURL, friend.Access) // another user's socket is untouched
	defer other.Close()

	seen := make(chan events.UserAccountStatusData, 4)
	unsub := srv.Bus.Subscribe(events.UserAccountStatusChanged, events.Handler{Name: "test.probe",
		Handle: func(_ context.Context, e events.Event) error {
			var d events.UserAccountStatusData
			if err := e.Decode(&d); err != nil {
				return err
			}
			seen <- d
			return nil
		}})
	defer unsub()

	start := time.Now()
	if _, err := srv.Users.SetAccountStatus(context.Background(), u.ID, "suspended", "spamming the lobby chat"); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-seen:
		if d.UserID != u.ID || d.Status != "suspended" || d.Previous != "active" || d.Reason != "spamming the lobby chat" {
			t.Fatalf("event %+v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("user.account.status.changed not published")
	}
	tw := waitAccessDenied(t, ws, "suspended", start)
	tp := waitAccessDenied(t, poll, "suspended", start)
	t.Logf("idle sockets disconnected after %v (websocket) and %v (polling)", tw.Round(time.Millisecond), tp.Round(time.Millisecond))
	if tw > time.Second || tp > time.Second {
		t.Fatalf("disconnected after %v / %v, want within 1s", tw, tp)
	}
	select {
	case <-other.Done():
		t.Fatal("another user's socket was disconnected")
	default:
	}

	// reconnect refused with the contract's message
	_, err = clienttest.Dial(ctx, baseURL, clienttest.Options{Auth: map[string]any{"token": u.Access}})
	if ce, ok := err.(*clienttest.ConnectError); !ok || ce.Message != "Account is suspended" {
		t.Fatalf("reconnect: %v", err)
	}
	// REST refused
	r := call(t, "GET", "/api/users/me", u.Access, nil)
	expect(t, r, http.StatusForbidden, "FORBIDDEN")
	if r.errMessage() != "Account is suspended" {
		t.Fatalf("REST message %q", r.errMessage())
	}
	// refresh refused
	r = call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh})
	if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		t.Fatalf("refresh of a suspended account: %d %s", r.Status, r.Raw)
	}
	// login refused
	r = call(t, "POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": u.Password})
	expect(t, r, http.StatusForbidden, "FORBIDDEN")

	// reactivated: the old refresh token stays dead, a new login works and the socket connects
	if _, err := srv.Users.SetAccountStatus(context.Background(), u.ID, "active", "appeal accepted"); err != nil {
		t.Fatal(err)
	}
	r = call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh})
	expect(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	r = call(t, "POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": u.Password})
	if r.Status != http.StatusOK {
		t.Fatalf("login after reactivation: %d %s", r.Status, r.Raw)
	}
	again := dialURL(t, baseURL, r.data()["accessToken"].(string))
	again.Close()

	// invalid changes are refused and change nothing
	for _, bad := range []struct{ id, status string }{{u.ID, "deleted"}, {u.ID, ""}, {"nope", "suspended"}} {
		if _, err := srv.Users.SetAccountStatus(context.Background(), bad.id, bad.status, ""); err == nil {
			t.Fatalf("SetAccountStatus(%q, %q) accepted", bad.id, bad.status)
		}
	}
	if r := call(t, "GET", "/api/users/me", r.data()["accessToken"].(string), nil); r.Status != 200 || r.data()["accountStatus"] != "active" {
		t.Fatalf("after refused changes: %d %s", r.Status, r.Raw)
	}
}

// TestAdminSetStatusCommand: `maoga admin set-status` run against a node's store and Redis (REDIS_URL,
// as an operator would on a cluster) bans a user by username: the node disconnects the user's socket
// at once. Bad arguments are usage errors (2), an unknown user a failure (1).
func TestAdminSetStatusCommand(t *testing.T) {
	cfg, _ := clusterConfig(t, "admincli")
	node := startClusterNode(t, cfg)
	id, tok := node.register(t)
	me := node.call(t, "GET", "/api/users/me", tok, nil)["data"].(map[string]any)
	c := dialURL(t, node.url, tok)
	defer c.Close()

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := app.Admin(context.Background(), cfg, args, &out, &errOut, quietLogger())
		return code, out.String(), errOut.String()
	}
	start := time.Now()
	code, out, errOut := run("set-status", me["username"].(string), "banned", "cheating", "in", "ranked")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "active -> banned") || !strings.Contains(out, "announced to 1 running node(s)") {
		t.Fatalf("output %q", out)
	}
	took := waitAccessDenied(t, c, "banned", start)
	t.Logf("admin command to socket disconnected: %v", took.Round(time.Millisecond))
	if took > 3*time.Second { // the command itself connects to the store and Redis
		t.Fatalf("took %v", took)
	}
	res := node.rawCall(t, "GET", "/api/users/me", tok)
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("REST after the ban: %d", res.StatusCode)
	}
	// by id, back to active
	if code, out, errOut := run("set-status", id, "active"); code != 0 || !strings.Contains(out, "banned -> active") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage"},
		{[]string{"set-status", "x"}, 2, "usage"},
		{[]string{"delete-user", "x", "y"}, 2, "usage"},
		{[]string{"set-status", id, "deleted"}, 2, `status "deleted"`},
		{[]string{"set-status", "nobody-by-that-name", "suspended"}, 1, "not found"},
	} {
		code, _, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Fatalf("%v: exit %d %q, want %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// rawCall is a request whose status is checked by the caller.
func (n *clusterNode) rawCall(t *testing.T, method, path, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, n.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// startProduction starts an App with APP_ENV=production and CORS_ORIGINS=https://game.example.
func startProduction(t *testing.T) string {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.AppEnv = app.EnvProduction
	cfg.CORSOrigins = []string{"https://game.example"}
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
	return "http://" + ln.Addr().String()
}

// TestCORSModes: in development (CORS_ORIGINS "*") any origin gets CORS headers and any page may open a
// websocket; in production only the configured origin gets CORS headers on REST and Socket.IO polling,
// a foreign Origin is refused on the Socket.IO handshake and the websocket upgrade, and requests
// without Origin (native clients) and from the server's own pages work.
func TestCORSModes(t *testing.T) {
	prodURL := startProduction(t)
	const allowed, foreign = "https://game.example", "https://evil.example"
	type check struct {
		name            string
		method, path    string
		origin          string
		status          int
		allowOriginWant string // "" = no Access-Control-Allow-Origin
	}
	do := func(t *testing.T, base string, c check) {
		t.Helper()
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Access-Control-Allow-Origin") != c.allowOriginWant {
			t.Fatalf("%s: %d ACAO %q, want %d %q (%s)", c.name, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"),
				c.status, c.allowOriginWant, body.String())
		}
		if c.status == http.StatusForbidden && !strings.Contains(body.String(), `"Origin not allowed"`) {
			t.Fatalf("%s: refusal body %q", c.name, body.String())
		}
	}
	const handshake = "/socket.io/?EIO=4&transport=polling"
	prod := []check{
		{"REST allowed origin", "GET", "/healthz", allowed, 200, allowed},
		{"REST foreign origin", "GET", "/healthz", foreign, 200, ""},
		{"REST no origin", "GET", "/healthz", "", 200, ""},
		{"REST preflight allowed", "OPTIONS", "/api/auth/login", allowed, 204, allowed},
		{"REST preflight foreign", "OPTIONS", "/api/auth/login", foreign, 204, ""},
		{"polling allowed origin", "GET", handshake, allowed, 200, allowed},
		{"polling foreign origin", "GET", handshake, foreign, 403, ""},
		{"polling no origin", "GET", handshake, "", 200, ""},
		{"polling preflight foreign", "OPTIONS", handshake, foreign, 403, ""},
	}
	for _, c := range prod {
		do(t, prodURL, c)
	}
	dev := []check{
		{"dev REST foreign origin", "GET", "/healthz", foreign, 200, "*"},
		{"dev polling foreign origin", "GET", handshake, foreign, 200, "*"},
		{"dev polling no origin", "GET", handshake, "", 200, "*"},
	}
	for _, c := range dev {
		do(t, baseURL, c)
	}

	// websocket upgrades (a full Socket.IO connection with a token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	register := func(base string) string {
		name := uniqueName("cors")
		body, _ := json.Marshal(map[string]any{"username": name, "email": name + "@example.com", "password": "password123"})
		res, err := http.Post(base+"/api/auth/register", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Data struct{ AccessToken string } `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Data.AccessToken == "" {
			t.Fatalf("register: %d %v", res.StatusCode, err)
		}
		return out.Data.AccessToken
	}
	dialWith := func(base, token, origin string) error {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, err := clienttest.Dial(ctx, base, clienttest.Options{Auth: map[string]any{"token": token}, Header: h})
		if err == nil {
			c.Close()
		}
		return err
	}
	prodTok := register(prodURL)
	self := prodURL // the Origin of a page the server itself served (the embedded web client)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{{allowed, true}, {"", true}, {self, true}, {foreign, false}, {"null", false}} {
		err := dialWith(prodURL, prodTok, tc.origin)
		if (err == nil) != tc.ok {
			t.Fatalf("production websocket with Origin %q: %v", tc.origin, err)
		}
		if err != nil && !strings.Contains(err.Error(), "403") {
			t.Fatalf("production websocket with Origin %q: %v, want a 403", tc.origin, err)
		}
	}
	if err := dialWith(baseURL, register(baseURL), foreign); err != nil {
		t.Fatalf("development websocket with a foreign Origin: %v", err)
	}
}

// TestSuspendedOnEveryNode: a user with an idle socket on each of two nodes (one Redis, one shared
// store) is suspended through node 1's service. The periodic sweep is off (testConfig), so only the
// user.account.status.changed event crossing Redis can reach node 2: both sockets get `error`
// ACCESS_DENIED and are disconnected within a second, node 2 refuses REST and a reconnect, and
// another user's socket on node 2 stays.
func TestSuspendedOnEveryNode(t *testing.T) {
	cfg, _ := clusterConfig(t, "suspendcluster")
	n1 := startClusterNode(t, cfg) // first alone: it creates the collections and indexes
	n2 := startClusterNode(t, cfg)

	id, tok := n1.register(t)
	_, otherTok := n2.register(t)
	s1, s2 := dialURL(t, n1.url, tok), dialURL(t, n2.url, tok)
	defer s1.Close()
	defer s2.Close()
	other := dialURL(t, n2.url, otherTok)
	defer other.Close()

	start := time.Now()
	if _, err := n1.app.Users.SetAccountStatus(context.Background(), id, "suspended", "cluster test"); err != nil {
		t.Fatal(err)
	}
	t1 := waitAccessDenied(t, s1, "suspended", start)
	t2 := waitAccessDenied(t, s2, "suspended", start)
	t.Logf("idle sockets disconnected after %v (node 1, where the change was made) and %v (node 2, through Redis)",
		t1.Round(time.Millisecond), t2.Round(time.Millisecond))
	if t1 > time.Second || t2 > time.Second {
		t.Fatalf("disconnected after %v / %v, want within 1s", t1, t2)
	}
	if res := n2.rawCall(t, "GET", "/api/users/me", tok); res.StatusCode != http.StatusForbidden {
		t.Fatalf("REST on node 2 after the suspension: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := clienttest.Dial(ctx, n2.url, clienttest.Options{Auth: map[string]any{"token": tok}})
	if ce, ok := err.(*clienttest.ConnectError); !ok || ce.Message != "Account is suspended" {
		t.Fatalf("reconnect to node 2: %v", err)
	}
	select {
	case <-other.Done():
		t.Fatal("another user's socket on node 2 was disconnected")
	default:
	}
}
