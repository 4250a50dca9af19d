package socketio

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/parser"
)

// Limits bound what one client may cost the server at the Socket.IO layer (the
// Engine.IO layer bounds connections and handshakes per address: see
// engineio.Limits). A zero value takes the default; a negative one turns the
// limit off. Every refusal is logged once per offender and LogWindow (Warn),
// never once per packet.
type Limits struct {
	// EventsPerSecond and EventBurst size each socket's token bucket for the
	// EVENT packets it sends (defaults 100/s, burst 200). Events over the budget
	// are dropped before any handler sees them (acks included: a dropped event
	// is never answered). A socket that gets more than EventBurst events
	// dropped within EventAbuseWindow (default 10s) is disconnected: the client
	// receives a CONNECT_ERROR {"message":"Rate limit exceeded","data":{"code":"RATE_LIMITED"}}
	// (socket.io-client emits it as connect_error and does not reconnect that
	// socket) followed by a DISCONNECT, and the server-side disconnect reason is
	// ReasonRateLimited.
	EventsPerSecond  float64
	EventBurst       int
	EventAbuseWindow time.Duration
	// RateLimitedAck, when set, builds the arguments that answer the ack of an
	// event dropped by the rate limit, so that a client waiting on it gets a
	// clear refusal instead of a timeout. Nil leaves such acks unanswered.
	RateLimitedAck func(event string) []any
	// MaxRoomsPerSocket caps the rooms a socket is in, its own room not
	// counted (default 1000). Socket.Join past it joins none of the rooms and
	// returns ErrTooManyRooms.
	MaxRoomsPerSocket int
	// MaxNamespacesPerClient caps the namespaces one engine connection is
	// connected (or connecting) to at once (default 32). A CONNECT past it is
	// answered with CONNECT_ERROR {"message":"Too many namespaces"}.
	MaxNamespacesPerClient int
	// MaxNamespaces caps the namespaces of the server; a dynamic namespace
	// (OfMatch) past it is not created and the CONNECT is answered as an
	// invalid namespace (default 10000). Static namespaces (Of) are not capped.
	MaxNamespaces int
	// MaxAttachments bounds the binary attachments one BINARY_EVENT or
	// BINARY_ACK may declare (default parser.DefaultMaxAttachments, 10). A
	// packet declaring more closes the connection at once ("parse error"),
	// before any attachment is read.
	MaxAttachments int
	// AttachmentTimeout bounds how long a binary packet may wait for its next
	// attachment (default 10s). A client that declares attachments and does
	// not send them is closed with "parse error" once it passes, so a pending
	// packet is never kept forever. Each attachment that arrives restarts it.
	AttachmentTimeout time.Duration
	// MaxNestingDepth bounds the nesting of arrays and objects in a packet's
	// JSON payload (default parser.DefaultMaxDepth, 64). A deeper packet
	// closes the connection ("parse error") before it is decoded.
	MaxNestingDepth int
	// MaxPendingAcks caps the acknowledgements one socket may owe the server
	// (EmitWithAck and broadcasts with ack, default 1000). Past it
	// Socket.EmitWithAck fails at once with ErrTooManyPendingAcks, and a
	// broadcast with ack is sent to that socket without waiting for its reply
	// (its callback sees the reply as missing), so a client that never answers
	// cannot grow the table without bound.
	MaxPendingAcks int
	// LogWindow is how often one offender is logged at most (default 1 minute).
	LogWindow time.Duration
}

// DefaultAttachmentTimeout is Limits.AttachmentTimeout when unset.
const DefaultAttachmentTimeout = 10 * time.Second

// DefaultMaxPendingAcks is Limits.MaxPendingAcks when unset.
const DefaultMaxPendingAcks = 1000

// ErrTooManyPendingAcks is returned by Socket.EmitWithAck when the socket already owes
// Limits.MaxPendingAcks acknowledgements.
var ErrTooManyPendingAcks = errors.New("socketio: too many acknowledgements pending for this socket")

// ReasonRateLimited is the disconnect reason of a socket disconnected for
// sending events faster than Limits allow.
const ReasonRateLimited = "rate limit exceeded"

// ErrTooManyRooms is returned by Socket.Join past Limits.MaxRoomsPerSocket.
var ErrTooManyRooms = errors.New("socketio: too many rooms for this socket")

func (l Limits) withDefaults() Limits {
	if l.EventsPerSecond == 0 {
		l.EventsPerSecond = 100
	}
	if l.EventBurst <= 0 {
		l.EventBurst = 200
	}
	if l.EventAbuseWindow <= 0 {
		l.EventAbuseWindow = 10 * time.Second
	}
	if l.MaxRoomsPerSocket == 0 {
		l.MaxRoomsPerSocket = 1000
	}
	if l.MaxNamespacesPerClient == 0 {
		l.MaxNamespacesPerClient = 32
	}
	if l.MaxNamespaces == 0 {
		l.MaxNamespaces = 10_000
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = parser.DefaultMaxAttachments
	}
	if l.AttachmentTimeout == 0 {
		l.AttachmentTimeout = DefaultAttachmentTimeout
	}
	if l.MaxNestingDepth == 0 {
		l.MaxNestingDepth = parser.DefaultMaxDepth
	}
	if l.MaxPendingAcks == 0 {
		l.MaxPendingAcks = DefaultMaxPendingAcks
	}
	if l.LogWindow <= 0 {
		l.LogWindow = time.Minute
	}
	return l
}

// offenders remembers when each offender was last logged, so that a flood
// produces one log line per window. Entries older than the window are swept.
type offenders struct {
	window time.Duration
	log    *slog.Logger

	mu     sync.Mutex
	last   map[string]time.Time
	counts map[string]int // refusals since the last line
	swept  time.Time
}

// report counts one refusal of key and logs it if key was not logged within the window.
func (o *offenders) report(key, msg string, attrs ...any) {
	now := time.Now()
	o.mu.Lock()
	if o.last == nil {
		o.last = make(map[string]time.Time)
		o.counts = make(map[string]int)
	}
	if now.Sub(o.swept) > o.window {
		o.swept = now
		for k, t := range o.last {
			if now.Sub(t) > o.window {
				delete(o.last, k)
				delete(o.counts, k)
			}
		}
	}
	o.counts[key]++
	n := o.counts[key]
	t, seen := o.last[key]
	logIt := !seen || now.Sub(t) >= o.window
	if logIt {
		o.last[key] = now
		o.counts[key] = 0
	}
	o.mu.Unlock()
	if logIt {
		o.log.Warn(msg, append([]any{"refused", n, "window", o.window}, attrs...)...)
	}
}

// eventBudget is a socket's event token bucket. It is only touched by the
// engine reader of the socket's connection (onPacket), one packet at a time.
type eventBudget struct {
	tokens  float64
	last    time.Time
	window  time.Time // start of the current abuse window
	dropped int       // events dropped in it
	kicked  bool
}

// allowEvent spends one token for an EVENT packet; false drops the packet.
// Sustained abuse disconnects the socket.
func (s *Socket) allowEvent(p *parser.Packet) bool {
	lim := &s.nsp.srv.limits
	if lim.EventsPerSecond < 0 {
		return true
	}
	b := &s.budget
	now := time.Now()
	burst := float64(lim.EventBurst)
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens += now.Sub(b.last).Seconds() * lim.EventsPerSecond
		if b.tokens > burst {
			b.tokens = burst
		}
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	if b.kicked {
		return false
	}
	if now.Sub(b.window) > lim.EventAbuseWindow {
		b.window, b.dropped = now, 0
	}
	b.dropped++
	s.answerDropped(p)
	s.nsp.srv.offenders.report("events:"+s.address(), "socketio: events dropped by rate limit",
		"nsp", s.nsp.name, "socket", s.id, "address", s.address(),
		"rate", lim.EventsPerSecond, "burst", lim.EventBurst)
	if b.dropped > lim.EventBurst {
		b.kicked = true
		s.nsp.srv.log.Warn("socketio: socket disconnected for sustained event flood", "nsp", s.nsp.name,
			"socket", s.id, "address", s.address(), "dropped", b.dropped, "window", lim.EventAbuseWindow)
		go s.kickRateLimited()
	}
	return false
}

// kickRateLimited tells the client why and disconnects the socket.
func (s *Socket) kickRateLimited() {
	if !s.isConnected() {
		return
	}
	s.client.sendConnectError(s.nsp.name, "Rate limit exceeded", map[string]any{"code": "RATE_LIMITED"})
	s.client.sendPacket(&parser.Packet{Type: parser.Disconnect, Nsp: s.nsp.name, ID: parser.NoID})
	s.onClose(ReasonRateLimited)
}

// checkRooms enforces MaxRoomsPerSocket for a Join of rooms.
func (s *Socket) checkRooms(rooms []string) error {
	max := s.nsp.srv.limits.MaxRoomsPerSocket
	if max < 0 || len(rooms) == 0 {
		return nil
	}
	current := s.nsp.adapter.SocketRooms(s.id)
	in := make(map[string]struct{}, len(current)+len(rooms))
	for _, r := range current {
		in[r] = struct{}{}
	}
	n := len(in)
	if _, own := in[s.id]; own {
		n--
	}
	for _, r := range rooms {
		if _, ok := in[r]; !ok && r != s.id {
			in[r] = struct{}{}
			n++
		}
	}
	if n <= max {
		return nil
	}
	s.nsp.srv.offenders.report("rooms:"+s.id, "socketio: join refused by room limit",
		"nsp", s.nsp.name, "socket", s.id, "address", s.address(), "rooms", n, "limit", max)
	return ErrTooManyRooms
}

// admitNamespace enforces MaxNamespacesPerClient for a CONNECT to name; false
// when refused (the CONNECT_ERROR has been sent). Called with c.mu not held.
func (c *client) admitNamespace(name string) bool {
	max := c.srv.limits.MaxNamespacesPerClient
	if max < 0 {
		return true
	}
	c.mu.Lock()
	n := len(c.sockets) + len(c.connecting)
	c.mu.Unlock()
	if n < max {
		return true
	}
	addr := c.conn.ClientAddress()
	c.srv.offenders.report("nsps:"+c.conn.ID(), "socketio: connect refused by namespace limit",
		"conn", c.conn.ID(), "address", addr, "nsp", name, "limit", max)
	c.sendConnectError(name, "Too many namespaces", nil)
	return false
}

// roomForDynamicNamespace reports whether a new dynamic namespace may be created (MaxNamespaces).
func (s *Server) roomForDynamicNamespace(name string) bool {
	max := s.limits.MaxNamespaces
	if max < 0 {
		return true
	}
	s.mu.RLock()
	n := len(s.nsps)
	s.mu.RUnlock()
	if n < max {
		return true
	}
	s.offenders.report("dynamic-namespaces", "socketio: dynamic namespace refused by namespace limit",
		"nsp", name, "namespaces", n, "limit", max)
	return false
}

// answerDropped answers the ack of an event refused by the rate limit, when
// Limits.RateLimitedAck asks for it.
func (s *Socket) answerDropped(p *parser.Packet) {
	build := s.nsp.srv.limits.RateLimitedAck
	if build == nil || p.ID == parser.NoID {
		return
	}
	name := ""
	var args []json.RawMessage
	if json.Unmarshal(p.Data, &args) == nil && len(args) > 0 {
		_ = json.Unmarshal(args[0], &name)
	}
	data, atts, err := parser.MarshalArgs(build(name)...)
	if err != nil {
		s.nsp.srv.log.Error("socketio: encoding a rate-limited ack failed", "socket", s.id, "err", err)
		return
	}
	ap := newPacket(parser.Ack, s.nsp.name, data, atts)
	ap.ID = p.ID
	s.client.sendPacket(ap)
}

// awaitAttachments (re)starts the attachment timer after a message that left a
// binary packet waiting for attachments. Only OnMessage calls it.
func (c *client) awaitAttachments() {
	d := c.srv.limits.AttachmentTimeout
	if d < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attTimer != nil {
		c.attTimer.Stop()
	}
	c.attGen++
	c.attArmed = true
	if c.closed {
		return
	}
	gen := c.attGen
	c.attTimer = time.AfterFunc(d, func() { c.attachmentsOverdue(gen) })
}

// attachmentsDone stops the attachment timer once no packet waits any more.
// attArmed is only touched by OnMessage, so the common case takes no lock.
func (c *client) attachmentsDone() {
	if !c.attArmed {
		return
	}
	c.attArmed = false
	c.mu.Lock()
	if c.attTimer != nil {
		c.attTimer.Stop()
		c.attTimer = nil
	}
	c.attGen++
	c.mu.Unlock()
}

// attachmentsOverdue closes a connection whose binary packet did not get its
// next attachment within Limits.AttachmentTimeout.
func (c *client) attachmentsOverdue(gen uint64) {
	c.mu.Lock()
	stale := gen != c.attGen || c.closed
	if !stale {
		c.attTimer = nil
	}
	c.mu.Unlock()
	if stale {
		return
	}
	addr := c.conn.RemoteAddr()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	c.srv.offenders.report("attachments:"+addr, "socketio: binary packet closed: attachments did not arrive in time",
		"conn", c.conn.ID(), "address", addr, "timeout", c.srv.limits.AttachmentTimeout)
	c.conn.Close(engineio.ReasonParseError)
}

// ackRoomLocked reports whether the socket may owe one more acknowledgement
// (Limits.MaxPendingAcks). Called with s.mu held.
func (s *Socket) ackRoomLocked() bool {
	max := s.nsp.srv.limits.MaxPendingAcks
	return max < 0 || len(s.acks) < max
}

// reportAckLimit logs a refused ack registration (once per socket and window).
func (s *Socket) reportAckLimit() {
	s.nsp.srv.offenders.report("acks:"+s.id, "socketio: ack not registered: too many pending acknowledgements",
		"nsp", s.nsp.name, "socket", s.id, "address", s.address(), "limit", s.nsp.srv.limits.MaxPendingAcks)
}
