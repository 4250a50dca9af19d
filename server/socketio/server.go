package socketio

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/engineio"
)

// Options configure a Server. Zero values take Node's defaults.
type Options struct {
	// Engine configures the Engine.IO layer; Engine.Path defaults to "/socket.io/".
	Engine engineio.Options
	// ConnectTimeout closes an engine connection that joined no namespace in time (default 45s).
	ConnectTimeout time.Duration
	// Adapter builds the adapter of each namespace (default: in memory).
	Adapter adapter.Factory
	// ConnectionStateRecovery turns on connection state recovery (nil = off).
	ConnectionStateRecovery *RecoveryOptions
	// InboxSize bounds the packets queued per socket for its handlers (default 32). When full, the engine
	// reader of that client waits.
	InboxSize int
	// Limits bound events per second, rooms and namespaces per client (limits.go; defaults 100 events/s
	// burst 200, 1000 rooms per socket, 32 namespaces per connection, 10000 namespaces).
	Limits Limits
	Logger *slog.Logger
}

// RecoveryOptions configure connection state recovery (Socket.IO 4.6+).
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a disconnected session can be recovered (default 2 minutes).
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares runs the namespace middlewares for recovered sessions too. By default they are
	// skipped, as Node's skipMiddlewares (default true) does.
	RunMiddlewares bool
}

// Server is a Socket.IO server. It is an http.Handler for its path.
type Server struct {
	opts   Options
	engine *engineio.Server
	log    *slog.Logger

	mu       sync.RWMutex
	nsps     map[string]*Namespace
	matchers []func(name string, auth json.RawMessage) bool
	onNew    []func(*Namespace)
	closing  bool

	limits    Limits    // opts.Limits with defaults
	offenders offenders // log-once state of the limits

	// transportHook, when set (tests only, before the first connection), sees every packet a client
	// sends through client.send, on the sending goroutine, before the engine queues it: a test double
	// of the transport can react to a write at the very moment it happens.
	transportHook func(c *client, enc *adapter.Encoded)
}

// NewServer returns a Server with the main namespace "/" created.
func NewServer(opts Options) *Server {
	if opts.Engine.Path == "" {
		opts.Engine.Path = "/socket.io/"
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 45 * time.Second
	}
	if opts.Adapter == nil {
		opts.Adapter = adapter.MemoryFactory
	}
	if r := opts.ConnectionStateRecovery; r != nil && r.MaxDisconnectionDuration <= 0 {
		cp := *r
		cp.MaxDisconnectionDuration = 2 * time.Minute
		opts.ConnectionStateRecovery = &cp
	}
	if opts.InboxSize <= 0 {
		opts.InboxSize = 32
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Engine.Logger == nil {
		opts.Engine.Logger = opts.Logger
	}
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		nsps: make(map[string]*Namespace),
	}
	s.limits = opts.Limits.withDefaults()
	s.offenders = offenders{window: s.limits.LogWindow, log: opts.Logger}
	s.engine = engineio.NewServer(opts.Engine)
	s.engine.OnConnection(s.onEngineConnection)
	s.Of("/")
	return s
}

// ServeHTTP serves the Engine.IO endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Engine returns the underlying Engine.IO server.
func (s *Server) Engine() *engineio.Server { return s.engine }

// Of returns the namespace name, creating it on first use. A missing leading "/" is added.
func (s *Server) Of(name string) *Namespace {
	name = normalizeNsp(name)
	s.mu.Lock()
	n := s.nsps[name]
	if n != nil {
		s.mu.Unlock()
		return n
	}
	n = newNamespace(s, name)
	s.nsps[name] = n
	hooks := append([]func(*Namespace){}, s.onNew...)
	s.mu.Unlock()
	for _, h := range hooks {
		h(n)
	}
	return n
}

// OfMatch registers a dynamic namespace matcher: a client connecting to an unknown namespace for which
// match returns true creates it (then configured by the OnNewNamespace hooks). auth is the CONNECT
// payload.
func (s *Server) OfMatch(match func(name string, auth json.RawMessage) bool) {
	s.mu.Lock()
	s.matchers = append(s.matchers, match)
	s.mu.Unlock()
}

// OnNewNamespace registers fn to be called for every namespace created from now on (static or dynamic).
func (s *Server) OnNewNamespace(fn func(*Namespace)) {
	s.mu.Lock()
	s.onNew = append(s.onNew, fn)
	s.mu.Unlock()
}

// lookup returns the namespace for a CONNECT, creating a dynamic one if a matcher accepts it.
func (s *Server) lookup(name string, auth json.RawMessage) *Namespace {
	s.mu.RLock()
	n := s.nsps[name]
	matchers := s.matchers
	s.mu.RUnlock()
	if n != nil {
		return n
	}
	for _, m := range matchers {
		if m(name, auth) {
			if !s.roomForDynamicNamespace(name) {
				return nil
			}
			return s.Of(name)
		}
	}
	return nil
}

func normalizeNsp(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return name
}

// Namespaces returns the current namespaces.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	return out
}

// Use adds a middleware to the main namespace.
func (s *Server) Use(fn Middleware) { s.Of("/").Use(fn) }

// OnConnection registers a connection handler on the main namespace.
func (s *Server) OnConnection(fn func(*Socket)) { s.Of("/").OnConnection(fn) }

// To selects the sockets of the main namespace in any of rooms.
func (s *Server) To(rooms ...string) *BroadcastOperator { return s.Of("/").To(rooms...) }

// In is To.
func (s *Server) In(rooms ...string) *BroadcastOperator { return s.Of("/").In(rooms...) }

// Except excludes the sockets of the main namespace in any of rooms.
func (s *Server) Except(rooms ...string) *BroadcastOperator { return s.Of("/").Except(rooms...) }

// Volatile marks a broadcast of the main namespace as volatile.
func (s *Server) Volatile() *BroadcastOperator { return s.Of("/").Volatile() }

// Local restricts a broadcast of the main namespace to this node.
func (s *Server) Local() *BroadcastOperator { return s.Of("/").Local() }

// Timeout sets the ack timeout of a broadcast of the main namespace.
func (s *Server) Timeout(d time.Duration) *BroadcastOperator { return s.Of("/").Timeout(d) }

// Emit broadcasts to every socket of the main namespace.
func (s *Server) Emit(event string, args ...any) error { return s.Of("/").Emit(event, args...) }

// EmitWithAck broadcasts to the main namespace and collects one reply per client.
func (s *Server) EmitWithAck(ctx context.Context, event string, args ...any) ([][]json.RawMessage, error) {
	return s.Of("/").EmitWithAck(ctx, event, args...)
}

// FetchSockets returns the sockets of the main namespace.
func (s *Server) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return s.Of("/").FetchSockets(ctx)
}

// SocketsJoin makes every socket of the main namespace join rooms.
func (s *Server) SocketsJoin(rooms ...string) error { return s.Of("/").SocketsJoin(rooms...) }

// SocketsLeave makes every socket of the main namespace leave rooms.
func (s *Server) SocketsLeave(rooms ...string) error { return s.Of("/").SocketsLeave(rooms...) }

// DisconnectSockets disconnects every socket of the main namespace.
func (s *Server) DisconnectSockets(close bool) error { return s.Of("/").DisconnectSockets(close) }

// ServerSideEmit sends an event to the other nodes (main namespace).
func (s *Server) ServerSideEmit(event string, args ...any) error {
	return s.Of("/").ServerSideEmit(event, args...)
}

// ServerSideEmitWithAck sends an event to the other nodes and collects one reply per node.
func (s *Server) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([][]json.RawMessage, error) {
	return s.Of("/").ServerSideEmitWithAck(ctx, event, args...)
}

// OnServerSideEmit registers a handler for events of other nodes (main namespace).
func (s *Server) OnServerSideEmit(event string, fn func(*Event)) {
	s.Of("/").OnServerSideEmit(event, fn)
}

// Close disconnects every socket with reason "server shutting down", closes the engine (bounded by ctx)
// and the adapters.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		nsps = append(nsps, n)
	}
	s.mu.Unlock()
	for _, n := range nsps {
		for _, sock := range n.localSockets() {
			sock.onClose("server shutting down")
		}
	}
	err := s.engine.Close(ctx)
	for _, n := range nsps {
		n.waitIdle(ctx)
		if cerr := n.adapter.Close(); cerr != nil {
			s.log.Error("socketio: closing adapter", "nsp", n.name, "err", cerr)
		}
	}
	return err
}
