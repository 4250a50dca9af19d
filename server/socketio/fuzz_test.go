package socketio

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/server/engineio"
)

// FuzzPollingPost drives the long-polling POST path end to end: a real Server (engine, Socket.IO
// decoder, namespace, handlers) gets a handshake, optionally a namespace CONNECT, then the fuzzed body
// as a POST. Whatever the body, the server must not panic, must answer 200, 400 or 413 (the refusals
// with the {code, message} JSON body), and once the client closes, the session must be gone: no
// session, socket or pending attachment outlives an iteration.
func FuzzPollingPost(f *testing.F) {
	for _, s := range []string{
		"40", "42[\"echo\",1]", "420[\"echo\",{\"a\":[1,2]}]", "451-[\"echo\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
		"452-[\"echo\"]", "455000-[\"x\"]", "42[\"echo\",\"a\xffb\"]", "2", "3", "1", "6", "5", "4", "b!!",
		"42" + strings.Repeat("[", 100), "41", "44{}", "40/nope,", "43[]", "4" + strings.Repeat("x", 9000),
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	io := NewServer(Options{
		Logger: slog.New(slog.DiscardHandler),
		Engine: engineio.Options{PingInterval: time.Hour, PingTimeout: time.Hour, MaxPayload: 8 << 10,
			Limits: engineio.Limits{ConnectionsPerIP: -1, HandshakesPerSecond: -1}}, // one fake address for every iteration
		Limits: Limits{AttachmentTimeout: 50 * time.Millisecond, EventsPerSecond: -1},
	})
	io.OnConnection(func(s *Socket) {
		s.On("echo", func(ev *Event) {
			var args []any
			_ = ev.Decode(&args)
			_ = s.Emit("echo", args...)
			_ = ev.Ack(args...)
		})
	})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = io.Close(ctx)
	})
	do := func(t *testing.T, method, query, body string) *httptest.ResponseRecorder {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req := httptest.NewRequest(method, "/socket.io/?EIO=4&transport=polling"+query, strings.NewReader(body)).WithContext(ctx)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		}
		rec := httptest.NewRecorder()
		io.ServeHTTP(rec, req)
		if ctx.Err() != nil {
			t.Fatalf("%s %s blocked", method, query)
		}
		return rec
	}
	f.Fuzz(func(t *testing.T, body []byte, connect bool) {
		open := do(t, http.MethodGet, "", "")
		var hs struct{ SID string }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(open.Body.String(), "0")), &hs); err != nil || hs.SID == "" {
			t.Fatalf("handshake %d %q", open.Code, open.Body.String())
		}
		q := "&sid=" + hs.SID
		if connect {
			if r := do(t, http.MethodPost, q, "40"); r.Code != 200 {
				t.Fatalf("CONNECT: %d", r.Code)
			}
			// take the CONNECT answer, as a client does (its handlers wait until it is written)
			if r := do(t, http.MethodGet, q, ""); r.Code != 200 || !strings.HasPrefix(r.Body.String(), "40{") {
				t.Fatalf("CONNECT answer: %d %q", r.Code, r.Body.String())
			}
		}
		r := do(t, http.MethodPost, q, string(body))
		switch r.Code {
		case 200:
			if r.Body.String() != "ok" {
				t.Fatalf("200 with %q", r.Body.String())
			}
		case 400, 413:
			var e struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(r.Body.Bytes(), &e); err != nil || e.Code == nil || e.Message == "" {
				t.Fatalf("%d with body %q", r.Code, r.Body.String())
			}
		default:
			t.Fatalf("status %d for %q", r.Code, body)
		}
		// The client leaves: a close packet, then a GET that collects what is left (or is refused).
		do(t, http.MethodPost, q, "1")
		do(t, http.MethodGet, q, "")
		deadline := time.Now().Add(2 * time.Second)
		for io.Engine().Count() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions left after the client closed", io.Engine().Count())
			}
			time.Sleep(time.Millisecond)
		}
	})
}
