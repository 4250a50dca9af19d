package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/models"
)

// One server and one embedded store for the package (TestMain); every test registers its own users.
var (
	srv     *app.App
	baseURL string
	secret  = "integration-test-secret-0123456789"
)

const bodyLimit = 4096

func testConfig(dir string) app.Config {
	cfg := app.Defaults()
	cfg.DataDir = dir
	cfg.BcryptCost = 4
	cfg.JWTSecret, cfg.UsingDevSecret = secret, false
	cfg.BodyLimit = bodyLimit
	cfg.ShutdownTimeout = 5 * time.Second
	// The hostile tables fire hundreds of events back to back from one socket; the rate limit itself
	// is tested in limits_test.go with its own server.
	cfg.EventRate, cfg.EventBurst = 10_000, 10_000
	// The periodic account check would race the tests of the per-event recheck (hostile_auth_test.go);
	// it has its own test (handlers/socket, TestSweepInactiveAccounts).
	cfg.AccountSweepInterval = -1
	return cfg
}

func quietLogger() *slog.Logger {
	level := slog.LevelError + 1 // silent unless MAOGA_TEST_LOG is set
	if os.Getenv("MAOGA_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "maoga-app-*")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	srv, err = app.New(ctx, testConfig(dir), quietLogger())
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	baseURL = "http://" + ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Start(ln) }()
	// Wait until it serves: a very short test run could otherwise Shutdown before Start began.
	for i := 0; ; i++ {
		resp, err := http.Get(baseURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 200 {
			panic("server did not start: " + err.Error())
		}
		time.Sleep(25 * time.Millisecond)
	}
	code := m.Run()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
		code = 1
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// reply is a decoded answer.
type reply struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r reply) data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}

func (r reply) list() []any {
	d, _ := r.Body["data"].([]any)
	return d
}

// errCode is the most precise code of an error answer: the socket code of EVENTS.md carried in
// details.reason when there is one, else the REST code.
func (r reply) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	if d, ok := e["details"].(map[string]any); ok {
		if s, ok := d["reason"].(string); ok {
			return s
		}
	}
	s, _ := e["code"].(string)
	return s
}

// restCodes is REST.md's closed list of top-level error codes (with their statuses).
var restCodes = map[string]int{"VALIDATION_ERROR": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403,
	"NOT_FOUND": 404, "CONFLICT": 409, "PAYLOAD_TOO_LARGE": 413, "RATE_LIMITED": 429, "INTERNAL": 500,
	"SERVICE_UNAVAILABLE": 503}

// restCodeOK reports whether an error answer's top-level code is REST.md's code for its status.
func (r reply) restCodeOK() bool {
	e, _ := r.Body["error"].(map[string]any)
	s, _ := e["code"].(string)
	st, ok := restCodes[s]
	return ok && st == r.Status
}

func (r reply) errMessage() string {
	e, _ := r.Body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (r reply) errField(name string) string {
	e, _ := r.Body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	f, _ := d["fields"].(map[string]any)
	s, _ := f[name].(string)
	return s
}

// call sends body (a string is sent as is, anything else as JSON) with a bearer token when given.
func call(t *testing.T, method, path, token string, body any) reply {
	t.Helper()
	return callAt(t, baseURL, method, path, token, body)
}

// callAt is call against the server at base.
func callAt(t *testing.T, base, method, path, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: bad JSON answer %q: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return r
}

func expect(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.errCode() != code || (status >= 400 && !r.restCodeOK()) {
		t.Fatalf("want %d %q, got %d %s", status, code, r.Status, r.Raw)
	}
}

var userSeq atomic.Int64

type testUser struct {
	ID, Username, Email, Password string
	Access, Refresh               string
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
}

// register creates a fresh user through the API.
func register(t *testing.T) *testUser {
	t.Helper()
	u := &testUser{Username: uniqueName("u"), Password: "password123"}
	u.Email = u.Username + "@example.com"
	r := call(t, "POST", "/api/auth/register", "", map[string]any{"username": u.Username, "email": u.Email, "password": u.Password})
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	d := r.data()
	u.ID = d["user"].(map[string]any)["id"].(string)
	u.Access, u.Refresh = d["accessToken"].(string), d["refreshToken"].(string)
	return u
}

// countUsers counts users whose lowercased username or email matches (nothing-written checks).
func countUsers(t *testing.T, filter bson.M) int64 {
	t.Helper()
	n, err := srv.Store.Collection(models.UsersCollection).CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setAccountStatus(t *testing.T, userID, status string) {
	t.Helper()
	id, _ := models.ParseID(userID)
	if _, err := models.NewUsers(srv.Store).Update(context.Background(), id, bson.M{"accountStatus": status}); err != nil {
		t.Fatal(err)
	}
}
