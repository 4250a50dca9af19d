package main

import (
	"bytes"
	"time"

	"github.com/maoga/maoga/server/engineio"
	"github.com/maoga/maoga/server/socketio"
)

// runSocketIOSuite serves the reference server of socket.io-protocol's test-suite (Readme, "Test suite").
func runSocketIOSuite(addr string) error {
	io := socketio.NewServer(socketio.Options{
		Engine: engineio.Options{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			MaxPayload:   1_000_000,
			CORS:         &engineio.CORSOptions{Origins: []string{"*"}},
		},
		ConnectTimeout: 1000 * time.Millisecond,
	})
	for _, name := range []string{"/", "/custom"} {
		io.Of(name).OnConnection(protocolSuiteHandler)
	}
	return serve(addr, io, io.Close)
}

// protocolSuiteHandler: emit "auth" with the handshake auth, echo "message" as "message-back" and ack
// "message-with-ack" with its arguments, binary included.
func protocolSuiteHandler(s *socketio.Socket) {
	_ = s.Emit("auth", s.Handshake().Auth)
	s.On("message", func(ev *socketio.Event) {
		args, err := decodeAll(ev)
		if err != nil {
			return
		}
		_ = s.Emit("message-back", args...)
	})
	s.On("message-with-ack", func(ev *socketio.Event) {
		args, err := decodeAll(ev)
		if err != nil {
			return
		}
		_ = ev.Ack(args...)
	})
}

// decodeAll returns the arguments for re-emitting: plain JSON as received (byte for byte), arguments
// with binary placeholders decoded ([]byte values) so that they become attachments again.
func decodeAll(ev *socketio.Event) ([]any, error) {
	raw := ev.Args()
	args := make([]any, len(raw))
	for i, r := range raw {
		if len(ev.Attachments()) == 0 || !bytes.Contains(r, []byte(`"_placeholder"`)) {
			args[i] = r
			continue
		}
		var v any
		ptrs := make([]any, i+1)
		ptrs[i] = &v
		if err := ev.Decode(ptrs...); err != nil {
			return nil, err
		}
		args[i] = v
	}
	return args, nil
}
