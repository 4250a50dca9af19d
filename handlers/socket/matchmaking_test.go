package socket_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/matchmaking"
)

// fakeMatchmaking answers by request id: "ok" succeeds, anything else fails with errFor[id].
type fakeMatchmaking struct {
	errFor map[string]error
}

func (f fakeMatchmaking) Status(_ context.Context, _, id string) (matchmaking.StatusPayload, error) {
	if err := f.errFor[id]; err != nil {
		return matchmaking.StatusPayload{}, err
	}
	return matchmaking.StatusPayload{RequestID: id, Status: "searching", EstimatedWaitTime: 30}, nil
}

func (f fakeMatchmaking) Cancel(_ context.Context, _, id string) (*models.MatchRequest, error) {
	if err := f.errFor[id]; err != nil {
		return nil, err
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &models.MatchRequest{Status: models.MatchCancelled, CancelledAt: &at}, nil
}

func TestMatchmakingErrorMapping(t *testing.T) {
	svc := fakeMatchmaking{errFor: map[string]error{
		"missing":  errs.NotFound("Match request not found"),
		"finished": errs.Conflict("Match request is matched"),
		"broken":   errs.Internal(errors.New("store down")),
	}}
	e := newEnv(t, socket.Matchmaking(svc))
	c := e.connect(e.register("mia"))
	ctx, cancel := ctx5()
	defer cancel()
	ack := func(event string, payload any) map[string]any {
		t.Helper()
		args, err := c.EmitWithAck(ctx, event, payload)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(args[0], &m)
		return m
	}
	refused := func(event, id, code string) {
		t.Helper()
		a := ack(event, map[string]any{"requestId": id})
		if a["ok"] != false || a["error"].(map[string]any)["code"] != code {
			t.Fatalf("%s %s: ack %v, want %s", event, id, a, code)
		}
		var eb socket.ErrorBody
		next(t, c, "error", &eb)
		var mb matchmaking.ErrorPayload
		next(t, c, "matchmaking:error", &mb)
		if eb.Code != code || mb.Code != code || mb.RequestID != id || mb.Message != eb.Message {
			t.Fatalf("%s %s: error %+v, matchmaking:error %+v", event, id, eb, mb)
		}
	}
	refused("matchmaking:subscribe", "missing", "MATCH_NOT_FOUND")
	refused("matchmaking:subscribe", "finished", "SUBSCRIPTION_ERROR")
	refused("matchmaking:subscribe", "broken", "SUBSCRIPTION_ERROR")
	refused("matchmaking:cancel", "missing", "MATCH_NOT_FOUND")
	refused("matchmaking:cancel", "finished", "CANCEL_ERROR")
	refused("matchmaking:cancel", "broken", "CANCEL_ERROR")

	if a := ack("matchmaking:subscribe", map[string]any{"matchRequestId": "ok"}); a["ok"] != true || a["requestId"] != "ok" {
		t.Fatalf("subscribe ack %v", a)
	}
	var st matchmaking.StatusPayload
	next(t, c, "matchmaking:status", &st)
	if st.RequestID != "ok" || st.Status != "searching" || st.EstimatedWaitTime != 30 {
		t.Fatalf("status %+v", st)
	}
	if a := ack("matchmaking:cancel", map[string]any{"requestId": "ok"}); a["ok"] != true || a["cancelledAt"] != "2026-01-02T03:04:05.000Z" {
		t.Fatalf("cancel ack %v", a)
	}
	// Without an ack the failure still reaches the client on both events.
	if err := c.Emit("matchmaking:cancel", map[string]any{"requestId": "missing"}); err != nil {
		t.Fatal(err)
	}
	var eb socket.ErrorBody
	next(t, c, "error", &eb)
	var mb matchmaking.ErrorPayload
	next(t, c, "matchmaking:error", &mb)
	if eb.Code != "MATCH_NOT_FOUND" || mb.RequestID != "missing" {
		t.Fatalf("no-ack failure: %+v %+v", eb, mb)
	}
}
