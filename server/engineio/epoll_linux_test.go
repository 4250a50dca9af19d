//go:build linux

package engineio

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// epollRegistrations counts the sockets registered with the pollers.
func epollRegistrations() int {
	n := 0
	for _, p := range pollers {
		p.mu.Lock()
		n += len(p.conns)
		p.mu.Unlock()
	}
	return n
}

// waitRegistrations waits until at most want sockets are registered.
func waitRegistrations(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for epollRegistrations() > want {
		if time.Now().After(deadline) {
			t.Fatalf("%d epoll registrations left, want ≤ %d", epollRegistrations(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maskedFrame is the wire bytes of one masked client frame.
func maskedFrame(op ws.OpCode, fin bool, p []byte) []byte {
	var b bytes.Buffer
	f := ws.MaskFrame(ws.NewFrame(op, fin, append([]byte(nil), p...)))
	if err := ws.WriteFrame(&b, f); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestEpollIsDefault(t *testing.T) {
	if NewServer(Options{ReadMode: ReadModeGoroutine}).ReadMode() != ReadModeGoroutine {
		t.Fatal("ReadModeGoroutine not kept")
	}
	if NewServer(Options{}).ReadMode() != ReadModeEpoll {
		t.Fatal("default is not epoll on Linux")
	}
}

// Frames split at every byte, and messages fragmented over several frames
// split across reads, come out whole and in order.
func TestEpollPartialFrames(t *testing.T) {
	ts := newTestServer(t, Options{ReadMode: ReadModeEpoll}, true)
	c := ts.dialWS("EIO=4&transport=websocket")
	parseOpen(t, c.readText())
	ts.conn()

	// one small frame, one byte per write
	for _, b := range maskedFrame(ws.OpText, true, []byte("4hello")) {
		if _, err := c.conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if got := c.readText(); got != "4hello" {
		t.Fatalf("echo %q", got)
	}

	// a 200 KB frame (64-bit length) written in uneven chunks, with a ping
	// frame and a small message in the same writes
	big := "4" + strings.Repeat("x", 200<<10)
	var wire []byte
	wire = append(wire, maskedFrame(ws.OpText, true, []byte(big))...)
	wire = append(wire, maskedFrame(ws.OpPing, true, []byte("p"))...)
	wire = append(wire, maskedFrame(ws.OpText, true, []byte("4after"))...)
	for i := 0; i < len(wire); {
		n := 1 + (i*7919)%9000
		if i+n > len(wire) {
			n = len(wire) - i
		}
		if _, err := c.conn.Write(wire[i : i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	// the pong is written at once, the echoes through the queue: any order between them
	var texts []string
	pong := false
	for len(texts) < 2 {
		f, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode == ws.OpPong {
			pong = string(f.Payload) == "p"
			continue
		}
		texts = append(texts, string(f.Payload))
	}
	if !pong || texts[0] != big || texts[1] != "4after" {
		t.Fatalf("pong %v, echoes of %d and %d bytes", pong, len(texts[0]), len(texts[1]))
	}

	// a message in three fragments, a ping between them, split mid-header
	wire = wire[:0]
	wire = append(wire, maskedFrame(ws.OpText, false, []byte("4fr"))...)
	wire = append(wire, maskedFrame(ws.OpPing, true, nil)...)
	wire = append(wire, maskedFrame(ws.OpContinuation, false, []byte("ag"))...)
	wire = append(wire, maskedFrame(ws.OpContinuation, true, []byte("ments"))...)
	for _, cut := range []int{1, 7, 12, 13, 20} {
		if cut > len(wire) {
			break
		}
		c.conn.Write(wire[:cut])
		wire = wire[cut:]
		time.Sleep(5 * time.Millisecond)
	}
	c.conn.Write(wire)
	if f, err := c.read(); err != nil || f.Header.OpCode != ws.OpPong {
		t.Fatalf("pong between fragments: %v %v", err, f.Header.OpCode)
	}
	if got := c.readText(); got != "4fragments" {
		t.Fatalf("fragmented echo %q", got)
	}
}

// Bytes pipelined behind the upgrade request (read by the HTTP server with
// the request) are handled before the socket's own.
func TestEpollEarlyBytes(t *testing.T) {
	ts := newTestServer(t, Options{ReadMode: ReadModeEpoll}, true)
	addr := strings.TrimPrefix(ts.http.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	wire := append([]byte(req), maskedFrame(ws.OpText, true, []byte("4early"))...)
	// half of a second frame too: the rest comes later, from the socket
	second := maskedFrame(ws.OpText, true, []byte("4second"))
	wire = append(wire, second[:5]...)
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	rec := ts.rec(ts.conn().ID())
	if m := rec.waitMsg(t); string(m.Data) != "early" {
		t.Fatalf("first message %q", m.Data)
	}
	time.Sleep(20 * time.Millisecond)
	conn.Write(second[5:])
	if m := rec.waitMsg(t); string(m.Data) != "second" {
		t.Fatalf("second message %q", m.Data)
	}
}

// A peer that sends half a frame and stalls holds no goroutine and does not
// delay anyone else; its message completes when the rest arrives.
func TestEpollStalledPeerDoesNotBlockOthers(t *testing.T) {
	ts := newTestServer(t, Options{ReadMode: ReadModeEpoll}, true)
	const stalled = 20
	var stall []*wsClient
	var frames [][]byte
	for i := 0; i < stalled; i++ {
		c := ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, c.readText())
		ts.conn()
		f := maskedFrame(ws.OpText, true, []byte(fmt.Sprintf("4stalled %d %s", i, strings.Repeat("y", 3000))))
		cut := 1 + i*97%len(f) // some mid-header, most mid-payload
		if _, err := c.conn.Write(f[:cut]); err != nil {
			t.Fatal(err)
		}
		stall = append(stall, c)
		frames = append(frames, f[cut:])
	}
	time.Sleep(50 * time.Millisecond)
	g := runtime.NumGoroutine()

	// every poller is free: others are served at once, many times over
	others := make([]*wsClient, 8)
	for i := range others {
		others[i] = ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, others[i].readText())
		ts.conn()
	}
	start := time.Now()
	for round := 0; round < 20; round++ {
		for i, c := range others {
			msg := fmt.Sprintf("4r%d-%d", round, i)
			c.sendText(msg)
			if got := c.readText(); got != msg {
				t.Fatalf("echo %q, want %q", got, msg)
			}
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("160 round trips took %v beside stalled peers", d)
	}
	// the stalled sessions hold no goroutine while they wait (bounded, not exact: timers may run)
	if d := runtime.NumGoroutine() - g; d > stalled/2 {
		t.Errorf("%d more goroutines with %d stalled peers", d, stalled)
	}
	for i, c := range stall {
		if _, err := c.conn.Write(frames[i]); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("4stalled %d", i)
		if got := c.readText(); !strings.HasPrefix(got, want) || len(got) != len(want)+3001 {
			t.Fatalf("stalled echo %.20q (%d bytes)", got, len(got))
		}
	}
}

// Idle websocket sessions hold no goroutine each.
func TestEpollIdleSessionsHaveNoGoroutine(t *testing.T) {
	ts := newTestServer(t, Options{ReadMode: ReadModeEpoll, PingInterval: time.Minute}, false)
	runtime.GC()
	g0 := runtime.NumGoroutine()
	const n = 300
	clients := make([]*wsClient, n)
	conns := make([]*Conn, n)
	for i := range clients {
		clients[i] = ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, clients[i].readText())
		conns[i] = ts.conn()
	}
	time.Sleep(100 * time.Millisecond)
	if ts.srv.Count() != n {
		t.Fatalf("%d sessions", ts.srv.Count())
	}
	// the test's own clients hold no goroutines either; allow the pollers and a little slack
	if d := runtime.NumGoroutine() - g0; d > 10 {
		t.Fatalf("%d goroutines for %d idle sessions", d, n)
	}
	if r := epollRegistrations(); r < n {
		t.Fatalf("%d epoll registrations for %d sessions", r, n)
	}
	// and they still work
	clients[n/2].sendText("4still here")
	if m := ts.rec(conns[n/2].ID()).waitMsg(t); string(m.Data) != "still here" {
		t.Fatalf("message %q", m.Data)
	}
	for _, c := range clients {
		c.conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.Count() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ts.srv.Count() != 0 {
		t.Fatalf("%d sessions left after the clients closed", ts.srv.Count())
	}
	waitRegistrations(t, 0)
}

// Sessions closed from both sides at once, while messages flow, upgrades
// racing with closes: every session ends once and no registration is left.
func TestEpollCloseAndUpgradeRaces(t *testing.T) {
	ts := newTestServer(t, Options{ReadMode: ReadModeEpoll, PingInterval: 40 * time.Millisecond,
		PingTimeout: 200 * time.Millisecond, UpgradeTimeout: 300 * time.Millisecond}, true)
	base := epollRegistrations()
	const n = 24
	var wg sync.WaitGroup
	recs := make(chan *recorder, 2*n)
	for i := 0; i < n; i++ {
		c := ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, c.readText())
		conn := ts.conn()
		recs <- ts.rec(conn.ID())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpText, true, []byte("4m"))))
			}
			switch i % 4 {
			case 0:
				conn.Close(ReasonForcedClose) // server side, while the client writes
			case 1:
				c.conn.Close() // client side, while the server echoes
			case 2:
				go conn.Close(ReasonForcedClose)
				c.conn.Close()
			case 3:
				_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
				conn.Close(ReasonForcedClose)
			}
		}()
	}
	// upgrades: probe then close, probe and complete while the server closes, abandoned probes
	for i := 0; i < n; i++ {
		sid := ts.pollingSession()
		conn := ts.conn()
		recs <- ts.rec(sid)
		c := ts.dialWS("EIO=4&transport=websocket&sid=" + sid)
		wg.Add(1)
		send := func(s string) { // the server may have closed already: errors are expected
			_ = ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewFrame(ws.OpText, true, []byte(s))))
		}
		go func() {
			defer wg.Done()
			send("2probe")
			switch i % 3 {
			case 0:
				c.conn.Close()
				conn.Close(ReasonForcedClose)
			case 1:
				go conn.Close(ReasonForcedClose)
				send("5")
				send("4x")
			case 2:
				// abandoned: the upgrade timeout closes the probe, then the session ends
				time.Sleep(10 * time.Millisecond)
				conn.Close(ReasonForcedClose)
			}
		}()
	}
	wg.Wait()
	close(recs)
	for r := range recs {
		r.waitClose(t, 5*time.Second)
	}
	// every session ended, so every server-side socket was closed and forgotten
	waitRegistrations(t, base)
}

// SendNow writes on the caller when nothing is being written, and keeps the
// order with Send in every case (a writer running, packets queued, polling).
func TestSendNowOrder(t *testing.T) {
	for _, mode := range []ReadMode{ReadModeEpoll, ReadModeGoroutine} {
		ts := newTestServer(t, Options{ReadMode: mode}, false)
		c := ts.dialWS("EIO=4&transport=websocket")
		parseOpen(t, c.readText())
		conn := ts.conn()
		want := []string{}
		for i := 0; i < 200; i++ {
			m := fmt.Sprintf("m%d", i)
			var err error
			if i%3 == 0 {
				err = conn.SendNow(Message{Data: []byte(m)})
			} else {
				err = conn.Send(Message{Data: []byte(m)})
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, "4"+m)
		}
		for i, w := range want {
			if got := c.readText(); got != w {
				t.Fatalf("%v: message %d is %q, want %q", mode, i, got, w)
			}
		}
		conn.Close(ReasonForcedClose)
		if err := conn.SendNow(Message{Data: []byte("late")}); err != ErrClosed {
			t.Fatalf("SendNow after Close: %v", err)
		}
	}
	// polling: SendNow queues like Send
	ts := newTestServer(t, Options{}, false)
	sid := ts.pollingSession()
	conn := ts.conn()
	_ = conn.SendNow(Message{Data: []byte("a")})
	_ = conn.Send(Message{Data: []byte("b")})
	if res := ts.do("GET", "EIO=4&transport=polling&sid="+sid, ""); res.body != "4a\x1e4b" {
		t.Fatalf("poll %q", res.body)
	}
}

// A websocket over TLS is read by a goroutine (its bytes on the socket are
// TLS records), and works as usual.
func TestEpollTLSFallsBackToGoroutine(t *testing.T) {
	srv := NewServer(Options{Path: "/engine.io/", ReadMode: ReadModeEpoll})
	srv.OnConnection(func(c *Conn) { c.SetHandler(newRecorder(true)) })
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	before := epollRegistrations()
	d := ws.Dialer{TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	c := dialWSWith(t, d, "wss"+strings.TrimPrefix(hs.URL, "https")+"/engine.io/?EIO=4&transport=websocket")
	parseOpen(t, c.readText())
	c.sendText("4over tls")
	if got := c.readText(); got != "4over tls" {
		t.Fatalf("echo %q", got)
	}
	if r := epollRegistrations(); r != before {
		t.Fatalf("a TLS websocket was registered with epoll (%d → %d)", before, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Close(ctx)
}
