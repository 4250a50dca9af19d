package main

import (
	"time"

	"github.com/maoga/maoga/server/engineio"
)

// runEngineIOSuite serves the reference server of the engine.io-protocol
// test-suite: path /engine.io/, pingInterval 300ms, pingTimeout 200ms,
// maxPayload 1e6, CORS "*", every message echoed back as it came (text or binary).
func runEngineIOSuite(addr string) error {
	srv := engineio.NewServer(engineio.Options{
		Path:         "/engine.io/",
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
		CORS:         &engineio.CORSOptions{Origins: []string{"*"}},
	})
	srv.OnConnection(func(c *engineio.Conn) { c.SetHandler(echoHandler{}) })
	return serve(addr, srv, srv.Close)
}

// echoHandler sends every message back on the connection it came from.
type echoHandler struct{}

func (echoHandler) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	// data is only valid during the call: the queued copy outlives it.
	_ = c.Send(engineio.Message{Data: append([]byte(nil), data...), Binary: binary})
}

func (echoHandler) OnClose(*engineio.Conn, string, error) {}
