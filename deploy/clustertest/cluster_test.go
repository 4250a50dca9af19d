// Package clustertest runs real maoga processes as a cluster on loopback ports: its own
// redis-server, one shared store (the embedded FerretDB, served by this test process on a loopback
// port), two or three nodes built from cmd/maoga (once per run, harness_test.go). It checks what
// only separate processes can show:
//   - TestThreeProcesses: a node killed with SIGKILL leaves no user online, clients reconnect to
//     another node, and a Redis outage neither crashes the nodes nor stops cross-node delivery for good;
//   - TestLobbyAcrossProcesses: lobby chat, typing, ready, kick and leave between nodes, with the
//     adapter's classic and sharded (REDIS_SHARDED) pub/sub;
//   - TestMatchmakingAcrossProcesses: 20 rounds of simultaneous searches through three nodes, a
//     frozen and a killed lease holder: nobody matched twice, the dead leader replaced in time;
//   - TestRecoveryAcrossNodes: connection state recovery on the same node, a fresh session on another.
//
// Run them with (skipped with -short; needs redis-server):
//
//	go test -count=1 ./deploy/clustertest/
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
)

// dialPlain connects without waiting for the handlers (the test only listens).
func dialPlain(t *testing.T, url, token string) *clienttest.Client {
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
	c := startCluster(t, 3)
	r, n1, n2, n3 := c.redis, c.nodes[0], c.nodes[1], c.nodes[2]

	aID, aTok := n1.register(t)
	bID, bTok := n2.register(t)
	_, cTok := n3.register(t)
	fr := n1.call(t, "POST", "/api/friends/requests", aTok, map[string]any{"userId": bID})["data"].(map[string]any)
	n2.call(t, "POST", "/api/friends/requests/"+fr["id"].(string)+"/accept", bTok, nil)

	b := dialPlain(t, n2.url, bTok)
	a := dialPlain(t, n1.url, aTok)
	waitStatus(t, b, 5*time.Second, aID, "online")

	// kill -9 node 1: A's friend B (node 2) hears A go offline within the bound (heartbeat TTL 5s +
	// reap interval 2s; 10s promised), and A's client notices and reconnects to node 3.
	killed := time.Now()
	n1.kill(t)
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
	_ = dialPlain(t, n3.url, aTok)
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
	restarted := time.Now()
	n2.waitReady(t, 15*time.Second)
	n3.waitReady(t, 15*time.Second)
	t.Logf("Redis down 3s: both nodes ready again %v after its restart", time.Since(restarted).Round(time.Millisecond))
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
