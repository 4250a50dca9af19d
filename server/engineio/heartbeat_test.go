package engineio

import (
	"math/rand"

	"github.com/gobwas/ws"
	"testing"
	"time"
)

// The heap keeps its order and every session's index through random
// schedules, reschedules and cancels.
func TestHeartbeatHeap(t *testing.T) {
	var h heartbeats
	defer func() {
		h.mu.Lock()
		if h.timer != nil {
			h.timer.Stop()
		}
		h.mu.Unlock()
	}()
	conns := make([]*Conn, 200)
	for i := range conns {
		conns[i] = &Conn{}
	}
	base := time.Now().Add(time.Hour)
	rng := rand.New(rand.NewSource(1))
	for step := 0; step < 5000; step++ {
		c := conns[rng.Intn(len(conns))]
		if rng.Intn(3) == 0 {
			h.cancel(c)
		} else {
			h.schedule(c, base.Add(time.Duration(rng.Intn(100000))*time.Millisecond))
		}
		if step%100 != 0 {
			continue
		}
		h.mu.Lock()
		for i, e := range h.q {
			if int(e.c.hbIdx) != i+1 {
				t.Fatalf("step %d: entry %d has index %d", step, i, e.c.hbIdx)
			}
			if i > 0 && h.q[(i-1)/2].at > e.at {
				t.Fatalf("step %d: heap order broken at %d", step, i)
			}
		}
		if len(h.q) > 0 && h.armed != h.q[0].at {
			t.Fatalf("step %d: timer set for %d, earliest %d", step, h.armed, h.q[0].at)
		}
		h.mu.Unlock()
	}
	for _, c := range conns {
		h.cancel(c)
	}
	if h.scheduled() != 0 || h.armed != 0 {
		t.Fatalf("%d left, armed %d", h.scheduled(), h.armed)
	}
}

// Many sessions on the shared scheduler: all are pinged on time, the ones
// that answer stay, the ones that do not close with "ping timeout", and the
// closed ones leave the heap.
func TestSharedHeartbeatManySessions(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 60 * time.Millisecond, PingTimeout: 150 * time.Millisecond}, false)
	const n = 30
	var clients []*wsClient
	var conns []*Conn
	for i := 0; i < n; i++ {
		c := ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, c.readText())
		clients = append(clients, c)
		conns = append(conns, ts.conn())
	}
	// the even ones answer every ping; the odd ones never answer
	pings := make(chan int, n)
	for i := 0; i < n; i += 2 {
		c := clients[i]
		go func() {
			k := 0
			defer func() { pings <- k }()
			for {
				f, err := c.read()
				if err != nil || string(f.Payload) != "2" {
					return // the test ended (its clients are closed)
				}
				k++
				if ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpText, true, []byte("3")))) != nil {
					return
				}
			}
		}()
	}
	for i := 1; i < n; i += 2 {
		if ev := ts.rec(conns[i].ID()).waitClose(t, 2*time.Second); ev.reason != ReasonPingTimeout {
			t.Fatalf("session %d: reason %q", i, ev.reason)
		}
	}
	time.Sleep(300 * time.Millisecond) // a few more rounds
	for i := 0; i < n; i += 2 {
		if ts.srv.lookup(conns[i].ID()) == nil {
			t.Fatalf("answering session %d closed", i)
		}
	}
	if got := ts.srv.hb.scheduled(); got != n/2 {
		t.Fatalf("%d heartbeats scheduled, want %d", got, n/2)
	}
	for i := 0; i < n; i += 2 {
		clients[i].conn.Close()
	}
	for i := 0; i < n; i += 2 {
		if k := <-pings; k < 4 {
			t.Errorf("an answering client got %d pings in ~500ms at a 60ms interval", k)
		}
	}
}

// The queue slices a burst grew are kept between bursts (a busy receiver does
// not regrow them every time) and let go at the next heartbeat of an idle session.
func TestQueueSlicesKeptThenTrimmedAtHeartbeat(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 300 * time.Millisecond, PingTimeout: time.Second}, false)
	c := ts.dialWS("EIO=4&transport=websocket")
	parseOpen(t, c.readText())
	conn := ts.conn()
	// hold the writer back (wmu) so that a burst of 20 queues up
	conn.mu.Lock()
	wc := conn.ws
	conn.mu.Unlock()
	wc.wmu.Lock()
	for i := 0; i < 20; i++ {
		_ = conn.Send(Message{Data: []byte("x")})
	}
	wc.wmu.Unlock()
	for i := 0; i < 20; i++ {
		c.readText()
	}
	kept := func() int {
		time.Sleep(20 * time.Millisecond)
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return cap(conn.queue) + cap(conn.spare)
	}
	if n := kept(); n < 19 {
		t.Fatalf("queue slices of capacity %d kept after a burst of 20", n)
	}
	if f, err := c.read(); err != nil || string(f.Payload) != "2" { // the ping
		t.Fatalf("ping: %v %q", err, f.Payload)
	}
	if n := kept(); n > 4 {
		t.Fatalf("queue slices of capacity %d kept after the heartbeat of an idle session", n)
	}
}
