package redislease_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/internal/redisserver"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/matchmaking/coordtest"
	"github.com/maoga/maoga/services/matchmaking/redislease"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConformance(t *testing.T) {
	r := redisserver.Start(t)
	n := 0
	coordtest.Run(t, func(t *testing.T) matchmaking.Coordinator {
		n++
		return redislease.New(r.Client(), redislease.Options{Node: "n" + strconv.Itoa(n), Logger: quiet})
	})
}

var q = models.MatchQueue{GameID: "g", GameMode: "m", Region: "eu"}

// A holder that dies (stops extending, never releases) loses the queue within LeaseTTL; a live
// holder keeps it past LeaseTTL; tokens grow per queue (fencing).
func TestExpiryAndKeepAlive(t *testing.T) {
	r := redisserver.Start(t)
	ttl := 300 * time.Millisecond
	a := redislease.New(r.Client(), redislease.Options{Node: "a", LeaseTTL: ttl, Logger: quiet})
	b := redislease.New(r.Client(), redislease.Options{Node: "b", LeaseTTL: ttl, Logger: quiet})
	ctx := context.Background()

	live, ok, err := a.Acquire(ctx, q)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	time.Sleep(3 * ttl) // extended meanwhile
	if _, ok, _ := b.Acquire(ctx, q); ok {
		t.Fatal("a live holder lost its lease")
	}
	live.Release()
	l2, ok, err := b.Acquire(ctx, q)
	if err != nil || !ok {
		t.Fatal("not free after release", ok, err)
	}
	if fence(t, l2.Token()) <= fence(t, live.Token()) || !strings.HasPrefix(l2.Token(), "b:") {
		t.Fatalf("tokens %s then %s", live.Token(), l2.Token())
	}
	// A holder that died (kill -9): its lease stays with no one extending it.
	r.Client().Set(ctx, "mm:lease:"+q.String(), "dead:999", ttl)
	start := time.Now()
	for {
		l, ok, err := a.Acquire(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if d := time.Since(start); d > ttl+200*time.Millisecond {
				t.Fatalf("dead holder replaced after %v (ttl %v)", d, ttl)
			}
			l.Release()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	l2.Release() // its value was overwritten: compare-and-delete must not remove someone else's
}

// Release by an expired holder does not free the queue for a third node while a successor holds it.
func TestStaleReleaseKeepsSuccessor(t *testing.T) {
	r := redisserver.Start(t)
	ctx := context.Background()
	a := redislease.New(r.Client(), redislease.Options{Node: "a", Logger: quiet})
	b := redislease.New(r.Client(), redislease.Options{Node: "b", Logger: quiet})
	la, _, _ := a.Acquire(ctx, q)
	r.Client().Del(ctx, "mm:lease:"+q.String()) // a's lease "expired"
	lb, ok, _ := b.Acquire(ctx, q)
	if !ok {
		t.Fatal("successor could not acquire")
	}
	la.Release()
	if _, ok, _ := a.Acquire(ctx, q); ok {
		t.Fatal("stale release freed the successor's lease")
	}
	lb.Release()
}

// Redis down: rounds go on with per-node exclusivity; Redis back: cluster leases again.
func TestRedisDownFallsBack(t *testing.T) {
	r := redisserver.Start(t)
	ctx := context.Background()
	a := redislease.New(r.Client(), redislease.Options{Node: "a", Logger: quiet})
	r.Kill()
	l, ok, err := a.Acquire(ctx, q)
	if err != nil || !ok {
		t.Fatalf("acquire with Redis down: %v %v (want the per-node fallback)", ok, err)
	}
	if _, ok, _ := a.Acquire(ctx, q); ok {
		t.Fatal("fallback let two rounds of one queue run in one node")
	}
	l.Release()
	r.Restart()
	l, ok, err = a.Acquire(ctx, q)
	if err != nil || !ok || !strings.HasPrefix(l.Token(), "a:") {
		t.Fatalf("after Redis came back: %v %v %v", l, ok, err)
	}
	l.Release()
}

func fence(t *testing.T, token string) int {
	t.Helper()
	i := strings.LastIndexByte(token, ':')
	n, err := strconv.Atoi(token[i+1:])
	if err != nil {
		t.Fatalf("token %q", token)
	}
	return n
}
