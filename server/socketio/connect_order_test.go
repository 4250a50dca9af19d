package socketio

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/parser"
)

// The connection handlers run once the CONNECT answer has been written, so what they emit leaves
// in a later write (as in Node, where emits wait for the CONNECT write to complete). A long-polling
// client with no GET pending shows it without timing: the handlers wait for its next GET.
func TestConnectHandlersWaitForConnectWrite(t *testing.T) {
	io, url := newServer(t, Options{})
	var ran atomic.Bool
	io.OnConnection(func(s *Socket) {
		ran.Store(true)
		_ = s.Emit("hello", 1)
	})
	base := url + "/socket.io/?EIO=4&transport=polling"
	get := func(u string) string {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := readBody(resp)
		return b
	}
	var hs struct{ SID string }
	if open := get(base); json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs) != nil {
		t.Fatalf("open %q", open)
	}
	u := base + "&sid=" + hs.SID
	resp, err := http.Post(u, "text/plain;charset=UTF-8", strings.NewReader("40"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(100 * time.Millisecond)
	if ran.Load() {
		t.Fatal("connection handler ran before the CONNECT answer was written")
	}
	if got := get(u); !strings.HasPrefix(got, "40{") || strings.Contains(got, "hello") {
		t.Fatalf("first poll %q: want the CONNECT answer alone", got)
	}
	if got := get(u); got != `42["hello",1]` {
		t.Fatalf("second poll %q", got)
	}
	if !ran.Load() {
		t.Fatal("handler did not run")
	}
}

// hookAdapter broadcasts "live" to a room the moment a socket joins it with AddAll: the earliest a
// broadcast can reach a restored socket.
type hookAdapter struct {
	*adapter.Memory
	armed atomic.Bool
}

func (a *hookAdapter) AddAll(id string, rooms ...string) {
	a.Memory.AddAll(id, rooms...)
	for _, r := range rooms {
		if r == "room" && a.armed.CompareAndSwap(true, false) {
			_ = a.Broadcast(mustEvent("live", "L"), adapter.BroadcastOptions{Rooms: []string{"room"}})
		}
	}
}

func mustEvent(name string, args ...any) *parser.Packet {
	p, err := eventPacket("/", name, args)
	if err != nil {
		panic(err)
	}
	return p
}

// A broadcast made while a session is being restored reaches the client after the packets it
// missed, so the client's offset ends on the newest packet (an older one would make the next
// recovery send the broadcast again).
func TestRecoveryLiveBroadcastAfterMissed(t *testing.T) {
	var hook *hookAdapter
	io, url := newServer(t, Options{
		ConnectionStateRecovery: &RecoveryOptions{MaxDisconnectionDuration: 5 * time.Second},
		Adapter: func(nsp adapter.Namespace) adapter.Adapter {
			a := &hookAdapter{Memory: adapter.NewMemory(nsp)}
			if nsp.Name() == "/" {
				hook = a
			}
			return a
		},
	})
	conns := connected(io.Of("/"))
	c := dial(t, url, clienttest.Options{})
	s := recv(t, conns)
	s.Join("room")
	_ = s.Emit("first", 1)
	wait(t, c, "first")
	discon := make(chan string, 1)
	s.OnDisconnect(func(r string) { discon <- r })
	c.CloseTransport()
	recv(t, discon)
	_ = io.To("room").Emit("missed", "M")

	hook.armed.Store(true)
	c2 := dial(t, url, clienttest.Options{RecoverPID: c.PID(), RecoverOffset: c.Offset()})
	recv(t, conns)
	if !c2.Recovered() {
		t.Fatal("not recovered")
	}
	live, err := c2.WaitEvent(ctxT(t), "live")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c2, "missed")
	var raw []json.RawMessage
	var liveOffset string
	_ = json.Unmarshal(live.Data, &raw)
	_ = json.Unmarshal(raw[len(raw)-1], &liveOffset)
	if got := c2.Offset(); got != liveOffset {
		t.Fatalf("client offset %q after both packets, want the live broadcast's %q: it arrived before the missed packet", got, liveOffset)
	}
	if n := c2.Pending("live") + c2.Pending("missed"); n != 0 {
		t.Fatalf("%d duplicate packets", n)
	}
}
