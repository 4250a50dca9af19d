package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/admission"
)

// TestLoadSheddingAcrossTheLimit crosses LIMIT_INFLIGHT_MAX on a whole server: with its two slots
// taken (held through the app's limiter, as two slow requests would hold them), a REST call
// (POST /api/lobbies) and a socket event (chat:message) wait the queue wait and are refused with
// SERVICE_UNAVAILABLE "server busy, retry later" well within a second (REST: 503, Retry-After: 1;
// socket: the `error` event and the failed ack), and nothing of them is stored; health, readiness
// and metrics still answer; chat:typing is not held back. A request waiting in the queue when a slot
// frees is admitted and completes; once the slots are free everything is served again.
func TestLoadSheddingAcrossTheLimit(t *testing.T) {
	cfg := testConfig(t.TempDir())
	const queueWait = 250 * time.Millisecond
	cfg.LimitInflightMax, cfg.LimitInflightMin, cfg.LimitInflightQueueWait = 2, 2, queueWait
	n := startClusterNode(t, cfg)
	a, base := n.app, n.url
	ctx := context.Background()
	at := func(method, path, token string, body any) reply {
		t.Helper()
		return callAt(t, base, method, path, token, body)
	}
	host, err := a.Auth.Register(ctx, registerInput("shed"))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := a.Auth.Register(ctx, registerInput("shedpeer"))
	if err != nil {
		t.Fatal(err)
	}
	hostID := host.User.ID
	// Set-up with free slots: a direct chat, both sockets in its room.
	r := at("POST", "/api/chats/direct", host.AccessToken, map[string]any{"userId": peer.User.ID.Hex()})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("direct chat: %d %s", r.Status, r.Raw)
	}
	chatID := r.data()["id"].(string)
	c := chatDialAt(t, base, host.AccessToken)
	other := chatDialAt(t, base, peer.AccessToken)
	for _, cc := range []*chatClient{c, other} {
		if ack := cc.ack("chat:join", map[string]any{"chatId": chatID}); ack["ok"] != true {
			t.Fatalf("chat:join: %v", ack)
		}
	}
	count := func(coll string, filter bson.M) int64 {
		t.Helper()
		n, err := a.Store.Collection(coll).CountDocuments(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lobby := map[string]any{"gameId": "party-trivia", "gameMode": "casual"}

	// Both slots taken.
	held := make([]*admission.Ticket, 2)
	for i := range held {
		if held[i], err = a.Admission.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// REST refused: 503 SERVICE_UNAVAILABLE, Retry-After 1, after the queue wait, nothing stored.
	start := time.Now()
	r = at("POST", "/api/lobbies", host.AccessToken, lobby)
	took := time.Since(start)
	expect(t, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	if r.errMessage() != "server busy, retry later" || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("refusal: %s, Retry-After %q", r.Raw, r.Header.Get("Retry-After"))
	}
	t.Logf("REST call refused after %v (queue wait %v)", took.Round(time.Millisecond), queueWait)
	if took < queueWait || took > time.Second {
		t.Fatalf("REST refusal after %v, want the queue wait %v and well under 1s", took, queueWait)
	}
	if n := count(models.LobbiesCollection, bson.M{"hostId": hostID}); n != 0 {
		t.Fatalf("refused lobby create stored %d lobbies", n)
	}
	if n := count(models.LobbySeatsCollection, bson.M{"_id": hostID}); n != 0 {
		t.Fatalf("refused lobby create left a seat")
	}

	// Socket refused: the `error` event and the failed ack, nothing stored or broadcast.
	if n := c.Pending("error"); n != 0 {
		t.Fatalf("%d error events before the refusal", n)
	}
	start = time.Now()
	ack := c.ack("chat:message", map[string]any{"chatId": chatID, "content": "refused"})
	took = time.Since(start)
	e, _ := ack["error"].(map[string]any)
	if ack["ok"] != false || e["code"] != "SERVICE_UNAVAILABLE" || e["message"] != "server busy, retry later" {
		t.Fatalf("refused chat:message ack: %v", ack)
	}
	t.Logf("socket event refused after %v", took.Round(time.Millisecond))
	if took < queueWait || took > time.Second {
		t.Fatalf("socket refusal after %v, want the queue wait %v and well under 1s", took, queueWait)
	}
	if got := c.next("error"); got["code"] != "SERVICE_UNAVAILABLE" || got["message"] != "server busy, retry later" {
		t.Fatalf("error event: %v", got)
	}
	if n := count(models.MessagesCollection, bson.M{"chatId": chatID}); n != 0 {
		t.Fatalf("refused chat:message stored %d messages", n)
	}
	// chat:typing bypasses admission; health, readiness and metrics are never held back.
	if ack := c.ack("chat:typing", map[string]any{"chatId": chatID, "isTyping": true}); ack["ok"] != true {
		t.Fatalf("chat:typing while full: %v", ack)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := at("GET", p, "", nil); r.Status != http.StatusOK {
			t.Fatalf("%s while full: %d %s", p, r.Status, r.Raw)
		}
	}
	m := at("GET", "/metrics", "", nil)
	for _, line := range []string{"maoga_admission_limit 2", "maoga_admission_in_flight 2", "maoga_admission_refused_total 2"} {
		if !strings.Contains(string(m.Raw), "\n"+line+"\n") {
			t.Fatalf("/metrics lacks %q:\n%s", line, grepLines(string(m.Raw), "maoga_admission"))
		}
	}

	// A request waiting in the queue takes the slot a finished request frees, and completes.
	freed := make(chan time.Duration, 1)
	go func() { // frees a slot once the request below waits in the queue
		start := time.Now()
		for a.Admission.Queued() == 0 && time.Since(start) < 5*time.Second {
			time.Sleep(time.Millisecond)
		}
		held[0].Done()
		freed <- time.Since(start)
	}()
	start = time.Now()
	r = at("POST", "/api/lobbies", host.AccessToken, lobby)
	took = time.Since(start)
	if r.Status != http.StatusCreated {
		t.Fatalf("queued lobby create: %d %s", r.Status, r.Raw)
	}
	t.Logf("queued REST call: a slot freed after %v, answered after %v", (<-freed).Round(time.Millisecond), took.Round(time.Millisecond))
	if n := count(models.LobbiesCollection, bson.M{"hostId": hostID}); n != 1 {
		t.Fatalf("%d lobbies of the host, want the one accepted", n)
	}

	// Everything free again: the socket event is served and stored once.
	held[1].Done()
	if ack := c.ack("chat:message", map[string]any{"chatId": chatID, "content": "accepted"}); ack["ok"] != true {
		t.Fatalf("chat:message after the overload: %v", ack)
	}
	if n := count(models.MessagesCollection, bson.M{"chatId": chatID}); n != 1 {
		t.Fatalf("%d messages stored, want the accepted one", n)
	}
	waitFor(t, func() bool { return a.Admission.InFlight() == 0 })
	if got := a.Admission.Refused(); got != 2 {
		t.Fatalf("limiter refused %d, want 2", got)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
