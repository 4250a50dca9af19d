package app_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/maoga/maoga/cmd/maoga/app"
)

// TestEventRateLimit crosses SOCKET_EVENT_RATE: past the burst an event is refused and its ack
// answers RATE_LIMITED at once (no client waits for a timeout); the bucket refills at the rate.
func TestEventRateLimit(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.EventRate, cfg.EventBurst = 2, 5
	a, err := app.New(context.Background(), cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Start(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	tokens, err := a.Auth.Register(context.Background(), registerInput("ratelim"))
	if err != nil {
		t.Fatal(err)
	}
	c := dialURL(t, "http://"+ln.Addr().String(), tokens.AccessToken)
	defer c.Close()

	codeOf := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		res, err := c.EmitWithAck(ctx, "user:status", map[string]any{"status": "away"})
		if err != nil {
			t.Fatalf("no ack: %v", err)
		}
		var a struct {
			OK    bool `json:"ok"`
			Error struct{ Code, Message string }
		}
		if len(res) == 0 || json.Unmarshal(res[0], &a) != nil {
			t.Fatalf("bad ack %s", res)
		}
		if a.OK {
			return "ok"
		}
		return a.Error.Code
	}
	limited := 0
	for i := 0; i < 10; i++ {
		if codeOf() == "RATE_LIMITED" {
			limited++
		}
	}
	t.Logf("%d of 10 back-to-back events refused with RATE_LIMITED (SOCKET_EVENT_RATE 2, burst 5)", limited)
	if limited < 4 || limited > 6 { // 5 tokens of burst, a little refill while the loop runs
		t.Fatalf("%d of 10 events rate limited, want about 5", limited)
	}
	time.Sleep(time.Second) // two tokens back
	if code := codeOf(); code != "ok" {
		t.Fatalf("after a pause: %s, want ok", code)
	}
}
