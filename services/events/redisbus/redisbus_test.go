package redisbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/internal/redisserver"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/events/eventstest"
	"github.com/maoga/maoga/services/events/redisbus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newNode(t *testing.T, r *redisserver.Server, opts redisbus.Options) *redisbus.Bus {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	b := redisbus.New(r.Client(), opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// waitSubscribed: a node only gets other nodes' events once its SUBSCRIBE is done.
func waitSubscribed(t *testing.T, r *redisserver.Server, channel string, n int64) {
	t.Helper()
	c := r.Client()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.PubSubNumSub(context.Background(), channel).Result()
		if err == nil && m[channel] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers of %s, want %d (%v)", m[channel], channel, n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	r := redisserver.Start(t)
	eventstest.Run(t, func(t *testing.T) (events.Bus, events.Bus) {
		ch := fmt.Sprintf("test:%d", time.Now().UnixNano())
		n1 := newNode(t, r, redisbus.Options{Channel: ch, ClaimPrefix: ch})
		n2 := newNode(t, r, redisbus.Options{Channel: ch, ClaimPrefix: ch})
		waitSubscribed(t, r, ch, 2)
		return n1, n2
	})
}

type counter struct {
	mu  sync.Mutex
	ids map[string]int
	n   atomic.Int64
}

func (c *counter) handle(_ context.Context, e events.Event) error {
	c.mu.Lock()
	if c.ids == nil {
		c.ids = map[string]int{}
	}
	c.ids[e.ID]++
	c.mu.Unlock()
	c.n.Add(1)
	return nil
}

func (c *counter) waitN(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("handled %d, want %d", c.n.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func publish(t *testing.T, b events.Bus, name string, data any) {
	t.Helper()
	e, err := events.New(name, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// Three nodes, several handlers of each scope: the publisher handles its event once (not again when
// its own message comes back from Redis), every other node once, and ClusterOnce handlers run once
// in all, even when all three race for every event.
func TestThreeNodesExactlyOnce(t *testing.T) {
	r := redisserver.Start(t)
	ch := "test:three"
	nodes := []*redisbus.Bus{
		newNode(t, r, redisbus.Options{Channel: ch}),
		newNode(t, r, redisbus.Options{Channel: ch}),
		newNode(t, r, redisbus.Options{Channel: ch}),
	}
	waitSubscribed(t, r, ch, 3)
	local := make([]*counter, 3)
	once := &counter{}
	for i, b := range nodes {
		local[i] = &counter{}
		b.Subscribe("x", events.Handler{Name: "local", Scope: events.Local, Handle: local[i].handle})
		b.Subscribe("x", events.Handler{Name: "store-notification", Scope: events.ClusterOnce, Handle: once.handle})
	}
	const perNode = 50
	var wg sync.WaitGroup
	for _, b := range nodes {
		wg.Add(1)
		go func(b *redisbus.Bus) {
			defer wg.Done()
			for i := 0; i < perNode; i++ {
				publish(t, b, "x", i)
			}
		}(b)
	}
	wg.Wait()
	total := int64(3 * perNode)
	for _, c := range local {
		c.waitN(t, total)
	}
	once.waitN(t, total)
	time.Sleep(300 * time.Millisecond) // room for extra deliveries to show up
	for i, c := range local {
		if c.n.Load() != total {
			t.Fatalf("node %d: local handler ran %d times for %d events", i, c.n.Load(), total)
		}
		for id, n := range c.ids {
			if n != 1 {
				t.Fatalf("node %d handled %s %d times", i, id, n)
			}
		}
	}
	if once.n.Load() != total || len(once.ids) != int(total) {
		t.Fatalf("cluster-once handler ran %d times for %d distinct of %d events", once.n.Load(), len(once.ids), total)
	}
	for _, b := range nodes {
		if s := b.Stats(); s.Published != perNode || s.Received != 2*perNode || s.Dropped != 0 {
			t.Fatalf("stats %+v", s)
		}
	}
}

// An event keeps its id, origin, time and payload across nodes.
func TestEventCrossesIntact(t *testing.T) {
	r := redisserver.Start(t)
	ch := "test:intact"
	a := newNode(t, r, redisbus.Options{Channel: ch, Origin: "node-a"})
	b := newNode(t, r, redisbus.Options{Channel: ch, Origin: "node-b"})
	waitSubscribed(t, r, ch, 2)
	got := make(chan events.Event, 1)
	b.Subscribe(events.FriendshipRequested, events.Handler{Name: "h", Handle: func(_ context.Context, e events.Event) error {
		got <- e
		return nil
	}})
	e, _ := events.New(events.FriendshipRequested, events.FriendshipData{FriendshipID: "f", RequesterID: "r", AddresseeID: "a"})
	e.ID = "fixed-id"
	if err := a.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		var d events.FriendshipData
		if err := e.Decode(&d); err != nil || d.RequesterID != "r" || e.ID != "fixed-id" || e.Origin != "node-a" || e.At.IsZero() {
			t.Fatalf("received %+v (%+v, %v)", e, d, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event did not reach the other node")
	}
}

// Malformed messages on the channel (another program, an old version) are ignored, not fatal.
func TestMalformedMessagesIgnored(t *testing.T) {
	r := redisserver.Start(t)
	ch := "test:malformed"
	b := newNode(t, r, redisbus.Options{Channel: ch})
	waitSubscribed(t, r, ch, 1)
	c := &counter{}
	b.Subscribe("x", events.Handler{Name: "h", Handle: c.handle})
	pub := r.Client()
	for _, m := range []string{"", "{", `{"event":"x"}`, `{"id":"1"}`, `[1,2]`} {
		if err := pub.Publish(context.Background(), ch, m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := json.Marshal(map[string]any{"id": "ok", "event": "x", "data": 1, "origin": "other"})
	pub.Publish(context.Background(), ch, good)
	c.waitN(t, 1)
	time.Sleep(100 * time.Millisecond)
	if c.n.Load() != 1 || c.ids["ok"] != 1 {
		t.Fatalf("handled %v", c.ids)
	}
}

// Redis down: no crash, local handling goes on (ClusterOnce handlers run on the publisher), Close
// does not hang; Redis back: events cross nodes again. No goroutine is left behind.
func TestRedisDownAndBack(t *testing.T) {
	before := runtime.NumGoroutine()
	r := redisserver.Start(t)
	ch := "test:down"
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a := redisbus.New(r.Client(), redisbus.Options{Channel: ch, Logger: quiet})
		b := redisbus.New(r.Client(), redisbus.Options{Channel: ch, Logger: quiet})
		defer b.Close(ctx)
		defer a.Close(ctx)
		waitSubscribed(t, r, ch, 2)
		la, lb, once := &counter{}, &counter{}, &counter{}
		a.Subscribe("x", events.Handler{Name: "l", Handle: la.handle})
		b.Subscribe("x", events.Handler{Name: "l", Handle: lb.handle})
		for _, n := range []*redisbus.Bus{a, b} {
			n.Subscribe("x", events.Handler{Name: "once", Scope: events.ClusterOnce, Handle: once.handle})
		}

		r.Kill()
		for i := 0; i < 5; i++ {
			publish(t, a, "x", i)
		}
		la.waitN(t, 5)
		once.waitN(t, 5)
		deadline := time.Now().Add(5 * time.Second)
		for a.Healthy() || a.Stats().Dropped == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("outage not noticed: healthy=%v stats=%+v", a.Healthy(), a.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if lb.n.Load() != 0 {
			t.Fatalf("node b got %d events through a dead Redis", lb.n.Load())
		}

		r.Restart()
		waitSubscribed(t, r, ch, 2) // both resubscribed by themselves
		publish(t, a, "x", 99)
		lb.waitN(t, 1)
		once.waitN(t, 6)
		time.Sleep(200 * time.Millisecond)
		if once.n.Load() != 6 || la.n.Load() != 6 {
			t.Fatalf("once=%d local a=%d", once.n.Load(), la.n.Load())
		}
		if !a.Healthy() || !b.Healthy() {
			t.Fatal("still marked down after Redis came back")
		}
	}()
	r.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 { // go-redis may keep a pool reaper per closed client briefly
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d → %d:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A full publish queue drops (counted) instead of blocking the publisher; local delivery is complete.
func TestQueueBound(t *testing.T) {
	r := redisserver.Start(t)
	b := newNode(t, r, redisbus.Options{Channel: "test:queue", QueueSize: 1})
	r.Kill() // the publishing goroutine now waits on a dead Redis, the queue fills up
	c := &counter{}
	b.Subscribe("x", events.Handler{Name: "h", Handle: c.handle})
	start := time.Now()
	for i := 0; i < 50; i++ {
		publish(t, b, "x", i)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing blocked for %v", d)
	}
	c.waitN(t, 50)
	if s := b.Stats(); s.Dropped < 40 {
		t.Fatalf("stats %+v: a queue of 1 cannot hold 50 events", s)
	}
}

// A ClusterOnce handler that fails on the node that claimed it gives the claim back, so its retry
// from the shared journal runs (here on the other node) instead of being skipped as "claimed".
func TestFailedClusterOnceIsRetriedThroughTheSharedJournal(t *testing.T) {
	r := redisserver.Start(t)
	ch := fmt.Sprintf("test:%d", time.Now().UnixNano())
	j := events.NewMemoryJournal() // stands for the store both nodes share
	mem := events.MemoryOptions{Journal: j, RetryDelay: 10 * time.Millisecond, JournalPoll: 10 * time.Millisecond}
	n1 := newNode(t, r, redisbus.Options{Channel: ch, ClaimPrefix: ch, Memory: mem})
	n2 := newNode(t, r, redisbus.Options{Channel: ch, ClaimPrefix: ch, Memory: mem})
	waitSubscribed(t, r, ch, 2)

	var failed atomic.Int64
	var ok counter
	n1.Subscribe("x", events.Handler{Name: "once", Scope: events.ClusterOnce, Handle: func(context.Context, events.Event) error {
		failed.Add(1)
		return fmt.Errorf("store unreachable on node 1")
	}})
	n2.Subscribe("x", events.Handler{Name: "once", Scope: events.ClusterOnce, Handle: ok.handle})
	for i := 0; i < 20; i++ {
		publish(t, n1, "x", map[string]int{"i": i})
	}
	ok.waitN(t, 20)
	deadline := time.Now().Add(5 * time.Second)
	for j.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	ok.mu.Lock()
	defer ok.mu.Unlock()
	if len(ok.ids) != 20 || ok.n.Load() != 20 {
		t.Fatalf("node 2 handled %d events (%d distinct); want each of the 20 once", ok.n.Load(), len(ok.ids))
	}
	if failed.Load() == 0 {
		t.Fatal("node 1 never tried: the test did not exercise the failure path")
	}
	if j.Len() != 0 {
		t.Fatalf("%d journal entries left", j.Len())
	}
}
