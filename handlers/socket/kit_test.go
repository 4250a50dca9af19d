package socket_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/errs"
)

// A feature written with the toolkit, as chat/lobby/matchmaking handlers are.
func testFeature(c *socket.Conn) {
	c.On("test:echo", func(ctx context.Context, ev *socketio.Event) error {
		var in struct {
			Text  string `json:"text"`
			Count int    `json:"count"`
		}
		if err := socket.Decode(ev, &in); err != nil {
			return err
		}
		return socket.OK(ev, struct {
			Text string `json:"text"`
			User string `json:"user"`
		}{in.Text, c.User.UserID})
	})
	c.On("test:silent", func(context.Context, *socketio.Event) error { return nil })
	c.On("test:coded", func(context.Context, *socketio.Event) error {
		return errs.New(errs.CodeLobbyNotFound, "Lobby not found")
	})
	c.On("test:internal", func(context.Context, *socketio.Event) error {
		return errors.New("db password is hunter2")
	})
	c.On("test:panic", func(context.Context, *socketio.Event) error { panic("boom") })
	c.On("test:slow", func(ctx context.Context, _ *socketio.Event) error {
		select {
		case <-ctx.Done():
			return errs.Internal(ctx.Err())
		case <-time.After(5 * time.Second):
			return nil
		}
	})
}

func TestHandlerToolkit(t *testing.T) {
	e := newEnv(t, testFeature)
	ann := e.register("ann")
	c := e.connect(ann)
	ctx, cancel := ctx5()
	defer cancel()

	ack := func(event string, args ...any) string {
		t.Helper()
		reply, err := c.EmitWithAck(ctx, event, args...)
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		return string(reply[0])
	}
	errEvent := func() socket.ErrorBody {
		t.Helper()
		var b socket.ErrorBody
		next(t, c, "error", &b)
		return b
	}

	if got := ack("test:echo", map[string]any{"text": "hi", "count": 2}); got != `{"ok":true,"text":"hi","user":"`+ann.ID+`"}` {
		t.Fatalf("echo ack = %s", got)
	}
	if got := ack("test:silent"); got != `{"ok":true}` {
		t.Fatalf("silent handler ack = %s", got)
	}
	if got := ack("test:echo", map[string]any{"count": "two"}); got != `{"ok":false,"error":{"code":"VALIDATION_ERROR","message":"count must be a number"}}` {
		t.Fatalf("wrong type ack = %s", got)
	}
	errEvent()
	if got := ack("test:coded"); got != `{"ok":false,"error":{"code":"LOBBY_NOT_FOUND","message":"Lobby not found"}}` {
		t.Fatalf("coded ack = %s", got)
	}
	if b := errEvent(); b.Code != "LOBBY_NOT_FOUND" {
		t.Fatalf("coded error event %+v", b)
	}
	// Causes never reach the client.
	for _, ev := range []string{"test:internal", "test:panic"} {
		if got := ack(ev); got != `{"ok":false,"error":{"code":"INTERNAL","message":"internal error"}}` {
			t.Fatalf("%s ack = %s", ev, got)
		}
		errEvent()
	}
	// The handler timeout ends a slow handler.
	start := time.Now()
	if got := ack("test:slow"); got != `{"ok":false,"error":{"code":"INTERNAL","message":"internal error"}}` {
		t.Fatalf("slow ack = %s", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("handler timeout not applied: %v", d)
	}
	errEvent()
	// The connection survived all of it.
	if got := ack("test:echo", map[string]any{"text": "still here"}); got != `{"ok":true,"text":"still here","user":"`+ann.ID+`"}` {
		t.Fatalf("after errors: %s", got)
	}
}
