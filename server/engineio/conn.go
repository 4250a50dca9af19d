package engineio

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // Close called: the close packet is on its way
	stateClosed
)

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
type Conn struct {
	id      string
	srv     *Server
	hs      *handshakeData
	handler Handler // set during OnConnection, read-only afterwards

	deliverMu    sync.Mutex  // serializes Handler calls
	open         atomic.Bool // false once closing: incoming messages are dropped
	tooBigLogged atomic.Bool // a message over maxPayload was logged (once per session)

	mu          sync.Mutex
	closeReason string
	transport   string
	queue       []packet // outgoing, bounded by Options.MaxQueuedPackets
	queuedBytes int      // bytes of the message data in queue, bounded by Options.MaxQueuedBytes
	spare       []packet // the writer's last batch, reused as the next queue

	poll *pollWait // pending long-polling GET

	ws    *wsConn // active websocket (after handshake or upgrade)
	probe *wsConn // websocket being probed for an upgrade

	upgradeTimer *time.Timer
	closeTimer   *time.Timer
	hbDue        time.Time // when the heartbeat is due; detects stale firings

	hbIdx       int32 // position+1 in the server's heartbeat heap, 0 = none (under srv.hb.mu)
	state       connState
	started     bool // handshake answered: the writer may run
	posting     bool // a POST is being read
	writing     bool // a writer goroutine is draining queue to ws
	probed      bool // probe answered: pending/new GETs are answered with noop
	upgraded    bool
	hbOn        bool // a heartbeat is scheduled
	waitingPong bool
}

// pollWait is a GET parked until packets are ready; ch is closed once pkts is set.
type pollWait struct {
	ch     chan struct{}
	pkts   []packet
	after  func() // run once the response is written
	refuse bool   // answer 400: the session moved to websocket meanwhile
}

// ID returns the session id.
func (c *Conn) ID() string { return c.id }

// Handshake returns a copy of what the handshake request carried (a new one
// on every call: the session keeps it packed).
func (c *Conn) Handshake() *Handshake {
	if c.hs == nil {
		return nil
	}
	return c.hs.handshake()
}

// RemoteAddr is the handshake's peer address (host:port); Handshake().RemoteAddr without the copy.
func (c *Conn) RemoteAddr() string { return c.remoteAddr() }

// ClientAddress is Handshake().Address without the copy: Options.ClientAddress
// of the handshake request, by default the host of RemoteAddr.
func (c *Conn) ClientAddress() string {
	if c.hs == nil {
		return ""
	}
	return c.hs.address
}

// Server returns the server the session belongs to.
func (c *Conn) Server() *Server { return c.srv }

// Transport returns "polling" or "websocket" (changes on upgrade).
func (c *Conn) Transport() string {
	c.mu.Lock()
	t := c.transport
	c.mu.Unlock()
	return t
}

// SetHandler sets the receiver of messages and of the close event. Call it
// inside OnConnection: no message is delivered before OnConnection returns.
func (c *Conn) SetHandler(h Handler) {
	if h == nil {
		h = nopHandler{}
	}
	c.deliverMu.Lock()
	c.handler = h
	c.deliverMu.Unlock()
}

// Send queues msgs atomically: they are written together, in order, with
// nothing interleaved. When the queue bound would be crossed the client is
// too slow: it is closed with "transport error" and ErrQueueFull is returned.
func (c *Conn) Send(msgs ...Message) error { return c.send(msgs, nil) }

// SendNow is Send for a reply someone waits for (an ack): when the session's
// websocket has nothing being written, the calling goroutine writes the queue
// itself (one batch, under the write deadline) instead of starting the writer
// goroutine, which saves a goroutine hand-off on the reply's way out. Whatever
// is queued behind that batch goes to a writer goroutine as usual. On
// long-polling, or while a writer runs, it is Send.
func (c *Conn) SendNow(msgs ...Message) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.transport != TransportWebSocket || !c.started || c.writing || len(c.queue) > 0 || !c.roomForLocked(msgs) {
		c.mu.Unlock()
		return c.send(msgs, nil)
	}
	c.appendLocked(msgs)
	c.writing = true
	wc := c.ws
	c.mu.Unlock()
	c.drain(wc, 1)
	return nil
}

// send queues msgs; sent, if not nil, goes with the last of them.
func (c *Conn) send(msgs []Message, sent chan struct{}) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if !c.roomForLocked(msgs) {
		n, b := len(c.queue), c.queuedBytes
		c.mu.Unlock()
		c.srv.log.Warn("engineio: slow client closed: outgoing queue full", "sid", c.id, "remote", c.remoteAddr(),
			"queuedPackets", n, "queuedBytes", b, "maxPackets", c.srv.opts.MaxQueuedPackets, "maxBytes", c.srv.opts.MaxQueuedBytes)
		c.finish(ReasonTransportError, ErrQueueFull)
		return ErrQueueFull
	}
	c.appendLocked(msgs)
	if sent != nil {
		c.queue[len(c.queue)-1].sent = sent
	}
	c.flushLocked()
	c.mu.Unlock()
	return nil
}

// SendFlushed is Send that also reports when msgs have left the queue: the
// returned channel is closed once they were handed to the transport (on
// websocket, written to the socket; on long-polling, part of a response that
// was written) or dropped because the session ended. On error the channel is
// nil. It lets a caller order a packet before later ones in separate writes,
// as Node's write callbacks do (socketio sends its CONNECT answer this way).
func (c *Conn) SendFlushed(msgs ...Message) (<-chan struct{}, error) {
	if len(msgs) == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch, nil
	}
	sent := make(chan struct{})
	if err := c.send(msgs, sent); err != nil {
		return nil, err
	}
	return sent, nil
}

// SendVolatile queues msgs only if the transport can take them right now (a GET
// is pending, or the websocket has no backlog: nothing queued behind the batch
// being written); otherwise they are dropped (false). Node drops while a single
// websocket send is in flight; we drop only behind a backlog, because our writer
// batches and a client that keeps up would otherwise lose packets at random.
func (c *Conn) SendVolatile(msgs ...Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || !c.started || !c.roomForLocked(msgs) {
		return false
	}
	switch {
	case c.transport == TransportPolling && c.poll == nil:
		return false
	case c.transport == TransportWebSocket && c.writing && len(c.queue) > 0:
		return false
	}
	c.appendLocked(msgs)
	c.flushLocked()
	return true
}

// roomForLocked reports whether msgs fit in the queue's bounds (packets and bytes). An empty queue
// takes any batch: a single message is bounded by MaxPayload, not by MaxQueuedBytes.
func (c *Conn) roomForLocked(msgs []Message) bool {
	if len(c.queue)+len(msgs) > c.srv.opts.MaxQueuedPackets {
		return false
	}
	if len(c.queue) == 0 {
		return true
	}
	n := c.queuedBytes
	for _, m := range msgs {
		n += len(m.Data)
	}
	return n <= c.srv.opts.MaxQueuedBytes
}

// appendLocked queues msgs and counts their bytes.
func (c *Conn) appendLocked(msgs []Message) {
	for _, m := range msgs {
		c.queue = append(c.queue, packet{typ: typeMessage, data: m.Data, binary: m.Binary})
		c.queuedBytes += len(m.Data)
	}
}

// takeQueueLocked hands the whole queue over (to a poll response or the websocket writer).
func (c *Conn) takeQueueLocked() []packet {
	q := c.queue
	c.queue, c.queuedBytes = nil, 0
	return q
}

// remoteAddr is the client address of the handshake, for logs.
func (c *Conn) remoteAddr() string {
	if c.hs == nil {
		return ""
	}
	return c.hs.remoteAddr
}

// Close sends the close packet (after what is already queued), then closes the
// session; OnClose receives reason.
func (c *Conn) Close(reason string) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.state = stateClosing
	c.closeReason = reason
	c.open.Store(false)
	c.stopHeartbeatLocked()
	closing := func() { c.finish(reason, nil) }
	c.closeTimer = time.AfterFunc(c.srv.closeTimeout(), closing)
	if c.transport == TransportWebSocket {
		c.queue = append(c.queue, packet{typ: typeClose}) // past the bound on purpose
		c.flushLocked()                                   // the writer finishes the session once drained
	} else if c.poll != nil && c.started {
		pkts := append(c.takeQueueLocked(), packet{typ: typeClose})
		c.answerPollLocked(pkts, closing)
	}
	// else: the next GET receives the queue and the close packet (see servePoll).
	c.mu.Unlock()
}

// flushLocked hands queued packets to the transport: the pending GET, or a
// websocket writer goroutine started on demand.
func (c *Conn) flushLocked() {
	if !c.started || len(c.queue) == 0 {
		return
	}
	switch c.transport {
	case TransportPolling:
		if c.poll != nil {
			c.answerPollLocked(c.takeQueueLocked(), nil)
		}
	case TransportWebSocket:
		if !c.writing && c.state != stateClosed {
			c.writing = true
			go c.writeLoop(c.ws)
		}
	}
}

func (c *Conn) answerPollLocked(pkts []packet, after func()) {
	pw := c.poll
	c.poll = nil
	pw.pkts = pkts
	pw.after = after
	close(pw.ch)
}

func (c *Conn) stopTimerLocked(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}

// finish closes the session now: timers stopped, queue dropped, transports
// closed, then OnClose(reason, err) once, after any OnMessage in progress.
func (c *Conn) finish(reason string, err error) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if c.state == stateClosing && reason != ReasonServerShutdown {
		reason, err = c.closeReason, nil // a Close in progress names the reason
	}
	c.state = stateClosed
	c.open.Store(false)
	c.stopHeartbeatLocked()
	c.stopTimerLocked(&c.closeTimer)
	c.stopTimerLocked(&c.upgradeTimer)
	signalSent(c.takeQueueLocked())
	c.spare = nil
	if c.poll != nil {
		// Node answers a pending GET with noop when the client closed, else with close.
		t := typeClose
		if reason == ReasonTransportClose {
			t = typeNoop
		}
		c.answerPollLocked([]packet{{typ: t}}, nil)
	} else if reason == ReasonTransportClose && c.transport == TransportPolling {
		// The client sent its close packet in a POST while its GET may still be
		// in flight: that GET gets the noop Node would have answered it with.
		c.srv.tombs.add(c.id)
	}
	ws, probe := c.ws, c.probe
	c.probe = nil
	c.mu.Unlock()

	c.srv.remove(c)
	if probe != nil {
		probe.closeWith(closeNormal)
	}
	if ws != nil {
		if errors.Is(err, ErrQueueFull) {
			// A slow consumer: its writer is most likely stuck in a write, and the
			// close frame waits for it (closeLockWait). finish runs here on the
			// goroutine of whoever sent (a broadcast loop), which must not wait.
			go ws.closeWith(closeNormal)
		} else {
			ws.closeWith(closeNormal)
		}
	}
	if err != nil {
		c.srv.log.Debug("engineio: session closed", "sid", c.id, "reason", reason, "err", err)
	} else {
		c.srv.log.Debug("engineio: session closed", "sid", c.id, "reason", reason)
	}
	// OnClose runs on its own goroutine so that finish can be called from
	// anywhere (including inside OnMessage) without deadlocking on deliverMu.
	go func() {
		defer c.srv.active.Done()
		c.deliverMu.Lock()
		defer c.deliverMu.Unlock()
		c.handler.OnClose(c, reason, err)
	}()
}

// deliver passes one message to the handler unless the session is closing.
func (c *Conn) deliver(data []byte, binary bool) {
	c.deliverMu.Lock()
	if c.open.Load() {
		c.handler.OnMessage(c, data, binary)
	}
	c.deliverMu.Unlock()
}

// onPacket handles one incoming packet of the active transport. It reports
// false when the session was closed by it.
func (c *Conn) onPacket(p packet) bool {
	if !c.open.Load() {
		return true // Node ignores packets received while closing
	}
	switch p.typ {
	case typeMessage:
		c.deliver(p.data, p.binary)
	case typePong:
		c.onPong()
	case typePing:
		c.finish(ReasonTransportError, ErrHeartbeatOrder)
		return false
	case typeClose:
		c.finish(ReasonTransportClose, nil)
		return false
	}
	// open, upgrade and noop are ignored on an established transport, as Node does
	return true
}

// Heartbeat: the server's heartbeat scheduler (heartbeat.go) fires each session
// after PingInterval to send a ping, then after PingTimeout to check the pong.

func (c *Conn) startHeartbeatLocked() {
	c.hbDue = time.Now().Add(c.srv.opts.PingInterval)
	c.hbOn = true
	c.srv.hb.schedule(c, c.hbDue)
}

func (c *Conn) stopHeartbeatLocked() {
	if c.hbOn {
		c.hbOn = false
		c.srv.hb.cancel(c)
	}
}

func (c *Conn) onHeartbeat() {
	c.mu.Lock()
	if c.state != stateOpen || !c.hbOn {
		c.mu.Unlock() // closed, or the heartbeat stopped meanwhile
		return
	}
	if time.Now().Before(c.hbDue) {
		// Rescheduled meanwhile (a pong), or fired a hair early: make sure it stays scheduled.
		c.srv.hb.schedule(c, c.hbDue)
		c.mu.Unlock()
		return
	}
	if c.waitingPong {
		c.mu.Unlock()
		c.finish(ReasonPingTimeout, nil)
		return
	}
	if len(c.queue) >= c.srv.opts.MaxQueuedPackets {
		c.mu.Unlock()
		c.finish(ReasonTransportError, ErrQueueFull)
		return
	}
	c.waitingPong = true
	if !c.writing && len(c.queue) == 0 {
		// Idle since the last heartbeat, most likely: let the queue slices a burst
		// grew go (a ping needs one packet).
		c.queue, c.spare = nil, nil
	}
	c.queue = append(c.queue, packet{typ: typePing})
	c.hbDue = pongDeadline(c.hbDue, time.Now(), c.srv.opts.PingTimeout)
	c.srv.hb.schedule(c, c.hbDue)
	c.flushLocked()
	c.mu.Unlock()
}

// pongDeadline is when the pong for a ping scheduled at due and sent at now
// must have arrived. It counts from due, not from now: on a busy machine the
// timer fires late, and a session must not outlive the pingInterval +
// pingTimeout after which the client itself gives up (engine.io-client's own
// timer), so a request arriving later finds it closed, as the official suite
// checks. A ping sent so late that little of that is left still gets a quarter
// of the timeout, so that a stalled server does not drop every client at once.
func pongDeadline(due, now time.Time, timeout time.Duration) time.Time {
	deadline := due.Add(timeout)
	if floor := now.Add(timeout / 4); deadline.Before(floor) {
		return floor
	}
	return deadline
}

// pongOverdueLocked reports a pong deadline that has passed although the
// timer has not run yet (timers fire late on a busy machine): a request
// arriving then must find the session closed, as it would have been.
func (c *Conn) pongOverdueLocked() bool {
	return c.state == stateOpen && c.waitingPong && c.hbOn && !time.Now().Before(c.hbDue)
}

func (c *Conn) onPong() {
	c.mu.Lock()
	if c.state == stateOpen && c.waitingPong && c.hbOn {
		c.waitingPong = false
		c.hbDue = time.Now().Add(c.srv.opts.PingInterval)
		c.srv.hb.schedule(c, c.hbDue)
	}
	c.mu.Unlock()
}
