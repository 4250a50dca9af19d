package clienttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/server/socketio"
)

// TestIntegrationEventRightAfterConnect: like Node, the connection handlers
// must have run (and registered their event handlers) before the first
// event of the client is dispatched, however fast the client emits.
func TestIntegrationEventRightAfterConnect(t *testing.T) {
	url := newServer(t, func(io *socketio.Server) {
		io.Of("/").OnConnection(func(s *socketio.Socket) {
			s.On("hi", func(ev *socketio.Event) { _ = ev.Ack("hello") })
		})
	})
	ctx := testCtx(t)
	lost := 0
	for i := 0; i < 20; i++ {
		c, err := clienttest.Dial(ctx, url, clienttest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if _, err := c.EmitWithAck(actx, "hi"); err != nil {
			lost++
		}
		cancel()
		c.Close()
	}
	if lost > 0 {
		t.Fatalf("%d of 20 events sent right after CONNECT were not handled", lost)
	}
}
