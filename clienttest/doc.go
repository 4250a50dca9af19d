// Package clienttest is a Socket.IO v5 test client for Go tests of the
// server and of the application built on it.
//
// It speaks Engine.IO v4 over a WebSocket (default), over HTTP long-polling
// (Options.Transport "polling"), or polling upgraded to a WebSocket once
// connected (Options.Upgrade), and Socket.IO v5 with server/parser, one
// namespace per Client:
//
//	c, err := clienttest.Dial(ctx, srv.URL, clienttest.Options{Auth: map[string]any{"token": tok}})
//	var ce *clienttest.ConnectError
//	if errors.As(err, &ce) { ... } // the server answered CONNECT_ERROR (e.g. a middleware refused)
//	defer c.Close()
//	c.Emit("chat:send", map[string]any{"text": "hi"})
//	reply, err := c.EmitWithAck(ctx, "lobby:create", req) // the ack's arguments
//	args, err := c.Wait(ctx, "chat:message")              // next "chat:message", even if it came earlier
//
// Every event the server sends is queued per event name from the moment the
// connection exists, so Wait never misses an event that arrived before it
// was called: tests are not racy. On registers a callback as well (run on
// the reader goroutine, in order). Queues are bounded by
// Options.MaxBuffered per event name; older events beyond it are dropped
// and counted (Dropped).
//
// Arguments arrive as json.RawMessage. Binary attachments are given back
// inside the arguments as base64 JSON strings, so json.Unmarshal into a
// []byte (or a struct field of that type) yields the bytes; WaitEvent
// returns the raw payload and the attachments as well, for tests that must
// see the wire form. Binary arguments of Emit ([]byte anywhere in the
// values) are sent as attachments.
//
// Server-to-client acks are answered by the AckHandler (Options or
// SetAckHandler). Disconnect reasons are those of socket.io-client:
// "io server disconnect", "io client disconnect", "transport close",
// "transport error", "ping timeout", "parse error".
package clienttest
