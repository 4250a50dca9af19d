package redisadapter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/socketio"
)

// interopDir holds the Node peers (package.json pins socket.io 4.8, @socket.io/redis-adapter 8.x,
// @socket.io/redis-emitter, redis 4).
var interopDir = filepath.Join("..", "..", "clienttest", "interop")

func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: the interop tests need Node.js 18+ and `npm ci` in clienttest/interop")
	}
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "@socket.io", "redis-adapter")); err != nil {
		t.Fatalf("clienttest/interop/node_modules is missing: run `npm ci` in clienttest/interop (make js-deps does): %v", err)
	}
}

// nodePeer is node-server.js: a Node socket.io server with @socket.io/redis-adapter.
type nodePeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	url    string
	mu     sync.Mutex
	nextID int
	waits  map[int]chan nodeReply
	events chan json.RawMessage
}

type nodeReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
	Event  string          `json:"event"`
	Port   int             `json:"port"`
}

func startNodePeer(t *testing.T, rs *redisServer, mode string) *nodePeer {
	t.Helper()
	requireNode(t)
	cmd := exec.Command("node", "node-server.js")
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://"+rs.Addr(), "PORT=0", "MODE="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &nodePeer{t: t, cmd: cmd, stdin: stdin, waits: map[int]chan nodeReply{}, events: make(chan json.RawMessage, 64)}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	listening := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			var r nodeReply
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			switch {
			case r.Event == "listening":
				listening <- r.Port
			case r.Event == "fatal" || r.Event == "redis-error":
				t.Logf("node peer: %s", line)
			case r.Event != "":
				select {
				case p.events <- line:
				default:
				}
			default:
				p.mu.Lock()
				ch := p.waits[r.ID]
				delete(p.waits, r.ID)
				p.mu.Unlock()
				if ch != nil {
					ch <- r
				}
			}
		}
	}()
	select {
	case port := <-listening:
		p.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	case <-time.After(15 * time.Second):
		t.Fatal("node peer did not start")
	}
	return p
}

// call runs a command in the Node peer and unmarshals its result into out.
func (p *nodePeer) call(cmd map[string]any, out any) error {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan nodeReply, 1)
	p.waits[id] = ch
	p.mu.Unlock()
	cmd["id"] = id
	line, _ := json.Marshal(cmd)
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return fmt.Errorf("node: %s", r.Error)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("node: no answer to %s", line)
	}
}

func (p *nodePeer) mustCall(cmd map[string]any, out any) {
	p.t.Helper()
	if err := p.call(cmd, out); err != nil {
		p.t.Fatal(err)
	}
}

func runEmitter(t *testing.T, rs *redisServer, cmd map[string]any) {
	t.Helper()
	arg, _ := json.Marshal(cmd)
	c := exec.Command("node", "emitter.js", string(arg))
	c.Dir = interopDir
	c.Env = append(os.Environ(), "REDIS_URL=redis://"+rs.Addr())
	out, err := c.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("emitter: %v: %s", err, out)
	}
}

func TestInteropWithNode(t *testing.T) {
	for _, mode := range []string{"classic", "sharded", "sharded-static", "sharded-dynamic-private"} {
		t.Run(mode, func(t *testing.T) {
			rs := startRedis(t)
			peer := startNodePeer(t, rs, mode)
			subMode, _ := strings.CutPrefix(strings.TrimPrefix(mode, "sharded"), "-")
			sharded := strings.HasPrefix(mode, "sharded")
			g := startNode(t, rs, Options{Sharded: sharded, SubscriptionMode: subMode})
			waitServers(t, g, 2)
			eventually(t, 5*time.Second, "node sees 2 servers", func() bool {
				var n int
				return peer.call(map[string]any{"cmd": "serverCount"}, &n) == nil && n == 2
			})

			cn := dial(t, peer.url, "n1", "r1", "user:7")
			cg := dial(t, g.url, "g1", "r1", "user:42")
			cg2 := dial(t, g.url, "g2", "x")
			switch mode { // room channels are subscribed asynchronously on both sides
			case "sharded":
				waitRoomSubscribers(t, rs, Options{Sharded: true}, map[string]int{"r1": 2, "user:42": 1, "user:7": 1, "x": 1})
			case "sharded-dynamic-private":
				waitRoomSubscribers(t, rs, Options{Sharded: true}, map[string]int{"r1": 2, "user:42": 1, "user:7": 1, "x": 1, cn.ID(): 1, cg.ID(): 1})
			}

			// Node → Go: a room broadcast, with except, with binary data.
			peer.mustCall(map[string]any{"cmd": "emit", "rooms": []string{"r1"}, "event": "from-node", "args": []any{"hi", map[string]any{"n": 1.5}}}, nil)
			ev, err := cg.WaitEvent(ctxT(t, 3*time.Second), "from-node")
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.Args[0]) != `"hi"` || string(ev.Args[1]) != `{"n":1.5}` {
				t.Fatalf("from-node: %s", ev.Args)
			}
			expectEvent(t, cn, "from-node")
			expectNoEvent(t, cg2, "from-node", 200*time.Millisecond)

			peer.mustCall(map[string]any{"cmd": "emit", "except": []string{"x"}, "event": "all-but-x", "args": []any{1}}, nil)
			expectEvent(t, cg, "all-but-x")
			expectNoEvent(t, cg2, "all-but-x", 200*time.Millisecond)

			peer.mustCall(map[string]any{"cmd": "emit", "rooms": []string{"user:42"}, "event": "bin", "args": []any{map[string]any{"$bin": "AQID"}}}, nil)
			bev, err := cg.WaitEvent(ctxT(t, 3*time.Second), "bin")
			if err != nil {
				t.Fatal(err)
			}
			if len(bev.Attachments) != 1 || string(bev.Attachments[0]) != "\x01\x02\x03" {
				t.Fatalf("binary from node: %q", bev.Attachments)
			}

			// Go → Node.
			if err := g.io.To("r1").Emit("from-go", "hey", []byte{9, 8}); err != nil {
				t.Fatal(err)
			}
			gev, err := cn.WaitEvent(ctxT(t, 3*time.Second), "from-go")
			if err != nil {
				t.Fatal(err)
			}
			if string(gev.Args[0]) != `"hey"` || len(gev.Attachments) != 1 || string(gev.Attachments[0]) != "\x09\x08" {
				t.Fatalf("from-go at node client: %s %q", gev.Args, gev.Attachments)
			}
			if err := g.io.To("user:7").Emit("direct", 1); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, cn, "direct")

			// fetchSockets both ways.
			list, err := g.io.In("r1").FetchSockets(ctxT(t, 3*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got := userIDs(list); len(got) != 2 || got[0] != "g1" || got[1] != "n1" {
				t.Fatalf("go fetchSockets: %v", got)
			}
			for _, s := range list {
				if s.ID() == cn.ID() && (!contains(s.Rooms(), "user:7") || s.Handshake().Query.Get("user") != "n1" || s.Handshake().Address == "") {
					t.Fatalf("node socket details: %+v %v", s.Handshake(), s.Rooms())
				}
			}
			var nodeList []struct {
				ID    string   `json:"id"`
				User  string   `json:"user"`
				Rooms []string `json:"rooms"`
			}
			peer.mustCall(map[string]any{"cmd": "fetch"}, &nodeList)
			var users []string
			for _, s := range nodeList {
				users = append(users, s.User)
				if s.User == "g1" && !contains(s.Rooms, "user:42") {
					t.Fatalf("go socket at node: %+v", s)
				}
			}
			sort.Strings(users)
			if strings.Join(users, ",") != "g1,g2,n1" {
				t.Fatalf("node fetchSockets: %v", users)
			}

			// socketsJoin from Node reaches the Go sockets.
			peer.mustCall(map[string]any{"cmd": "socketsJoin", "rooms": []string{"x"}, "join": "joined-by-node"}, nil)
			eventually(t, 3*time.Second, "g2 joined by node", func() bool {
				return contains(g.io.Of("/").Adapter().SocketRooms(cg2.ID()), "joined-by-node")
			})
			// socketsLeave and disconnectSockets from Node reach them too.
			peer.mustCall(map[string]any{"cmd": "socketsLeave", "rooms": []string{"x"}, "leave": "joined-by-node"}, nil)
			eventually(t, 3*time.Second, "g2 left by node", func() bool {
				return !contains(g.io.Of("/").Adapter().SocketRooms(cg2.ID()), "joined-by-node")
			})
			kicked := dial(t, g.url, "g3", "kick-me")
			peer.mustCall(map[string]any{"cmd": "disconnectSockets", "rooms": []string{"kick-me"}, "close": false}, nil)
			if reason, err := kicked.WaitDisconnect(ctxT(t, 3*time.Second)); err != nil || reason != "io server disconnect" {
				t.Fatalf("disconnectSockets from node: %q %v", reason, err)
			}
			if err := g.io.To("x").Emit("still-here"); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, cg2, "still-here") // only the room's socket went

			// Server-side emit both ways, with acks.
			g.io.OnServerSideEmit("hello", func(ev *socketio.Event) {
				if ev.HasAck() {
					_ = ev.Ack("from-go")
				}
			})
			replies, err := g.io.ServerSideEmitWithAck(ctxT(t, 3*time.Second), "hello", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(replies) != 1 || string(replies[0][0]) != `"from-node"` {
				t.Fatalf("go serverSideEmitWithAck: %q", replies)
			}
			var nodeReplies []any
			peer.mustCall(map[string]any{"cmd": "serverSideEmitWithAck", "event": "hello", "args": []any{2}}, &nodeReplies)
			if len(nodeReplies) != 1 || nodeReplies[0] != "from-go" {
				t.Fatalf("node serverSideEmitWithAck: %v", nodeReplies)
			}

			// Broadcast with acks both ways.
			cg.SetAckHandler(func(string, []json.RawMessage) []any { return []any{"g1-ack"} })
			cn.SetAckHandler(func(string, []json.RawMessage) []any { return []any{"n1-ack"} })
			acks, err := g.io.In("r1").Timeout(3*time.Second).EmitWithAck(ctxT(t, 5*time.Second), "ask")
			if err != nil {
				t.Fatal(err)
			}
			if got := ackStrings(acks); got != "g1-ack,n1-ack" {
				t.Fatalf("go emitWithAck: %s", got)
			}
			var nodeAcks []string
			peer.mustCall(map[string]any{"cmd": "emitWithAck", "rooms": []string{"r1"}, "event": "ask", "timeout": 3000}, &nodeAcks)
			sort.Strings(nodeAcks)
			if strings.Join(nodeAcks, ",") != "g1-ack,n1-ack" {
				t.Fatalf("node emitWithAck: %v", nodeAcks)
			}

			if sharded {
				return // @socket.io/redis-emitter publishes on classic channels only
			}
			// @socket.io/redis-emitter: to a room and to a user room of the Go node.
			runEmitter(t, rs, map[string]any{"to": []string{"r1"}, "event": "emitted", "args": []any{"to-room"}})
			if got := expectEvent(t, cg, "emitted"); got != `"to-room"` {
				t.Fatalf("emitter to room: %s", got)
			}
			expectEvent(t, cn, "emitted")
			runEmitter(t, rs, map[string]any{"to": []string{"user:42"}, "event": "notify", "args": []any{map[string]any{"id": 5}, map[string]any{"$bin": "/w=="}}})
			nev, err := cg.WaitEvent(ctxT(t, 3*time.Second), "notify")
			if err != nil {
				t.Fatal(err)
			}
			if string(nev.Args[0]) != `{"id":5}` || len(nev.Attachments) != 1 || nev.Attachments[0][0] != 0xff {
				t.Fatalf("emitter to user: %s %q", nev.Args, nev.Attachments)
			}
			expectNoEvent(t, cg2, "notify", 200*time.Millisecond)
			runEmitter(t, rs, map[string]any{"except": []string{"r1"}, "event": "others", "args": []any{}})
			expectEvent(t, cg2, "others")
			expectNoEvent(t, cg, "others", 200*time.Millisecond)

			// The emitter's room operations and server-side emit reach the Go node.
			runEmitter(t, rs, map[string]any{"op": "socketsJoin", "to": []string{"r1"}, "rooms": []string{"by-emitter"}})
			eventually(t, 3*time.Second, "g1 joined by the emitter", func() bool {
				return contains(g.io.Of("/").Adapter().SocketRooms(cg.ID()), "by-emitter")
			})
			if contains(g.io.Of("/").Adapter().SocketRooms(cg2.ID()), "by-emitter") {
				t.Fatal("emitter socketsJoin reached a socket outside r1")
			}
			runEmitter(t, rs, map[string]any{"op": "socketsLeave", "to": []string{"by-emitter"}, "rooms": []string{"by-emitter", "r1"}})
			eventually(t, 3*time.Second, "g1 left by the emitter", func() bool {
				rooms := g.io.Of("/").Adapter().SocketRooms(cg.ID())
				return !contains(rooms, "by-emitter") && !contains(rooms, "r1")
			})
			got := make(chan []json.RawMessage, 1)
			g.io.OnServerSideEmit("from-emitter", func(ev *socketio.Event) { got <- ev.Args() })
			runEmitter(t, rs, map[string]any{"op": "serverSideEmit", "event": "from-emitter", "args": []any{"a", 2}})
			select {
			case args := <-got:
				if len(args) != 2 || string(args[0]) != `"a"` || string(args[1]) != "2" {
					t.Fatalf("emitter serverSideEmit: %s", args)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("emitter serverSideEmit did not reach the Go node")
			}
			runEmitter(t, rs, map[string]any{"op": "disconnectSockets", "to": []string{"x"}, "close": true})
			if _, err := cg2.WaitDisconnect(ctxT(t, 3*time.Second)); err != nil {
				t.Fatalf("emitter disconnectSockets: %v", err)
			}
			if err := g.io.Emit("after-disconnect"); err != nil {
				t.Fatal(err)
			}
			expectEvent(t, cg, "after-disconnect") // the others stay
		})
	}
}

func ackStrings(replies [][]json.RawMessage) string {
	var out []string
	for _, r := range replies {
		var s string
		if len(r) > 0 {
			_ = json.Unmarshal(r[0], &s)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

var _ = clienttest.Options{}
var _ = context.Background
