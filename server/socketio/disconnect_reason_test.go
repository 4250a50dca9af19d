package socketio

import (
	"sync/atomic"
	"testing"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/parser"
)

// A server-side disconnect whose client closes its transport the moment the DISCONNECT packet
// reaches it: the disconnect handlers must still be told "server namespace disconnect", never
// "transport close". Here the transport is a test double that closes the connection synchronously
// inside the write of the DISCONNECT packet (the engine's OnClose, "transport close" to every socket
// of the connection), the tightest interleaving a real client can produce. It holds only because
// the socket settles its reason before queuing the packet (Socket.disconnect, closeWith); with the
// packet written first, the transport's close wins and the handlers hear "transport close".
// TestFetchJoinLeaveDisconnectSockets used to catch this only under load.
func TestServerDisconnectReasonSurvivesTransportCloseOnWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
	}{{"Disconnect(false)", false}, {"Disconnect(true)", true}} {
		t.Run(tc.name, func(t *testing.T) {
			io, url := newServer(t, Options{})
			var target atomic.Pointer[client]
			var closes atomic.Int32
			// Installed before the first connection (the hook is read without a lock).
			io.transportHook = func(c *client, enc *adapter.Encoded) {
				if c != target.Load() || len(enc.Text) == 0 || enc.Text[0] != byte('0'+parser.Disconnect) {
					return
				}
				closes.Add(1)
				c.OnClose(c.conn, "transport close", nil) // what the engine does when the client hangs up
			}
			conns := connected(io.Of("/"))
			c := dial(t, url, clienttest.Options{})
			_ = c
			s := recv(t, conns)
			reasons := make(chan [2]string, 1)
			var disconnecting string
			s.OnDisconnecting(func(r string) { disconnecting = r })
			s.OnDisconnect(func(r string) { reasons <- [2]string{disconnecting, r} })
			target.Store(s.client)

			s.Disconnect(tc.close)
			if n := closes.Load(); n != 1 {
				t.Fatalf("the transport double closed the connection %d times, want once (on the DISCONNECT write)", n)
			}
			if r := recv(t, reasons); r != [2]string{"server namespace disconnect", "server namespace disconnect"} {
				t.Fatalf("disconnecting/disconnect reasons %q, want server namespace disconnect for both", r)
			}
			if s.Connected() {
				t.Fatal("socket still connected")
			}
		})
	}
}
