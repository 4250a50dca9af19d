package redispresence_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/internal/redisserver"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/presence/presencetest"
	"github.com/maoga/maoga/services/presence/redispresence"
	"github.com/maoga/maoga/services/realtime"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newNode(t *testing.T, c redis.UniversalClient, b *presencetest.Backend, prefix string, mod func(*redispresence.Options)) *redispresence.Service {
	t.Helper()
	o := redispresence.Options{Client: c, Users: b.Users, Friends: b.Friends, Emitter: b.Emitter,
		Prefix: prefix, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	s, err := redispresence.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func TestConformance(t *testing.T) {
	r := redisserver.Start(t)
	c := r.Client()
	var mu sync.Mutex
	prefixes := map[*presencetest.Backend]string{}
	presencetest.Run(t, func(t *testing.T, b *presencetest.Backend) presence.Service {
		mu.Lock()
		p := prefixes[b]
		if p == "" {
			p = fmt.Sprintf("p%d", len(prefixes))
			prefixes[b] = p
		}
		mu.Unlock()
		return newNode(t, c, b, p, nil) // every call is another node on the same Redis
	})
}

func backend(friendsOf string, friends ...string) *presencetest.Backend {
	b := &presencetest.Backend{Users: &presencetest.Users{}, Friends: &presencetest.Friends{}, Emitter: &realtime.Recorder{}}
	b.Friends.Set(friendsOf, friends...)
	return b
}

// heard lists the statuses announced about user to friend, in order.
func heard(b *presencetest.Backend, user, friend string) []string {
	var out []string
	for _, e := range b.Emitter.Events() {
		if e.Room != realtime.UserRoom(friend) || e.Event != presence.StatusEvent {
			continue
		}
		if p := e.Args[0].(presence.StatusPayload); p.UserID == user {
			out = append(out, p.Status)
		}
	}
	return out
}

func waitHeard(t *testing.T, b *presencetest.Backend, user, friend string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for fmt.Sprint(heard(b, user, friend)) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("friend heard %v, want %v", heard(b, user, friend), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill -9 of a node: its users without sockets elsewhere go offline (once, by one survivor) within
// HeartbeatTTL + ReapInterval; users with a socket on a survivor stay online.
func TestDeadNodeReaped(t *testing.T) {
	r := redisserver.Start(t)
	b := backend("u1", "f")
	b.Friends.Set("u2", "f")
	fast := func(o *redispresence.Options) {
		o.HeartbeatTTL, o.HeartbeatInterval, o.ReapInterval = 600*time.Millisecond, 150*time.Millisecond, 200*time.Millisecond
	}
	dead := newNode(t, r.Client(), b, "p", fast)
	s1 := newNode(t, r.Client(), b, "p", fast)
	s2 := newNode(t, r.Client(), b, "p", fast)
	ctx := context.Background()
	for _, step := range []struct {
		s            *redispresence.Service
		user, socket string
	}{{dead, "u1", "a"}, {dead, "u1", "b"}, {dead, "u2", "c"}, {s1, "u2", "d"}} {
		if _, err := step.s.Connect(ctx, step.user, step.socket); err != nil {
			t.Fatal(err)
		}
	}
	if err := dead.SetStatus(ctx, "u1", presence.Busy); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dead.Crash()
	waitHeard(t, b, "u1", "f", presence.Online, presence.Busy, presence.Offline)
	if d := time.Since(start); d > 600*time.Millisecond+200*time.Millisecond+time.Second {
		t.Fatalf("offline announced after %v", d)
	}
	time.Sleep(500 * time.Millisecond) // the other survivor's scans must not announce again
	if got := heard(b, "u1", "f"); len(got) != 3 {
		t.Fatalf("announced %v", got)
	}
	if got := heard(b, "u2", "f"); fmt.Sprint(got) != "[online]" {
		t.Fatalf("u2 (socket on a survivor) heard %v", got)
	}
	for _, s := range []*redispresence.Service{s1, s2} {
		m, err := s.Statuses(ctx, []string{"u1", "u2"})
		if err != nil || m["u1"] != presence.Offline || m["u2"] != presence.Online {
			t.Fatalf("statuses %v %v", m, err)
		}
	}
	if st, at := b.Users.Saved("u1"); st != presence.Offline || at.IsZero() {
		t.Fatalf("saved %s %v", st, at)
	}
	if n, _ := r.Client().SCard(ctx, "p:nodes").Result(); n != 2 {
		t.Fatalf("%d nodes registered, want the 2 survivors", n)
	}
	if off, err := s1.Disconnect(ctx, "u2", "d"); err != nil || !off {
		t.Fatalf("last socket of u2: %v %v", off, err)
	}
}

// A node that was reaped while alive (a long pause) registers its sockets again at its next
// heartbeat: its users are online again.
func TestReapedWhileAliveComesBack(t *testing.T) {
	r := redisserver.Start(t)
	b := backend("u1", "f")
	ctx := context.Background()
	s := newNode(t, r.Client(), b, "p", func(o *redispresence.Options) {
		o.HeartbeatTTL, o.HeartbeatInterval, o.ReapInterval = 2*time.Second, 100*time.Millisecond, time.Hour
	})
	other := newNode(t, r.Client(), b, "p", func(o *redispresence.Options) { o.ReapInterval = time.Hour })
	if _, err := s.Connect(ctx, "u1", "a"); err != nil {
		t.Fatal(err)
	}
	// Pretend the heartbeat expired and let the other node reap.
	c := r.Client()
	if err := c.Del(ctx, "p:node:"+s.Node()+":alive").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := other.ReapDead(ctx); err != nil || n != 1 {
		t.Fatalf("reaped %d users, %v", n, err)
	}
	waitHeard(t, b, "u1", "f", presence.Online, presence.Offline, presence.Online)
	if st, _ := other.Status(ctx, "u1"); st != presence.Online {
		t.Fatalf("status %s", st)
	}
	if off, err := s.Disconnect(ctx, "u1", "a"); err != nil || !off {
		t.Fatalf("disconnect %v %v", off, err)
	}
}

// Redis down: calls fail with an error (no panic, no hang), the sockets stay tracked; Redis back
// (empty, as after a restart): the node registers its sockets again and applies what happened
// meanwhile. No goroutines are left.
func TestRedisDownAndBack(t *testing.T) {
	before := runtime.NumGoroutine()
	r := redisserver.Start(t)
	b := backend("u1", "f")
	b.Friends.Set("u2", "f")
	ctx := context.Background()
	func() {
		s, err := redispresence.New(redispresence.Options{Client: r.Client(), Users: b.Users, Friends: b.Friends,
			Emitter: b.Emitter, Prefix: "p", Logger: quiet, HeartbeatTTL: time.Second, HeartbeatInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		if _, err := s.Connect(ctx, "u1", "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Connect(ctx, "u2", "b"); err != nil {
			t.Fatal(err)
		}
		r.Kill()
		octx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := s.Connect(octx, "u1", "c"); err == nil {
			t.Fatal("connect without Redis reported no error")
		}
		// Fallback to this node's view: u2's last socket here → offline is announced (and saved).
		if off, err := s.Disconnect(octx, "u2", "b"); err == nil || !off {
			t.Fatalf("disconnect without Redis: %v %v (want the error and the local view: offline)", off, err)
		}
		if got := heard(b, "u2", "f"); fmt.Sprint(got) != "[online offline]" {
			t.Fatalf("u2's friend heard %v", got)
		}
		if st, at := b.Users.Saved("u2"); st != presence.Offline || at.IsZero() {
			t.Fatalf("u2 saved %s %v", st, at)
		}
		if _, err := s.Status(octx, "u1"); err == nil {
			t.Fatal("status without Redis reported no error")
		}
		r.Restart()
		// u1 (sockets a, c) is registered again; u2 left during the outage and was never re-added.
		// Reconcile registers the sockets one by one: u1 is online after the first, so wait for both.
		rc := r.Client()
		deadline := time.Now().Add(5 * time.Second)
		for {
			m, err := s.Statuses(ctx, []string{"u1", "u2"})
			n, herr := rc.HLen(ctx, "p:node:"+s.Node()+":sockets").Result()
			if err == nil && herr == nil && m["u1"] == presence.Online && m["u2"] == presence.Offline && n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after Redis came back: %v %v", m, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if off, err := s.Disconnect(ctx, "u1", "a"); err != nil || off {
			t.Fatalf("disconnect a: %v %v", off, err)
		}
		if off, err := s.Disconnect(ctx, "u1", "c"); err != nil || !off {
			t.Fatalf("disconnect c (registered during reconcile): %v %v", off, err)
		}
	}()
	r.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines %d → %d:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Many sockets of one user connecting and leaving on two nodes at once: friends hear strictly
// alternating online/offline, ending offline (each change announced once).
func TestConcurrentAcrossNodes(t *testing.T) {
	r := redisserver.Start(t)
	b := backend("u1", "f")
	n1 := newNode(t, r.Client(), b, "p", nil)
	n2 := newNode(t, r.Client(), b, "p", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := []*redispresence.Service{n1, n2}[i%2]
			id := fmt.Sprintf("s%d", i)
			if _, err := s.Connect(ctx, "u1", id); err != nil {
				t.Error(err)
			}
			if _, err := s.Disconnect(ctx, "u1", id); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	got := heard(b, "u1", "f")
	on, off := 0, 0
	for _, s := range got {
		if s == presence.Online {
			on++
		} else {
			off++
		}
	}
	if on == 0 || on != off {
		t.Fatalf("%d online vs %d offline announcements: %v", on, off, got)
	}
	if st, _ := n1.Status(ctx, "u1"); st != presence.Offline {
		t.Fatalf("status %s", st)
	}
}

// Close announces offline for sockets still held (their disconnect handlers did not run) and leaves
// no keys behind.
func TestCloseCleansUp(t *testing.T) {
	r := redisserver.Start(t)
	b := backend("u1", "f")
	ctx := context.Background()
	s, err := redispresence.New(redispresence.Options{Client: r.Client(), Users: b.Users, Friends: b.Friends,
		Emitter: b.Emitter, Prefix: "p", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Connect(ctx, "u1", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitHeard(t, b, "u1", "f", presence.Online, presence.Offline)
	keys, _ := r.Client().Keys(ctx, "p:*").Result()
	if len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

func TestOptionsChecked(t *testing.T) {
	b := backend("u", "f")
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, o := range []redispresence.Options{
		{Users: b.Users, Friends: b.Friends, Emitter: b.Emitter},
		{Client: c, Users: b.Users, Friends: b.Friends, Emitter: b.Emitter, Node: "a|b"},
		{Client: c, Users: b.Users, Friends: b.Friends, Emitter: b.Emitter, HeartbeatTTL: time.Second, HeartbeatInterval: time.Second},
	} {
		if _, err := redispresence.New(o); err == nil {
			t.Fatalf("accepted %+v", o)
		}
	}
}

// The disconnect storm of the 2000-client soak against the Redis presence with the app's SaveQueue in
// front of a slow store: every user ends offline with lastActive saved (presencetest.DisconnectStorm).
func TestDisconnectStormThroughSaveQueue(t *testing.T) {
	r := redisserver.Start(t)
	presencetest.DisconnectStorm(t, presencetest.StormOptions{Users: 2000, HandlerTimeout: 10 * time.Second},
		func(t *testing.T, users presence.UserStore, friends presence.FriendLister, emitter realtime.Emitter) presence.Service {
			s, err := redispresence.New(redispresence.Options{Client: r.Client(), Users: users, Friends: friends,
				Emitter: emitter, Prefix: "storm", Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_ = s.Close(ctx)
			})
			return s
		})
}
