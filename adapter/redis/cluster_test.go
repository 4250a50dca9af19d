package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"runtime"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/socketio"
)

var modes = []struct {
	name string
	opts Options
}{
	{"classic", Options{}},
	{"classic-specific-response", Options{PublishOnSpecificResponseChannel: true}},
	{"sharded", Options{Sharded: true}},
}

func twoNodes(t *testing.T, opts Options) (*redisServer, *node, *node) {
	rs := startRedis(t)
	a := startNode(t, rs, opts)
	b := startNode(t, rs, opts)
	waitServers(t, a, 2)
	waitServers(t, b, 2)
	return rs, a, b
}

func TestBroadcastAcrossNodes(t *testing.T) {
	all := append(modes[:len(modes):len(modes)],
		struct {
			name string
			opts Options
		}{"sharded-static", Options{Sharded: true, SubscriptionMode: "static"}},
		struct {
			name string
			opts Options
		}{"sharded-dynamic-private", Options{Sharded: true, SubscriptionMode: "dynamic-private"}})
	for _, m := range all {
		t.Run(m.name, func(t *testing.T) {
			rs, a, b := twoNodes(t, m.opts)
			a1 := dial(t, a.url, "a1", "r1")
			a2 := dial(t, a.url, "a2")
			b1 := dial(t, b.url, "b1", "r1")
			b2 := dial(t, b.url, "b2", "r1", "x")
			switch m.opts.SubscriptionMode {
			case "static":
			case "dynamic-private":
				waitRoomSubscribers(t, rs, m.opts, map[string]int{"r1": 2, "x": 1, b2.ID(): 1})
			default:
				waitRoomSubscribers(t, rs, m.opts, map[string]int{"r1": 2, "x": 1})
			}

			if err := a.io.Emit("all", "hi"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*clienttest.Client{a1, a2, b1, b2} {
				if got := expectEvent(t, c, "all"); got != `"hi"` {
					t.Fatalf("all: got %s", got)
				}
			}

			if err := a.io.To("r1").Emit("room", 2); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*clienttest.Client{a1, b1, b2} {
				if got := expectEvent(t, c, "room"); got != "2" {
					t.Fatalf("room: got %s", got)
				}
			}
			expectNoEvent(t, a2, "room", 200*time.Millisecond)

			if err := b.io.To("r1").Except("x").Emit("except", map[string]any{"k": []int{1, 2}}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*clienttest.Client{a1, b1} {
				if got := expectEvent(t, c, "except"); got != `{"k":[1,2]}` {
					t.Fatalf("except: got %s", got)
				}
			}
			expectNoEvent(t, b2, "except", 200*time.Millisecond)

			// Binary data crosses as msgpack bin and arrives as an attachment.
			if err := a.io.To("r1").Emit("bin", []byte{1, 2, 3}, "tail"); err != nil {
				t.Fatal(err)
			}
			ev, err := b1.WaitEvent(ctxT(t, 3*time.Second), "bin")
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Attachments) != 1 || string(ev.Attachments[0]) != "\x01\x02\x03" || string(ev.Args[1]) != `"tail"` {
				t.Fatalf("bin: got %q %s", ev.Attachments, ev.Args)
			}

			// To a socket id on the other node (a private room).
			if err := a.io.To(b2.ID()).Emit("direct", "you"); err != nil {
				t.Fatal(err)
			}
			if got := expectEvent(t, b2, "direct"); got != `"you"` {
				t.Fatalf("direct: got %s", got)
			}
			// Local broadcasts stay on their node.
			if err := a.io.Local().Emit("local", 1); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, a1, "local")
			expectNoEvent(t, b1, "local", 200*time.Millisecond)
		})
	}
}

func userIDs(list []*socketio.RemoteSocket) []string {
	var out []string
	for _, s := range list {
		d, _ := s.Data().(map[string]any)
		u, _ := d["user"].(string)
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

func TestSocketOpsAcrossNodes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, a, b := twoNodes(t, m.opts)
			dial(t, a.url, "a1", "r1")
			dial(t, a.url, "a2")
			b1 := dial(t, b.url, "b1", "r1")
			b2 := dial(t, b.url, "b2")

			all, err := a.io.FetchSockets(ctxT(t, 3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := userIDs(all); len(got) != 4 || got[0] != "a1" || got[3] != "b2" {
				t.Fatalf("fetchSockets: %v", got)
			}
			inR1, err := b.io.In("r1").FetchSockets(ctxT(t, 3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := userIDs(inR1); len(got) != 2 || got[0] != "a1" || got[1] != "b1" {
				t.Fatalf("fetchSockets in r1: %v", got)
			}
			for _, s := range inR1 {
				if s.ID() == b1.ID() {
					continue
				}
				if s.Handshake().Query.Get("user") != "a1" || !contains(s.Rooms(), "r1") {
					t.Fatalf("remote socket details: %+v %v", s.Handshake(), s.Rooms())
				}
			}

			// socketsJoin from A reaches B's sockets.
			if err := a.io.In("r1").SocketsJoin("joined"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 3*time.Second, "b1 joined", func() bool {
				return contains(b.io.Of("/").Adapter().SocketRooms(b1.ID()), "joined")
			})
			if err := a.io.SocketsLeave("joined"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 3*time.Second, "b1 left", func() bool {
				return !contains(b.io.Of("/").Adapter().SocketRooms(b1.ID()), "joined")
			})

			// disconnectSockets from A disconnects b2 on B.
			if err := a.io.In(b2.ID()).DisconnectSockets(true); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b2.Done():
			case <-time.After(3 * time.Second):
				t.Fatal("b2 not disconnected")
			}
			if _, err := b1.EmitWithAck(ctxT(t, 2*time.Second), "ping-node"); err != nil {
				t.Fatalf("b1 should still be connected: %v", err)
			}
		})
	}
}

func TestServerSideEmitAcrossNodes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, a, b := twoNodes(t, m.opts)
			got := make(chan string, 1)
			b.io.OnServerSideEmit("hello", func(ev *socketio.Event) {
				var n int
				_ = ev.Decode(&n)
				if ev.HasAck() {
					_ = ev.Ack("from-b", "ignored")
					return
				}
				got <- string(ev.Args()[0])
			})
			if err := a.io.ServerSideEmit("hello", 7); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-got:
				if s != "7" {
					t.Fatalf("got %s", s)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("server-side emit not received")
			}
			replies, err := a.io.ServerSideEmitWithAck(ctxT(t, 3*time.Second), "hello", 1)
			if err != nil {
				t.Fatal(err)
			}
			// One reply per other node, carrying the first ack argument (as Node's adapter does).
			if len(replies) != 1 || len(replies[0]) != 1 || string(replies[0][0]) != `"from-b"` {
				t.Fatalf("replies: %q", replies)
			}
		})
	}
}

func TestBroadcastWithAckAcrossNodes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			_, a, b := twoNodes(t, m.opts)
			var clients []*clienttest.Client
			for i, u := range []string{"a1", "a2", "b1", "b2"} {
				url := a.url
				if i >= 2 {
					url = b.url
				}
				user := u
				c, err := clienttest.Dial(ctxT(t, 5*time.Second), url, clienttest.Options{
					Query: map[string][]string{"user": {user}},
					AckHandler: func(event string, args []json.RawMessage) []any {
						return []any{"ok-" + user}
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				clients = append(clients, c)
			}
			replies, err := a.io.Timeout(3*time.Second).EmitWithAck(ctxT(t, 5*time.Second), "ask", 1)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range replies {
				var s string
				_ = json.Unmarshal(r[0], &s)
				got = append(got, s)
			}
			sort.Strings(got)
			if len(got) != 4 || got[0] != "ok-a1" || got[3] != "ok-b2" {
				t.Fatalf("acks: %v", got)
			}
		})
	}
}

// A node that is subscribed (so it is counted) but never answers makes requests time out.
func TestRequestTimeout(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			rs := startRedis(t)
			opts := m.opts
			opts.RequestsTimeout = 300 * time.Millisecond
			a := startNode(t, rs, opts)
			silent := rs.Client(t)
			var ps interface{ Close() error }
			if opts.Sharded {
				ps = silent.SSubscribe(context.Background(), "socket.io#/#")
			} else {
				ps = silent.Subscribe(context.Background(), "socket.io-request#/#")
			}
			defer ps.Close()
			waitServers(t, a, 2)
			dial(t, a.url, "a1")

			start := time.Now()
			list, err := a.io.FetchSockets(context.Background())
			if !errors.Is(err, adapter.ErrTimeout) {
				t.Fatalf("want ErrTimeout, got %v", err)
			}
			if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
				t.Fatalf("timeout after %v", d)
			}
			if len(list) != 1 { // the local socket is still returned
				t.Fatalf("got %d sockets", len(list))
			}
			if _, err := a.io.ServerSideEmitWithAck(context.Background(), "x"); !errors.Is(err, adapter.ErrTimeout) {
				t.Fatalf("serverSideEmitWithAck: want ErrTimeout, got %v", err)
			}
			// The caller's context bounds the wait too.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start = time.Now()
			if _, err := a.io.FetchSockets(ctx); !errors.Is(err, adapter.ErrTimeout) || time.Since(start) > 250*time.Millisecond {
				t.Fatalf("ctx deadline: %v after %v", err, time.Since(start))
			}
		})
	}
}

// Redis killed for a few seconds: local delivery goes on, nothing crashes or leaks, and cross-node
// delivery resumes once Redis is back.
func TestRedisOutage(t *testing.T) {
	for _, m := range []struct {
		name string
		opts Options
	}{modes[0], modes[2]} {
		t.Run(m.name, func(t *testing.T) {
			rs := startRedis(t)
			logA, countA := newCountingLogger()
			optsA := m.opts
			optsA.Logger = logA
			a := startNode(t, rs, optsA)
			b := startNode(t, rs, m.opts)
			waitServers(t, a, 2)
			waitServers(t, b, 2)
			a1 := dial(t, a.url, "a1", "r1")
			b1 := dial(t, b.url, "b1", "r1")
			waitRoomSubscribers(t, rs, m.opts, map[string]int{"r1": 2})
			if err := a.io.To("r1").Emit("before", 1); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, b1, "before")
			expectEvent(t, a1, "before")
			if !a.cluster.Healthy() || a.cluster.Check(context.Background()) != nil {
				t.Fatal("not healthy before the outage")
			}
			baseline := runtime.NumGoroutine()

			rs.Kill()
			eventually(t, 5*time.Second, "unhealthy", func() bool { return !a.cluster.Healthy() && !b.cluster.Healthy() })
			if a.cluster.Check(context.Background()) == nil {
				t.Fatal("Check says ready while Redis is down")
			}
			for i := 0; i < 200; i++ {
				if err := a.io.To("r1").Emit("during", i); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 200; i++ {
				if got := expectEvent(t, a1, "during"); got == "" {
					t.Fatal("local delivery stopped")
				}
			}
			// Cluster operations answer from the local node instead of hanging.
			list, err := a.io.FetchSockets(ctxT(t, 3*time.Second))
			if err != nil || len(list) != 1 {
				t.Fatalf("fetchSockets during outage: %d %v", len(list), err)
			}
			replies, err := a.io.Timeout(time.Second).EmitWithAck(ctxT(t, 3*time.Second), "ping-less")
			if err == nil || len(replies) != 0 {
				// a1 has no ack handler: the broadcast times out locally, but must not hang longer.
				t.Logf("emitWithAck during outage: %d replies, %v", len(replies), err)
			}
			time.Sleep(1500 * time.Millisecond) // a few reconnect attempts
			if n := runtime.NumGoroutine(); n > baseline+20 {
				t.Fatalf("goroutines grew from %d to %d during the outage", baseline, n)
			}

			// One warning for the whole outage, whatever was emitted and retried meanwhile.
			if n := countA("redisadapter: redis unreachable; cross-node delivery paused, local delivery goes on"); n != 1 {
				t.Fatalf("outage logged %d times", n)
			}

			rs.Start()
			eventually(t, 10*time.Second, "healthy again", func() bool { return a.cluster.Healthy() && b.cluster.Healthy() })
			if n := countA("redisadapter: redis reachable again; cross-node delivery resumed"); n != 1 {
				t.Fatalf("recovery logged %d times", n)
			}
			waitServers(t, a, 2)
			// Cross-node delivery resumes (subscriptions restored on B).
			var got atomic.Bool
			b1.On("after", func([]json.RawMessage) { got.Store(true) })
			eventually(t, 5*time.Second, "delivery after restart", func() bool {
				_ = a.io.To("r1").Emit("after", 1)
				return got.Load()
			})
			var gotA atomic.Bool
			a1.On("after-b", func([]json.RawMessage) { gotA.Store(true) })
			eventually(t, 5*time.Second, "delivery B→A after restart", func() bool {
				_ = b.io.Emit("after-b", 1)
				return gotA.Load()
			})
		})
	}
}

// Closing every adapter stops the link's goroutines.
func TestCloseStopsGoroutines(t *testing.T) {
	rs := startRedis(t)
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		c := NewCluster(rs.Client(t), Options{Logger: quietLogger()})
		f := c.Factory()
		ad := f(&fakeNsp{name: "/"})
		ad2 := f(&fakeNsp{name: "/chat"})
		_ = ad.Init()
		_ = ad2.Init()
		if !c.Healthy() {
			t.Fatal("not healthy after Init")
		}
		_ = ad.Close()
		_ = ad2.Close()
		if c.Healthy() {
			t.Fatal("healthy after close")
		}
	}
	eventually(t, 3*time.Second, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+3 })
}

var _ = url.Values{}

// Namespaces share the node's subscriber connection but never each other's messages.
func TestNamespacesAreSeparate(t *testing.T) {
	for _, m := range []struct {
		name string
		opts Options
	}{modes[0], modes[2]} {
		t.Run(m.name, func(t *testing.T) {
			rs, a, b := twoNodes(t, m.opts)
			for _, n := range []*node{a, b} {
				for _, name := range []string{"/chat", "/chat*"} {
					n.io.Of(name).OnConnection(func(s *socketio.Socket) {
						s.Join("r1")
						s.On("ping-node", func(ev *socketio.Event) { _ = ev.Ack("pong") })
					})
				}
			}
			eventually(t, 5*time.Second, "2 servers for /chat", func() bool {
				n, err := a.io.Of("/chat").Adapter().ServerCount(context.Background())
				return err == nil && n == 2
			})
			eventually(t, 5*time.Second, "2 servers for /chat*", func() bool {
				n, err := b.io.Of("/chat*").Adapter().ServerCount(context.Background())
				return err == nil && n == 2
			})
			root := dial(t, b.url, "root", "r1")
			chat, err := clienttest.Dial(ctxT(t, 5*time.Second), b.url, clienttest.Options{Namespace: "/chat"})
			if err != nil {
				t.Fatal(err)
			}
			defer chat.Close()
			star, err := clienttest.Dial(ctxT(t, 5*time.Second), b.url, clienttest.Options{Namespace: "/chat*"})
			if err != nil {
				t.Fatal(err)
			}
			defer star.Close()
			for _, c := range []*clienttest.Client{chat, star} {
				if _, err := c.EmitWithAck(ctxT(t, 3*time.Second), "ping-node"); err != nil {
					t.Fatal(err)
				}
			}
			if m.opts.Sharded {
				waitShardSubscribers(t, rs, "socket.io#/chat#r1#", 1)
				waitShardSubscribers(t, rs, "socket.io#/chat*#r1#", 1)
			}

			if err := a.io.Of("/chat").To("r1").Emit("msg", "chat"); err != nil {
				t.Fatal(err)
			}
			if got := expectEvent(t, chat, "msg"); got != `"chat"` {
				t.Fatalf("got %s", got)
			}
			if err := a.io.Of("/chat*").Emit("msg", "star"); err != nil {
				t.Fatal(err)
			}
			if got := expectEvent(t, star, "msg"); got != `"star"` {
				t.Fatalf("got %s", got)
			}
			expectNoEvent(t, root, "msg", 200*time.Millisecond)
			expectNoEvent(t, chat, "msg", 100*time.Millisecond) // "/chat*" is no glob pattern
		})
	}
}
