// Package engineio is an Engine.IO v4 server: the transport sessions under
// Socket.IO, wire-compatible with engine.io-client 6.x / socket.io-client 4.x
// and with the behaviour of Node's engine.io in its corner cases (error codes,
// close reasons, upgrade races).
//
// A Server is an http.Handler mounted at Options.Path. A session (Conn) starts
// with a handshake over HTTP long-polling or directly over a websocket
// (github.com/gobwas/ws); a polling session can upgrade to websocket with the
// "2probe"/"3probe"/"5" exchange, after which polling requests for its sid are
// refused. The layer above (server/socketio) sees only Conn.Send, Conn.Close
// and its Handler.
//
// # Design: memory and goroutines per session
//
// Outgoing queue. Every Conn has one bounded queue of packets
// (Options.MaxQueuedPackets packets and Options.MaxQueuedBytes bytes). Send
// appends to it under the Conn's mutex and never blocks on the network; a Send
// that would cross a bound means the client does not keep up, so the session
// is closed with "transport error" (logged once, at Warn) and Send returns
// ErrQueueFull. Closing its websocket happens off the sender's goroutine, so a
// slow client never stalls a broadcast to the others. Message data is shared, not copied, between the
// queues of all the sessions a message is broadcast to.
//
// Writer. On websocket there is no writer goroutine while a session is idle:
// the first Send to an idle session starts one, which drains the queue in
// batches through a pooled bufio.Writer (one syscall per batch), under a write
// deadline (Options.WriteTimeout), and exits as soon as the queue is empty.
// On long-polling the pending GET's own goroutine is the writer: it is parked
// until packets are queued and then answers them all as one payload.
//
// Reader. With Options.ReadMode ReadModeEpoll (the default on Linux) an idle
// websocket session has no goroutine at all: its socket is registered,
// one-shot, with one of a few epoll pollers (whose own epoll descriptors wait
// in Go's network poller), and when bytes arrive a worker goroutine (workers
// are reused, and exit after a few idle seconds) reads them without blocking,
// handles every complete frame and re-arms the registration; only a partial frame's bytes are kept between reads, so a peer
// that stalls mid-frame holds no goroutine and blocks nobody. Websockets over
// TLS (a net.Conn that is not a *net.TCPConn) and every websocket with
// ReadModeGoroutine (the only mode off Linux) have one reader goroutine, which
// blocks on a one-byte read in a short call chain so its stack stays at the
// runtime minimum. Message buffers come from a sync.Pool and go back after the
// Handler returns. The *http.Request is not kept: the session keeps its
// headers packed in one string and its URL (Conn.Handshake unpacks a copy).
//
// Heartbeat. One timer per Server runs the heartbeats of all its sessions (a
// min-heap of their next firing times): after PingInterval a session queues a
// ping and is rescheduled for PingTimeout; the pong reschedules it for
// PingInterval, and a firing while still waiting for the pong closes the
// session with "ping timeout".
//
// Replies. Conn.SendNow (socketio's acks) writes on the caller's goroutine when
// nothing is being written, instead of handing the reply to a new writer.
//
// Handler calls for one Conn are serialized (OnMessage in arrival order, then
// OnClose exactly once, after any OnMessage in progress). OnClose runs on a
// short-lived goroutine so that Close may be called from anywhere, including
// inside OnMessage.
//
// Close reasons are Node's: "transport close" (client closed, or sent a close
// packet), "transport error" (overlapping polls, write failure, queue full,
// websocket protocol error, frame over MaxPayload), "ping timeout",
// "parse error", "forced close" (Conn.Close by the application) and
// "server shutting down" (Server.Close, which sends every client a close
// packet and waits for them to drain, bounded by its context).
package engineio
