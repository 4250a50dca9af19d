// Package clustertest runs real maoga processes as a cluster on loopback ports: its own
// redis-server, one shared store (the embedded FerretDB, served by this test process on a loopback
// port), three nodes built from cmd/maoga. It checks what only separate processes can show: a node
// killed with SIGKILL leaves no user online, clients reconnect to another node, and a Redis outage
// neither crashes the nodes nor stops cross-node delivery for good.
//
//	go test -count=1 ./deploy/clustertest/        (skipped with -short; needs redis-server)
package clustertest

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
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/internal/redisserver"
	"github.com/maoga/maoga/internal/sharedstore"
)

type node struct {
	n   int
	url string
	cmd *exec.Cmd
	log *bytes.Buffer
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

func buildMaoga(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "maoga")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/maoga")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/maoga: %v\n%s", err, out)
	}
	return bin
}

const secret = "cluster-test-secret-0123456789abcdef"

func startNode(t *testing.T, bin string, n int, env []string) *node {
	t.Helper()
	port := freePort(t)
	nd := &node{n: n, url: "http://127.0.0.1:" + strconv.Itoa(port), log: &bytes.Buffer{}}
	nd.cmd = exec.Command(bin)
	nd.cmd.Env = append(os.Environ(), append(env, "PORT="+strconv.Itoa(port), "HOST=127.0.0.1",
		"JWT_SECRET="+secret, "BCRYPT_COST=4", "LOG_LEVEL=warn")...)
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
	nd.waitReady(t, 30*time.Second)
	return nd
}

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

func (nd *node) call(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	js, _ := json.Marshal(body)
	if body == nil {
		js = nil
	}
	req, _ := http.NewRequest(method, nd.url+path, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || res.StatusCode >= 300 {
		t.Fatalf("node %d %s %s: %d %s", nd.n, method, path, res.StatusCode, raw)
	}
	return out
}

var seq int

func (nd *node) register(t *testing.T) (id, token string) {
	t.Helper()
	seq++
	name := fmt.Sprintf("ct%d_%d", time.Now().UnixNano()%1e6, seq)
	d := nd.call(t, "POST", "/api/auth/register", "", map[string]any{"username": name,
		"email": name + "@example.com", "password": "password123"})["data"].(map[string]any)
	return d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)
}

func dial(t *testing.T, url, token string) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, url, clienttest.Options{Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitStatus waits until c hears user:status {userId, status}.
func waitStatus(t *testing.T, c *clienttest.Client, d time.Duration, userID, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		args, err := c.Wait(ctx, "user:status")
		if err != nil {
			t.Fatalf("no user:status %s of %s within %v: %v", status, userID, d, err)
		}
		var p struct{ UserID, Status string }
		_ = json.Unmarshal(args[0], &p)
		if p.UserID == userID && p.Status == status {
			return
		}
	}
}

func TestThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three maoga processes")
	}
	r := redisserver.Start(t)
	store, err := sharedstore.Start(context.Background(), t.TempDir(), "127.0.0.1:0",
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Stop) // first registered: runs after the nodes stopped
	bin := buildMaoga(t)
	env := []string{"MONGODB_URI=" + store.URI(), "MONGODB_DATABASE=clustertest", "REDIS_URL=" + r.URL()}
	n1 := startNode(t, bin, 1, env) // alone first: creates collections and indexes
	n2 := startNode(t, bin, 2, env)
	n3 := startNode(t, bin, 3, env)

	aID, aTok := n1.register(t)
	bID, bTok := n2.register(t)
	_, cTok := n3.register(t)
	fr := n1.call(t, "POST", "/api/friends/requests", aTok, map[string]any{"userId": bID})["data"].(map[string]any)
	n2.call(t, "POST", "/api/friends/requests/"+fr["id"].(string)+"/accept", bTok, nil)

	b := dial(t, n2.url, bTok)
	a := dial(t, n1.url, aTok)
	waitStatus(t, b, 5*time.Second, aID, "online")

	// kill -9 node 1: A's friend B (node 2) hears A go offline within the bound (heartbeat TTL 5s +
	// reap interval 2s; 10s promised), and A's client notices and reconnects to node 3.
	killed := time.Now()
	if err := n1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = n1.cmd.Process.Wait()
	waitStatus(t, b, 12*time.Second, aID, "offline")
	took := time.Since(killed)
	t.Logf("offline announced %v after kill -9", took)
	if took > 10*time.Second {
		t.Fatalf("offline after %v, promised within 10s", took)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("A's client did not notice its node died")
	}
	_ = dial(t, n3.url, aTok)
	waitStatus(t, b, 5*time.Second, aID, "online")

	// Redis down for a few seconds: nodes stay up (not ready), then resume cross-node delivery.
	r.Kill()
	time.Sleep(3 * time.Second)
	for _, nd := range []*node{n2, n3} {
		if code := nd.ready(); code != http.StatusServiceUnavailable {
			t.Fatalf("node %d /readyz = %d with Redis down, want 503", nd.n, code)
		}
	}
	r.Restart()
	n2.waitReady(t, 15*time.Second)
	n3.waitReady(t, 15*time.Second)
	// A friend request made on node 3 reaches B's socket on node 2, once.
	n3.call(t, "POST", "/api/friends/requests", cTok, map[string]any{"userId": bID})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := b.Wait(ctx, "notification:new")
	if err != nil || !bytes.Contains(ev[0], []byte("friend_request")) {
		t.Fatalf("notification across nodes after the outage: %v %v", ev, err)
	}
	// Presence survived the Redis restart (empty Redis): the nodes registered their sockets again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := n2.call(t, "GET", "/api/friends", bTok, nil)["data"].([]any)
		if len(d) > 0 && bytes.Contains(mustJSON(d), []byte(`"online"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis restart B's friends list shows %s", mustJSON(d))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
