package clustertest

// The cluster harness: one redis-server, one shared store, N maoga processes built once per test run,
// and small helpers for REST calls and Socket.IO clients against a chosen node.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/internal/redisserver"
)

const secret = "cluster-test-secret-0123456789abcdef"

// logBuffer collects a node's output; the process writes it while a failing test reads it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type node struct {
	n    int
	url  string
	port int
	cmd  *exec.Cmd
	log  *logBuffer
	env  []string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildBinaries builds cmd/maoga and cmd/storeserver once per test binary run (the tests share
// them). They are built without -race even when the tests run with it: the nodes and the store are
// the system under test, not the test code, and an instrumented store slows every node down.
func buildBinaries(t *testing.T) (maoga, storeserver string) {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		binDir, buildErr = os.MkdirTemp("", "maoga-clustertest-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/maoga", "./cmd/storeserver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/maoga ./cmd/storeserver: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "maoga"), filepath.Join(binDir, "storeserver")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// startNode starts a node and waits until it is ready.
func startNode(t *testing.T, bin string, n int, env []string) *node {
	t.Helper()
	nd := spawnNode(t, bin, n, env)
	nd.waitReady(t, 30*time.Second)
	return nd
}

// spawnNode starts a node process (stopped with SIGTERM when the test ends) without waiting for it.
func spawnNode(t *testing.T, bin string, n int, env []string) *node {
	t.Helper()
	port := freePort(t)
	nd := &node{n: n, port: port, url: "http://127.0.0.1:" + strconv.Itoa(port), log: &logBuffer{}, env: env}
	nd.cmd = exec.Command(bin)
	nd.cmd.Env = append(os.Environ(), append([]string{"PORT=" + strconv.Itoa(port), "HOST=127.0.0.1",
		"JWT_SECRET=" + secret, "BCRYPT_COST=4", "LOG_LEVEL=warn"}, env...)...)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.log, nd.log
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if nd.cmd.ProcessState == nil {
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = nd.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = nd.cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("node %d log:\n%s", nd.n, nd.log.String())
		}
	})
	return nd
}

// kill stops the node with SIGKILL (no shutdown: its sockets, presence and leases are left behind).
func (nd *node) kill(t *testing.T) {
	t.Helper()
	if err := nd.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = nd.cmd.Wait() // sets ProcessState: the cleanup then leaves it alone
}

// alive reports whether the node was not killed.
func (nd *node) alive() bool { return nd.cmd.ProcessState == nil }

// ready reports /readyz status (0 when unreachable).
func (nd *node) ready() int {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(nd.url + "/readyz")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func (nd *node) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for nd.ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("node %d not ready after %v:\n%s", nd.n, d, nd.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends a REST call and returns the status and decoded body.
func (nd *node) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	code, out, err := nd.request(method, path, token, body)
	if err != nil {
		t.Fatalf("node %d %s %s: %v", nd.n, method, path, err)
	}
	return code, out
}

// doNoFatal is do for helper goroutines: a failed request is status 0.
func (nd *node) doNoFatal(method, path, token string, body any) (int, map[string]any) {
	code, out, err := nd.request(method, path, token, body)
	if err != nil {
		return 0, map[string]any{"transportError": err.Error()}
	}
	return code, out
}

func (nd *node) request(method, path, token string, body any) (int, map[string]any, error) {
	var js []byte
	if body != nil {
		js, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, nd.url+path, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return res.StatusCode, nil, fmt.Errorf("status %d, body %q: %w", res.StatusCode, raw, err)
		}
	}
	return res.StatusCode, out, nil
}

// httpClient bounds every REST call (a frozen node must not hang a test forever).
var httpClient = &http.Client{Timeout: 20 * time.Second}

// call is do for calls that must succeed.
func (nd *node) call(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	code, out := nd.do(t, method, path, token, body)
	if code >= 300 {
		t.Fatalf("node %d %s %s: %d %v", nd.n, method, path, code, out)
	}
	return out
}

var seq atomic.Int64

func (nd *node) register(t *testing.T) (id, token string) {
	t.Helper()
	name := fmt.Sprintf("ct%d_%d", time.Now().UnixNano()%1e6, seq.Add(1))
	d := nd.call(t, "POST", "/api/auth/register", "", map[string]any{"username": name,
		"email": name + "@example.com", "password": "password123"})["data"].(map[string]any)
	return d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)
}

// cluster is Redis, the shared store and the nodes started by startCluster.
type cluster struct {
	redis    *redisserver.Server
	storeURI string // the shared store (cmd/storeserver: the embedded FerretDB as a process)
	nodes    []*node
	env      []string // the environment every node got (without PORT)
}

// startCluster starts redis-server, the shared store and n nodes (node 1 alone first: it creates the
// collections and indexes). extra is added to every node's environment.
func startCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs maoga processes")
	}
	bin, storeBin := buildBinaries(t)
	c := &cluster{redis: redisserver.Start(t)}
	c.storeURI = startStore(t, storeBin)
	c.env = append([]string{"MONGODB_URI=" + c.storeURI, "MONGODB_DATABASE=clustertest",
		"REDIS_URL=" + c.redis.URL()}, extra...)
	c.nodes = append(c.nodes, startNode(t, bin, 1, c.env))
	for i := 2; i <= n; i++ { // the others start together, then each is waited for
		c.nodes = append(c.nodes, spawnNode(t, bin, i, c.env))
	}
	for _, nd := range c.nodes[1:] {
		nd.waitReady(t, 30*time.Second)
	}
	return c
}

// startStore runs cmd/storeserver on a free port with its data in a temp dir until the test ends
// (registered before the nodes, so it stops after them) and returns its MongoDB URI.
func startStore(t *testing.T, bin string) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	log := &logBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "DATA_DIR="+t.TempDir(), "STORE_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("store log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return "mongodb://" + addr + "/"
		}
		if time.Now().After(deadline) {
			t.Fatalf("storeserver did not listen on %s:\n%s", addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- sockets ----

// sock is a Socket.IO client of one user on one node.
type sock struct {
	*clienttest.Client
	t    *testing.T
	name string
}

// dial connects token's user to nd and waits until the connection handlers are registered
// (server/socketio may dispatch an event that arrives right after CONNECT before they ran).
func dial(t *testing.T, nd *node, token, name string) *sock {
	t.Helper()
	return dialOpts(t, nd.url, name, clienttest.Options{Auth: map[string]any{"token": token}})
}

func dialOpts(t *testing.T, url, name string, opts clienttest.Options) *sock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := &sock{Client: c, t: t, name: name}
	s.warmUp()
	return s
}

// warmUp waits until the lobby handlers answer (lobby:leave of a lobby the socket does not follow is harmless).
func (s *sock) warmUp() {
	s.t.Helper()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := s.EmitWithAck(ctx, "lobby:leave", map[string]any{"lobbyId": "warm-up"})
		cancel()
		if err == nil {
			return
		}
		if i == 30 {
			s.t.Fatalf("%s: handlers never answered: %v", s.name, err)
		}
	}
}

// ack emits with an acknowledgement and decodes its first argument.
func (s *sock) ack(event string, payload any) map[string]any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args, err := s.EmitWithAck(ctx, event, payload)
	if err != nil {
		s.t.Fatalf("%s: %s: %v", s.name, event, err)
	}
	var m map[string]any
	if len(args) == 0 || json.Unmarshal(args[0], &m) != nil {
		s.t.Fatalf("%s: %s ack %s", s.name, event, args)
	}
	return m
}

// ok emits and requires {ok:true}.
func (s *sock) ok(event string, payload any) map[string]any {
	s.t.Helper()
	a := s.ack(event, payload)
	if a["ok"] != true {
		s.t.Fatalf("%s: %s %v: %v", s.name, event, payload, a)
	}
	return a
}

// fails emits and requires a failed ack; it returns the error code (and drains the `error` event).
func (s *sock) fails(event string, payload any) string {
	s.t.Helper()
	a := s.ack(event, payload)
	e, _ := a["error"].(map[string]any)
	if a["ok"] != false || e == nil {
		s.t.Fatalf("%s: %s %v: want a refusal, got %v", s.name, event, payload, a)
	}
	code, _ := e["code"].(string)
	s.next("error", nil)
	return code
}

// next waits (10 s at most) for the next event named event whose first argument satisfies match
// (nil: any), skipping others, and returns that argument decoded.
func (s *sock) next(event string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		args, err := s.Wait(ctx, event)
		if err != nil {
			s.t.Fatalf("%s: no %s: %v", s.name, event, err)
		}
		var m map[string]any
		if len(args) > 0 {
			_ = json.Unmarshal(args[0], &m)
		}
		if match == nil || match(m) {
			return m
		}
	}
}

// none checks that nothing named event is queued. Call it after an event that was sent later than
// the one that must not come arrived elsewhere (the cluster delivers in publish order per channel),
// plus a grace period for other paths.
func (s *sock) none(event string, grace time.Duration) {
	s.t.Helper()
	time.Sleep(grace)
	if n := s.Pending(event); n != 0 {
		args, _ := s.Wait(context.Background(), event)
		s.t.Fatalf("%s: unexpected %s (%d queued): %s", s.name, event, n, args[0])
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
