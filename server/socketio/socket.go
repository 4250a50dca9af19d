package socketio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/parser"
)

// Handshake is the handshake of a socket: headers, query, auth (the CONNECT payload), address, time,
// url, issued (unix ms), secure, xdomain. It serializes as Node's socket.handshake.
type Handshake = adapter.Handshake

// ErrDisconnected is returned by emits on a socket that is no longer connected, and by EmitWithAck
// when the socket disconnects before the client answered.
var ErrDisconnected = errors.New("socketio: socket has been disconnected")

// ReservedEventError is returned when emitting an event name reserved by the protocol.
type ReservedEventError struct{ Event string }

func (e *ReservedEventError) Error() string {
	return `socketio: "` + e.Event + `" is a reserved event name`
}

var reservedEvents = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

func isReserved(ev string) bool {
	for _, r := range reservedEvents {
		if r == ev {
			return true
		}
	}
	return false
}

const (
	stateConnecting uint8 = iota
	stateConnected
	stateClosed
)

// Socket is one client connected to one namespace.
type Socket struct {
	nsp       *Namespace
	client    *client
	id        string
	pid       string
	handshake *Handshake
	recovered bool
	// recoveryOffset is the offset the client presented for a restored session (namespace.connect).
	recoveryOffset string

	mu              sync.Mutex
	state           uint8
	handlers        map[string][]func(*Event)
	anyHandlers     []func(string, *Event)
	onDisconnecting []func(string)
	onDisconnect    []func(string)
	acks            map[int64]*pendingAck
	data            any
	budget          eventBudget // events per second (limits.go); engine reader only

	// Gate: until the CONNECT answer and, on recovery, the missed packets are queued, packets the
	// adapter delivers to the socket (broadcasts joined at once with the rooms) are held here, so
	// that the client receives CONNECT, then what it missed, then the live packets, in that order.
	gateOpen atomic.Bool
	gateMu   sync.Mutex
	held     []*adapter.Encoded

	// Inbox: packets for the handlers, drained in order by a goroutine that exists only while there
	// is work.
	inMu    sync.Mutex
	queue   []task
	running bool
	space   chan struct{} // closed when the queue shrinks; created only when a writer waits
}

type task struct {
	p   *parser.Packet
	run func()
}

type pendingAck struct {
	fn    func(data json.RawMessage, atts [][]byte, err error)
	timer *time.Timer
}

func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newSocket(n *Namespace, c *client, auth json.RawMessage, session *adapter.Session) *Socket {
	s := &Socket{nsp: n, client: c}
	if session != nil {
		s.id, s.pid, s.data, s.recovered = session.SID, session.PID, session.Data, true
	} else {
		s.id = newID()
		if n.recovery() > 0 {
			s.pid = newID()
		}
	}
	s.handshake = buildHandshake(c.conn.Handshake(), auth)
	return s
}

// startAfresh turns a socket built from a restored session into a new one (RecoveryVetter declined
// it). Called before the socket is registered, on the connecting goroutine.
func (s *Socket) startAfresh() {
	s.id, s.recovered, s.recoveryOffset = newID(), false, ""
	s.pid = ""
	if s.nsp.recovery() > 0 {
		s.pid = newID()
	}
}

func buildHandshake(h *engineio.Handshake, auth json.RawMessage) *Handshake {
	hs := &Handshake{Auth: auth}
	if h == nil {
		return hs
	}
	hs.Headers = h.Headers
	hs.Query = h.Query
	hs.URL = h.URL
	hs.Secure = h.Secure
	hs.Address = h.Address // the client's address (behind trusted proxies: the forwarded one)
	if hs.Address == "" {
		hs.Address = h.RemoteAddr
		if host, _, err := net.SplitHostPort(h.RemoteAddr); err == nil {
			hs.Address = host
		}
	}
	hs.XDomain = h.Headers.Get("Origin") != ""
	t := h.Time
	if t.IsZero() {
		t = time.Now()
	}
	hs.Time = t.Format("Mon Jan 02 2006 15:04:05 GMT-0700 (MST)")
	hs.Issued = t.UnixMilli()
	return hs
}

// ID returns the socket id (public; also the name of the socket's own room).
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the handshake details. Do not modify.
func (s *Socket) Handshake() *Handshake { return s.handshake }

// Conn returns the engine connection (shared by the sockets of one client across namespaces).
func (s *Socket) Conn() *engineio.Conn { return s.client.conn }

// Recovered reports whether the socket's state was restored by connection state recovery.
func (s *Socket) Recovered() bool { return s.recovered }

// Connected reports whether the socket is connected to its namespace.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateConnected
}

func (s *Socket) isConnected() bool { return s.Connected() }

// SetData stores an application value on the socket (visible to FetchSockets and kept on recovery).
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// Data returns the value stored with SetData.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// On registers a handler for an event from the client. Handlers of one socket run one at a time, in
// the order the events arrived.
func (s *Socket) On(event string, fn func(*Event)) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string][]func(*Event), 4)
	}
	s.handlers[event] = append(s.handlers[event], fn)
	s.mu.Unlock()
}

// Off removes every handler of event.
func (s *Socket) Off(event string) {
	s.mu.Lock()
	delete(s.handlers, event)
	s.mu.Unlock()
}

// OnAny registers a handler called for every event, before the event's own handlers.
func (s *Socket) OnAny(fn func(event string, ev *Event)) {
	s.mu.Lock()
	s.anyHandlers = append(s.anyHandlers, fn)
	s.mu.Unlock()
}

// OnDisconnecting registers a handler called when the socket is about to leave; Rooms is still readable.
func (s *Socket) OnDisconnecting(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnecting = append(s.onDisconnecting, fn)
	s.mu.Unlock()
}

// OnDisconnect registers a handler called once the socket has left its namespace, with Node's reason.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnect = append(s.onDisconnect, fn)
	s.mu.Unlock()
}

// eventPacket builds an EVENT (or BINARY_EVENT) packet for event and args.
func eventPacket(nsp, event string, args []any) (*parser.Packet, error) {
	if isReserved(event) {
		return nil, &ReservedEventError{Event: event}
	}
	all := make([]any, 0, len(args)+1)
	all = append(all, event)
	all = append(all, args...)
	data, atts, err := parser.MarshalArgs(all...)
	if err != nil {
		return nil, err
	}
	return newPacket(parser.Event, nsp, data, atts), nil
}

const connectType = parser.Connect

// newPacket builds a packet, switching EVENT/ACK to their binary types when there are attachments.
func newPacket(t parser.Type, nsp string, data json.RawMessage, atts [][]byte) *parser.Packet {
	if len(atts) > 0 {
		switch t {
		case parser.Event:
			t = parser.BinaryEvent
		case parser.Ack:
			t = parser.BinaryAck
		}
	}
	return &parser.Packet{Type: t, Nsp: nsp, ID: parser.NoID, Data: data, Attachments: atts}
}

// Emit sends an event to this client. Arguments are marshalled with encoding/json; []byte values
// anywhere become binary attachments.
func (s *Socket) Emit(event string, args ...any) error { return s.emit(event, args, false) }

// EmitVolatile is Emit, but the packet is dropped if the transport is not writable right now.
func (s *Socket) EmitVolatile(event string, args ...any) error { return s.emit(event, args, true) }

func (s *Socket) emit(event string, args []any, volatile bool) error {
	p, err := eventPacket(s.nsp.name, event, args)
	if err != nil {
		return err
	}
	if !s.isConnected() {
		return ErrDisconnected
	}
	if s.nsp.recovery() > 0 {
		// Through the adapter so that the packet gets an offset and is kept for recovery, as Node does;
		// Local, since the socket lives on this node (a cluster adapter need not publish it).
		return s.nsp.adapter.Broadcast(p, adapter.BroadcastOptions{Rooms: []string{s.id}, Flags: adapter.Flags{Volatile: volatile, Local: true}})
	}
	s.client.send(adapter.Encode(p), volatile)
	return nil
}

// EmitWithAck sends an event and waits for the client's acknowledgement: its arguments (binary
// values as base64 JSON strings), or ctx's error (a deadline is the timeout), or ErrDisconnected.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	p, err := eventPacket(s.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	type result struct {
		args []json.RawMessage
		err  error
	}
	ch := make(chan result, 1)
	p.ID = (*adapterNsp)(s.nsp).NextAckID()
	if err := s.registerAck(p.ID, 0, func(data json.RawMessage, atts [][]byte, err error) {
		if err != nil {
			ch <- result{err: err}
			return
		}
		reply, err := repliesFromPacket(data, atts)
		ch <- result{reply, err}
	}); err != nil {
		return nil, err
	}
	s.client.send(adapter.Encode(p), false)
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		s.dropAck(p.ID)
		return nil, ctx.Err()
	}
}

// registerAck adds an entry to the ack table: ErrDisconnected if the socket is closed,
// ErrTooManyPendingAcks past Limits.MaxPendingAcks. With timeout > 0 the entry expires (without
// calling fn) so unanswered acks never accumulate.
func (s *Socket) registerAck(id int64, timeout time.Duration, fn func(json.RawMessage, [][]byte, error)) error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return ErrDisconnected
	}
	if !s.ackRoomLocked() {
		s.mu.Unlock()
		s.reportAckLimit()
		return ErrTooManyPendingAcks
	}
	defer s.mu.Unlock()
	if s.acks == nil {
		s.acks = make(map[int64]*pendingAck, 1)
	}
	pa := &pendingAck{fn: fn}
	if timeout > 0 {
		pa.timer = time.AfterFunc(timeout, func() { s.dropAck(id) })
	}
	s.acks[id] = pa
	return nil
}

func (s *Socket) dropAck(id int64) {
	s.mu.Lock()
	pa := s.acks[id]
	delete(s.acks, id)
	if len(s.acks) == 0 {
		s.acks = nil
	}
	s.mu.Unlock()
	if pa != nil && pa.timer != nil {
		pa.timer.Stop()
	}
}

// pendingAcks is the size of the ack table (tests).
func (s *Socket) pendingAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

func (s *Socket) onAck(p *parser.Packet) {
	s.mu.Lock()
	pa := s.acks[p.ID]
	delete(s.acks, p.ID)
	if len(s.acks) == 0 {
		s.acks = nil
	}
	s.mu.Unlock()
	if pa == nil {
		return // unknown or expired ack id: Node ignores it too
	}
	if pa.timer != nil {
		pa.timer.Stop()
	}
	pa.fn(p.Data, p.Attachments, nil)
}

// Join adds the socket to rooms. Past Limits.MaxRoomsPerSocket it joins none of them and returns
// ErrTooManyRooms.
func (s *Socket) Join(rooms ...string) error {
	if err := s.checkRooms(rooms); err != nil {
		return err
	}
	s.nsp.adapter.AddAll(s.id, rooms...)
	return nil
}

// Leave removes the socket from rooms.
func (s *Socket) Leave(rooms ...string) {
	for _, r := range rooms {
		s.nsp.adapter.Del(s.id, r)
	}
}

// Rooms returns the rooms the socket is in (its own id included).
func (s *Socket) Rooms() []string { return s.nsp.adapter.SocketRooms(s.id) }

// To selects the sockets in any of rooms, except this one.
func (s *Socket) To(rooms ...string) *BroadcastOperator { return s.Broadcast().To(rooms...) }

// In is To.
func (s *Socket) In(rooms ...string) *BroadcastOperator { return s.To(rooms...) }

// Except selects every socket but this one and those in any of rooms.
func (s *Socket) Except(rooms ...string) *BroadcastOperator { return s.Broadcast().Except(rooms...) }

// Broadcast selects every socket of the namespace except this one.
func (s *Socket) Broadcast() *BroadcastOperator {
	return &BroadcastOperator{nsp: s.nsp, except: []string{s.id}}
}

// Disconnect makes the socket leave its namespace ("server namespace disconnect"); with close, every
// socket of the client leaves and the engine connection is closed.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	s.disconnect(false)
}

// maxHeld bounds the packets held by the gate of one socket; past it the client does not keep up
// (its CONNECT answer is not even written) and is closed, as the engine does on a full queue.
const maxHeld = 1024

// write sends a packet from the adapter (a broadcast) to the client, or holds it while the gate is
// closed. The gate is closed only for the moment between queuing the CONNECT answer and its write, so
// a volatile packet is held too (the client is connected from its point of view); when the hold is
// full a volatile packet is dropped, any other closes the connection.
func (s *Socket) write(p *adapter.Encoded, volatile bool) {
	if !s.gateOpen.Load() {
		s.gateMu.Lock()
		if !s.gateOpen.Load() {
			overflow := !volatile && len(s.held) >= maxHeld
			if len(s.held) < maxHeld {
				s.held = append(s.held, p)
			}
			s.gateMu.Unlock()
			if overflow {
				s.nsp.srv.log.Warn("socketio: too many packets before the CONNECT answer was written", "nsp", s.nsp.name, "socket", s.id)
				s.client.conn.Close("transport error")
			}
			return
		}
		s.gateMu.Unlock()
	}
	s.client.send(p, volatile)
}

// openGate queues the missed packets of a recovered session, then the packets held meanwhile
// (minus those already among the missed ones: a broadcast stored before the session was restored
// but delivered after the socket joined its rooms), and opens the gate. The CONNECT answer has been
// queued before.
func (s *Socket) openGate(missed []*parser.Packet) {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	var sent [][]byte
	for _, p := range missed {
		enc := adapter.Encode(p)
		s.client.send(enc, false)
		sent = append(sent, enc.Text)
	}
	for _, p := range s.held {
		if !slices.ContainsFunc(sent, func(t []byte) bool { return bytes.Equal(t, p.Text) }) {
			s.client.send(p, false)
		}
	}
	s.held = nil
	s.gateOpen.Store(true)
}

func (s *Socket) disconnect(bool) {
	if !s.isConnected() {
		return
	}
	// Closed first, then the packet: a client that closes its transport as soon as it reads the
	// DISCONNECT must not race this socket into the reason "transport close".
	s.onClose("server namespace disconnect")
	s.write(adapter.Encode(&parser.Packet{Type: parser.Disconnect, Nsp: s.nsp.name, ID: parser.NoID}), false)
}

// onPacket is called on the engine reader for a packet of this socket's namespace.
func (s *Socket) onPacket(p *parser.Packet) {
	switch p.Type {
	case parser.Event, parser.BinaryEvent:
		if !s.allowEvent(p) {
			return // over the event rate limit (limits.go)
		}
		s.enqueue(task{p: p})
	case parser.Ack, parser.BinaryAck:
		s.onAck(p)
	case parser.Disconnect:
		s.onClose("client namespace disconnect")
	}
}

var recoverableReasons = map[string]bool{
	"transport error": true, "transport close": true, "forced close": true,
	"ping timeout": true, "server shutting down": true, "forced server close": true,
}

// onClose starts the disconnection: the socket stops being connected at once, pending acks fail, and
// the disconnecting handlers, room cleanup and disconnect handlers run on the handler goroutine after
// the events already queued.
func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	prev := s.state
	s.state = stateClosed
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	if prev == stateClosed {
		return
	}
	// The namespace slot of the client is free at once, so the client may CONNECT again.
	s.client.remove(s)
	if prev == stateConnecting {
		return
	}
	for _, pa := range acks {
		if pa.timer != nil {
			pa.timer.Stop()
		}
		pa.fn(nil, nil, ErrDisconnected)
	}
	s.push(task{run: func() { s.finishClose(reason) }}, true)
}

func (s *Socket) finishClose(reason string) {
	s.mu.Lock()
	disconnecting := s.onDisconnecting
	disconnect := s.onDisconnect
	data := s.data
	s.mu.Unlock()
	for _, h := range disconnecting {
		s.safely(func() { h(reason) })
	}
	if s.pid != "" && recoverableReasons[reason] {
		s.nsp.adapter.PersistSession(&adapter.Session{SID: s.id, PID: s.pid, Rooms: s.Rooms(), Data: data})
	}
	s.nsp.adapter.DelAll(s.id)
	s.nsp.remove(s)
	for _, h := range disconnect {
		s.safely(func() { h(reason) })
	}
}

func (s *Socket) enqueue(t task) { s.push(t, false) }

// push appends a task to the inbox, waiting while it is full unless force, and starts the drain
// goroutine if none runs.
func (s *Socket) push(t task, force bool) {
	limit := s.nsp.srv.opts.InboxSize
	s.inMu.Lock()
	for !force && len(s.queue) >= limit {
		if s.space == nil {
			s.space = make(chan struct{})
		}
		ch := s.space
		s.inMu.Unlock()
		<-ch
		s.inMu.Lock()
	}
	s.queue = append(s.queue, t)
	start := !s.running
	s.running = true
	s.inMu.Unlock()
	if start {
		go s.drain()
	}
}

func (s *Socket) drain() {
	for {
		s.inMu.Lock()
		if len(s.queue) == 0 {
			s.running = false
			s.queue = nil
			s.inMu.Unlock()
			return
		}
		t := s.queue[0]
		s.queue[0] = task{}
		s.queue = s.queue[1:]
		if s.space != nil {
			close(s.space)
			s.space = nil
		}
		s.inMu.Unlock()
		if t.run != nil {
			s.safely(t.run)
		} else {
			s.safely(func() { s.onEvent(t.p) })
		}
	}
}

// safely runs a handler, logging a panic instead of taking the server down.
func (s *Socket) safely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.nsp.srv.log.Error("socketio: handler panic", "nsp", s.nsp.name, "socket", s.id, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

func (s *Socket) onEvent(p *parser.Packet) {
	args, err := parser.ReconstructArgs(p.Data, p.Attachments)
	if err != nil || len(args) == 0 {
		s.nsp.srv.log.Debug("socketio: bad event payload", "socket", s.id, "err", err)
		return
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		// Node allows a number as event name; keep its text form.
		name = strings.TrimSpace(string(args[0]))
	}
	ev := &Event{name: name, args: args[1:], atts: p.Attachments, socket: s}
	if p.ID != parser.NoID {
		id := p.ID
		ev.ack = func(data json.RawMessage, atts [][]byte) {
			ap := newPacket(parser.Ack, s.nsp.name, data, atts)
			ap.ID = id
			s.client.sendPacket(ap)
		}
	}
	s.mu.Lock()
	anys := s.anyHandlers
	hs := s.handlers[name]
	s.mu.Unlock()
	for _, h := range anys {
		h(name, ev)
	}
	for _, h := range hs {
		h(ev)
	}
}

// adapterSocket is the adapter's view of a Socket (adapter.Socket), kept off the public API.
type adapterSocket Socket

func (a *adapterSocket) ID() string { return a.id }

func (a *adapterSocket) WriteEncoded(p *adapter.Encoded, volatile bool) {
	(*Socket)(a).write(p, volatile)
}

func (a *adapterSocket) RegisterAck(id int64, timeout time.Duration, fn adapter.AckFunc) {
	s := (*Socket)(a)
	// Refused (socket gone, or MaxPendingAcks reached: logged by registerAck): the packet still goes
	// out, and the broadcast counts this socket's reply as missing when its timeout ends.
	_ = s.registerAck(id, timeout, func(data json.RawMessage, atts [][]byte, err error) {
		if err != nil {
			return // the broadcast's own timer accounts for missing replies
		}
		reply, err := repliesFromPacket(data, atts)
		if err != nil {
			s.nsp.srv.log.Debug("socketio: bad ack payload", "socket", s.id, "err", err)
			return
		}
		fn(reply)
	})
}

func (a *adapterSocket) Join(rooms ...string)  { _ = (*Socket)(a).Join(rooms...) } // refusal logged by checkRooms
func (a *adapterSocket) Leave(rooms ...string) { (*Socket)(a).Leave(rooms...) }
func (a *adapterSocket) Disconnect(close bool) { (*Socket)(a).Disconnect(close) }

func (a *adapterSocket) Details() adapter.SocketDetails {
	s := (*Socket)(a)
	return adapter.SocketDetails{ID: s.id, Handshake: *s.handshake, Rooms: s.Rooms(), Data: s.Data()}
}
