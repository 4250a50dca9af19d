package engineio

import (
	"testing"
	"time"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosedCh(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: SendFlushed signal not closed", what)
	}
}

// On long-polling the signal waits for a response that carries the message.
func TestSendFlushedPolling(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: time.Minute, PingTimeout: time.Minute}, false)
	sid := ts.pollingSession()
	c := ts.conn()
	sent, err := c.SendFlushed(Message{Data: []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if isClosed(sent) {
		t.Fatal("signalled before any GET took the message")
	}
	if res := ts.do("GET", "EIO=4&transport=polling&sid="+sid, ""); res.body != "4first" {
		t.Fatalf("poll: %q", res.body)
	}
	waitClosedCh(t, sent, "after the GET")
}

// On websocket the signal follows the write of the message to the socket.
func TestSendFlushedWebSocket(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: time.Minute, PingTimeout: time.Minute}, false)
	wc := ts.dialWS("EIO=4&transport=websocket")
	parseOpen(t, wc.readText())
	c := ts.conn()
	sent, err := c.SendFlushed(Message{Data: []byte("a")}, Message{Data: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	waitClosedCh(t, sent, "websocket")
	if a, b := wc.readText(), wc.readText(); a != "4a" || b != "4b" {
		t.Fatalf("frames %q %q", a, b)
	}
}

// A message that never leaves (the session ends first) still ends the wait; a closed session
// refuses at once.
func TestSendFlushedSessionEnds(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: time.Minute, PingTimeout: time.Minute}, false)
	ts.pollingSession()
	c := ts.conn()
	sent, err := c.SendFlushed(Message{Data: []byte("never polled")})
	if err != nil {
		t.Fatal(err)
	}
	c.finish(ReasonTransportError, nil)
	waitClosedCh(t, sent, "session ended")
	if ch, err := c.SendFlushed(Message{Data: []byte("x")}); err == nil || ch != nil {
		t.Fatalf("closed session: %v %v", ch, err)
	}
}

// A ping timer that fires late (a busy machine) does not stretch the session's life: the pong is
// due PingTimeout after the ping was scheduled, as the client's own timer counts, so a poll after
// pingInterval+pingTimeout finds the session closed (engine.io test-suite "closes the session upon
// ping timeout").
func TestLatePingKeepsPongDeadline(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: time.Minute, PingTimeout: 200 * time.Millisecond}, false)
	sid := ts.pollingSession()
	c := ts.conn()
	c.mu.Lock()
	c.hbDue = time.Now().Add(-120 * time.Millisecond) // the ping was due 120ms ago
	c.mu.Unlock()
	c.onHeartbeat()
	time.Sleep(130 * time.Millisecond)
	if res := ts.do("GET", "EIO=4&transport=polling&sid="+sid, ""); res.status != 400 {
		t.Fatalf("poll after the pong deadline: %d %q, want 400", res.status, res.body)
	}
	if ev := ts.rec(sid).waitClose(t, time.Second); ev.reason != ReasonPingTimeout {
		t.Fatalf("close reason %q", ev.reason)
	}
}

func TestPongDeadline(t *testing.T) {
	due := time.Unix(1000, 0)
	if got := pongDeadline(due, due.Add(50*time.Millisecond), 200*time.Millisecond); !got.Equal(due.Add(200 * time.Millisecond)) {
		t.Fatalf("late by 50ms: %v", got.Sub(due))
	}
	if got := pongDeadline(due, due.Add(time.Second), 200*time.Millisecond); !got.Equal(due.Add(time.Second + 50*time.Millisecond)) {
		t.Fatalf("stalled past the timeout: %v", got.Sub(due))
	}
}
