// Package socketio is a Socket.IO v5 server on top of server/engineio, wire-compatible with
// socket.io-client 3.x/4.x. Rooms and broadcasts go through an adapter.Adapter (in memory by default,
// adapter/redis for a cluster).
//
// Usage:
//
//	io := socketio.NewServer(socketio.Options{
//		Engine:                  engineio.Options{PingInterval: 25 * time.Second}, // Path defaults to "/socket.io/"
//		ConnectTimeout:          45 * time.Second,
//		Adapter:                 nil, // adapter.Factory; nil = in memory
//		ConnectionStateRecovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: 2 * time.Minute},
//		InboxSize:               32, // packets queued per socket for its handlers
//	})
//	http.Handle("/socket.io/", io)
//	nsp := io.Of("/")
//	nsp.Use(func(s *socketio.Socket) error { return &socketio.ConnectError{Message: "nope", Data: map[string]any{"code": 1}} })
//	nsp.OnConnection(func(s *socketio.Socket) {
//		s.On("chat", func(ev *socketio.Event) {
//			var msg struct{ Text string }
//			if err := ev.Decode(&msg); err != nil { return }
//			s.To("room1").Emit("chat", msg) // everyone in room1 but s
//			if ev.HasAck() { ev.Ack("ok") }
//		})
//		s.OnDisconnect(func(reason string) {})
//	})
//
// # API
//
// Server (NewServer(Options) *Server): ServeHTTP, Of(name) *Namespace, OfMatch(func(name string, auth
// json.RawMessage) bool) (dynamic namespaces: a matching name creates the namespace, configured by
// OnNewNamespace), OnNewNamespace(func(*Namespace)), Namespaces(), Use/OnConnection (of "/"), the broadcast operators
// of "/" (To, In, Except, Volatile, Local, Timeout, Emit, EmitWithAck, FetchSockets, SocketsJoin,
// SocketsLeave, DisconnectSockets, ServerSideEmit, ServerSideEmitWithAck), Engine() *engineio.Server,
// Close(ctx) (graceful: disconnects every socket with "server shutting down" and drains the engine).
//
// Namespace: Name, Server, Use(Middleware), OnConnection(func(*Socket)), Adapter() adapter.Adapter,
// Sockets() and Socket(id) (local), OnServerSideEmit(event, func(*Event)), and the operators To, In, Except, Volatile, Local,
// Timeout returning a *BroadcastOperator, plus Emit, EmitWithAck, FetchSockets, SocketsJoin,
// SocketsLeave, DisconnectSockets, ServerSideEmit, ServerSideEmitWithAck.
//
// BroadcastOperator (immutable; each call returns a copy): To/In/Except(rooms...), Volatile(), Local(),
// Timeout(d), Emit(event, args...) error, EmitWithAck(ctx, event, args...) ([][]json.RawMessage, error)
// (one entry per client; ErrTimeout with the replies so far when not every client answered),
// FetchSockets(ctx) ([]*RemoteSocket, error), SocketsJoin(rooms...), SocketsLeave(rooms...),
// DisconnectSockets(close).
//
// Middleware is func(*Socket) error; a *ConnectError{Message, Data} rejects with data, any other error
// with its text. RemoteSocket (from FetchSockets): ID, Handshake, Rooms, Data, Emit, Join, Leave,
// Disconnect — acting through the adapter, so it works for sockets on other nodes too.
//
// Socket: ID, Namespace, Handshake() *Handshake (headers, query, auth, address, time, url, issued,
// secure, xdomain), Conn() *engineio.Conn, SetData(any)/Data() any, Recovered(), Connected(),
// On(event, func(*Event)), Off(event), OnAny(func(event string, ev *Event)), OnDisconnecting(func(reason)),
// OnDisconnect(func(reason)), Emit(event, args...) error, EmitVolatile(event, args...) error (dropped
// when the transport is not writable), EmitWithAck(ctx, event, args...) ([]json.RawMessage, error)
// (ctx deadline = timeout; ErrDisconnected if the socket goes away), Join(rooms...), Leave(rooms...),
// Rooms() []string, To/In/Except(rooms...) *BroadcastOperator (excluding the socket itself),
// Broadcast() *BroadcastOperator (every socket but this one), Disconnect(close bool).
//
// Event: Name(), Args() []json.RawMessage (binary placeholders kept), Attachments() [][]byte,
// Decode(ptrs...) error (positional; JSON into Go values, binary placeholders into []byte), HasAck(),
// Ack(args...) error (once), Socket() *Socket (nil for server-side events).
//
// Arguments of Emit are marshalled with encoding/json; []byte values anywhere become binary attachments.
// json.RawMessage arguments are sent as they are.
//
// Disconnect reasons are Node's: "client namespace disconnect", "server namespace disconnect",
// "transport close", "transport error", "ping timeout", "parse error", "server shutting down",
// "forced close".
//
// Concurrency: the handlers of one socket run one at a time in arrival order, on a goroutine started on
// demand that drains a small bounded inbox, so a slow handler never blocks the engine reader (heartbeats
// keep working). When the inbox (Options.InboxSize) is full the engine reader of that client waits
// (backpressure on that client only; if its handlers stay stuck longer than the ping timeout, the
// client is dropped with "ping timeout"). The CONNECT answer and the connection handlers are the
// first task of the inbox, so handlers registered there see every event. ACK packets are handled on
// the reader directly, so a handler may wait in EmitWithAck. Disconnecting/disconnect handlers run
// on the inbox too, after the events already queued.
//
// Connection state recovery: with Options.ConnectionStateRecovery the CONNECT answer carries a pid,
// every emit (socket or broadcast, not volatile, without ack) carries an offset as last argument and
// is kept by the adapter (adapter.MemoryOptions bound the store); a client reconnecting with
// {pid, offset} in its auth within MaxDisconnectionDuration gets its id, rooms, data and the missed
// packets back (Socket.Recovered), and skips the middlewares unless RunMiddlewares.
// Socket methods are safe to call from any goroutine.
package socketio
