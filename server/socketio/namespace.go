package socketio

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/parser"
)

// Middleware runs for every socket connecting to a namespace, in the order added, before the
// connection handlers. A non-nil error rejects the connection with a CONNECT_ERROR whose message is
// the error text; return a *ConnectError to send data along.
type Middleware func(s *Socket) error

// ConnectError rejects a connection with a message and optional data (any JSON value), which the
// client sees as the connect_error's message and data.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// connectFlushTimeout bounds how long the connection handlers wait for the CONNECT answer to be
// written (see Namespace.connect). It only matters for a client that does not read.
const connectFlushTimeout = time.Second

// connectWritePause separates the CONNECT answer from what the connection handlers send next (see
// Namespace.connect). Only the new socket's own handlers wait; nothing else is delayed.
const connectWritePause = time.Millisecond

// Namespace is a communication channel multiplexed over the engine connections.
type Namespace struct {
	srv     *Server
	name    string
	adapter adapter.Adapter
	ackIDs  atomic.Int64

	mu          sync.RWMutex
	sockets     map[string]*Socket
	middlewares []Middleware
	vetters     []RecoveryVetter
	onConn      []func(*Socket)
	serverSide  map[string][]func(*Event)
}

func newNamespace(s *Server, name string) *Namespace {
	n := &Namespace{srv: s, name: name, sockets: make(map[string]*Socket)}
	n.adapter = s.opts.Adapter((*adapterNsp)(n))
	if err := n.adapter.Init(); err != nil {
		s.log.Error("socketio: adapter init", "nsp", name, "err", err)
	}
	return n
}

// Name returns the namespace name, e.g. "/" or "/chat".
func (n *Namespace) Name() string { return n.name }

// Server returns the server the namespace belongs to.
func (n *Namespace) Server() *Server { return n.srv }

// Adapter returns the namespace's adapter.
func (n *Namespace) Adapter() adapter.Adapter { return n.adapter }

// Use appends a middleware.
func (n *Namespace) Use(fn Middleware) {
	n.mu.Lock()
	n.middlewares = append(n.middlewares, fn)
	n.mu.Unlock()
}

// RecoveryVetter decides whether a socket may take up the session connection state recovery
// restored for it. It runs after the middlewares (when they run for recovered sessions), so the
// socket's data is what they set; rooms are the rooms the session would rejoin (its own id
// included). Returning false starts the socket afresh, as if the session had expired: a new id, no
// rooms, no missed packets, Recovered() false — and the middlewares run if they were skipped.
type RecoveryVetter func(s *Socket, rooms []string) bool

// VetRecovery adds a RecoveryVetter. A restored session is used only when every vetter accepts it.
// Node's socket.io has no such hook: its recovered sockets rejoin their rooms unchecked. An
// application whose rooms stand for permissions (a member kicked while disconnected) needs one,
// because the missed packets of those rooms are delivered before any connection handler runs.
func (n *Namespace) VetRecovery(fn RecoveryVetter) {
	n.mu.Lock()
	n.vetters = append(n.vetters, fn)
	n.mu.Unlock()
}

// acceptRecovery runs the vetters for a socket restored from session.
func (n *Namespace) acceptRecovery(s *Socket, session *adapter.Session) bool {
	n.mu.RLock()
	vetters := n.vetters
	n.mu.RUnlock()
	for _, v := range vetters {
		if !v(s, append([]string(nil), session.Rooms...)) {
			return false
		}
	}
	return true
}

// OnConnection registers a handler called for every socket that connects (and passed the middlewares).
// It runs on the socket's handler goroutine, before any event of that socket.
func (n *Namespace) OnConnection(fn func(*Socket)) {
	n.mu.Lock()
	n.onConn = append(n.onConn, fn)
	n.mu.Unlock()
}

// Sockets returns the sockets connected to this node.
func (n *Namespace) Sockets() []*Socket { return n.localSockets() }

// Socket returns the local socket with that id, or nil.
func (n *Namespace) Socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

func (n *Namespace) localSockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		out = append(out, s)
	}
	return out
}

func (n *Namespace) recovery() time.Duration {
	if r := n.srv.opts.ConnectionStateRecovery; r != nil {
		return r.MaxDisconnectionDuration
	}
	return 0
}

func (n *Namespace) runMiddlewares(s *Socket) error {
	n.mu.RLock()
	mws := n.middlewares
	n.mu.RUnlock()
	for _, mw := range mws {
		if err := mw(s); err != nil {
			return err
		}
	}
	return nil
}

// connect registers a socket that passed the middlewares, answers the CONNECT and schedules the
// connection handlers.
func (n *Namespace) connect(s *Socket, session *adapter.Session) {
	s.mu.Lock()
	if s.state != stateConnecting { // the client went away during the middlewares
		s.mu.Unlock()
		return
	}
	s.state = stateConnected
	// Registered under s.mu so that a concurrent onClose (which takes s.mu) cleans up after us.
	n.mu.Lock()
	n.sockets[s.id] = s
	handlers := n.onConn
	n.mu.Unlock()
	rooms := []string{s.id}
	if session != nil {
		for _, r := range session.Rooms {
			if r != s.id {
				rooms = append(rooms, r)
			}
		}
	}
	n.adapter.AddAll(s.id, rooms...)
	s.mu.Unlock()
	if session != nil {
		// What was broadcast between RestoreSession and the AddAll above (the middlewares and
		// vetters ran meanwhile) reached neither the missed packets nor the socket: fetch it now
		// that the rooms are joined. openGate drops what then also arrives live.
		if log, ok := n.adapter.(adapter.RecoveryLog); ok {
			from := s.recoveryOffset
			if k := len(session.MissedPackets); k > 0 {
				if o := adapter.LastOffset(session.MissedPackets[k-1]); o != "" {
					from = o
				}
			}
			if more, ok := log.PacketsAfter(from, rooms); ok {
				session.MissedPackets = append(session.MissedPackets, more...)
			}
		}
	}

	// The CONNECT answer is sent by the first task of the socket's inbox, so that the connection
	// handlers are in place before any event the client sends once it sees the CONNECT.
	s.enqueue(task{run: func() {
		payload := struct {
			SID string `json:"sid"`
			PID string `json:"pid,omitempty"`
		}{s.id, s.pid}
		data, _ := json.Marshal(payload)
		enc := adapter.Encode(newPacket(connectType, n.name, data, nil))
		// Node writes the CONNECT packet to the transport before the connection handlers run, and
		// what they emit waits for that write to complete, so the CONNECT leaves in a write of its
		// own. Clients that handle several frames of one read synchronously (ws 8.5 in the official
		// socket.io-protocol test-suite) depend on it. So the handlers wait until the engine reports
		// the CONNECT written (bounded, for a client that does not read); broadcasts to the socket
		// meanwhile are held by its gate.
		if sent, err := s.client.conn.SendFlushed(engineio.Message{Data: enc.Text}); err == nil {
			t := time.NewTimer(connectFlushTimeout)
			select {
			case <-sent:
				// Handed to the kernel is not yet read by the peer: on loopback the next write
				// can still land in the same read of the client. Node's write callback runs a
				// loop turn later; a short pause gives the same separation (measured: without
				// it 13 of 20 connects of the official suite's pattern saw both frames at once).
				time.Sleep(connectWritePause)
			case <-t.C:
			}
			t.Stop()
		}
		var missed []*parser.Packet
		if session != nil {
			missed = session.MissedPackets
		}
		s.openGate(missed)
		for _, h := range handlers {
			if !s.isConnected() {
				return
			}
			h(s)
		}
	}})
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

// waitIdle waits until no socket is left or ctx ends.
func (n *Namespace) waitIdle(ctx context.Context) {
	for {
		n.mu.RLock()
		left := len(n.sockets)
		n.mu.RUnlock()
		if left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// OnServerSideEmit registers a handler for an event sent by another node with ServerSideEmit.
// Event.Socket is nil; Event.Ack answers a ServerSideEmitWithAck.
func (n *Namespace) OnServerSideEmit(event string, fn func(*Event)) {
	n.mu.Lock()
	if n.serverSide == nil {
		n.serverSide = make(map[string][]func(*Event))
	}
	n.serverSide[event] = append(n.serverSide[event], fn)
	n.mu.Unlock()
}

// Operators: see BroadcastOperator.

func (n *Namespace) op() *BroadcastOperator { return &BroadcastOperator{nsp: n} }

// To selects the sockets in any of rooms.
func (n *Namespace) To(rooms ...string) *BroadcastOperator { return n.op().To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) *BroadcastOperator { return n.op().To(rooms...) }

// Except excludes the sockets in any of rooms.
func (n *Namespace) Except(rooms ...string) *BroadcastOperator { return n.op().Except(rooms...) }

// Volatile marks the broadcast volatile.
func (n *Namespace) Volatile() *BroadcastOperator { return n.op().Volatile() }

// Local restricts the broadcast to this node.
func (n *Namespace) Local() *BroadcastOperator { return n.op().Local() }

// Timeout sets the ack timeout of EmitWithAck.
func (n *Namespace) Timeout(d time.Duration) *BroadcastOperator { return n.op().Timeout(d) }

// Emit broadcasts to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error { return n.op().Emit(event, args...) }

// EmitWithAck broadcasts and collects one reply per client.
func (n *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([][]json.RawMessage, error) {
	return n.op().EmitWithAck(ctx, event, args...)
}

// FetchSockets returns every socket of the namespace in the cluster.
func (n *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return n.op().FetchSockets(ctx)
}

// SocketsJoin makes every socket join rooms.
func (n *Namespace) SocketsJoin(rooms ...string) error { return n.op().SocketsJoin(rooms...) }

// SocketsLeave makes every socket leave rooms.
func (n *Namespace) SocketsLeave(rooms ...string) error { return n.op().SocketsLeave(rooms...) }

// DisconnectSockets disconnects every socket.
func (n *Namespace) DisconnectSockets(close bool) error { return n.op().DisconnectSockets(close) }

// ServerSideEmit sends an event to the OnServerSideEmit handlers of the other nodes.
func (n *Namespace) ServerSideEmit(event string, args ...any) error {
	raw, err := serverSideArgs(event, args)
	if err != nil {
		return err
	}
	return n.adapter.ServerSideEmit(raw)
}

// ServerSideEmitWithAck sends an event to the other nodes and returns one reply (its ack arguments)
// per node; ctx bounds the wait (adapter.ErrTimeout with the replies so far).
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([][]json.RawMessage, error) {
	raw, err := serverSideArgs(event, args)
	if err != nil {
		return nil, err
	}
	return n.adapter.ServerSideEmitWithAck(ctx, raw)
}

func serverSideArgs(event string, args []any) ([]json.RawMessage, error) {
	if isReserved(event) {
		return nil, &ReservedEventError{Event: event}
	}
	out := make([]json.RawMessage, 0, len(args)+1)
	name, _ := json.Marshal(event)
	out = append(out, name)
	for _, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// adapterNsp is the adapter's view of a Namespace (adapter.Namespace), kept off the public API.
type adapterNsp Namespace

func (a *adapterNsp) Name() string { return a.name }

func (a *adapterNsp) Socket(id string) adapter.Socket {
	n := (*Namespace)(a)
	n.mu.RLock()
	s := n.sockets[id]
	n.mu.RUnlock()
	if s == nil {
		return nil
	}
	return (*adapterSocket)(s)
}

func (a *adapterNsp) NextAckID() int64 { return a.ackIDs.Add(1) - 1 }

func (a *adapterNsp) MaxDisconnectionDuration() time.Duration { return (*Namespace)(a).recovery() }

func (a *adapterNsp) OnServerSideEmit(args []json.RawMessage, ack adapter.AckFunc) {
	n := (*Namespace)(a)
	if len(args) == 0 {
		return
	}
	var event string
	if json.Unmarshal(args[0], &event) != nil {
		return
	}
	n.mu.RLock()
	handlers := n.serverSide[event]
	n.mu.RUnlock()
	ev := &Event{name: event, args: args[1:]}
	if ack != nil {
		ev.ack = func(data json.RawMessage, atts [][]byte) {
			reply, err := repliesFromPacket(data, atts)
			if err != nil {
				n.srv.log.Warn("socketio: server-side ack", "nsp", n.name, "err", err)
				return
			}
			ack(reply)
		}
	}
	for _, h := range handlers {
		h(ev)
	}
}
