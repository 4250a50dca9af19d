package app_test

// Hostile input over Socket.IO (issue 8, Application): every client→server event of EVENTS.md gets
// wrong types, missing and extra fields, huge strings, NoSQL-injection shapes, non-object payloads and
// other users' ids. Each must answer the documented `error` event and the failed ack with the same
// code, write nothing, leak nothing, and leave the connection usable.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
)

type fieldKind int

const (
	kString fieldKind = iota
	kBool
)

type hostileField struct {
	name     string
	kind     fieldKind
	required bool
	// hugeCodes are the acceptable codes for a huge string in this field (default VALIDATION_ERROR).
	hugeCodes []string
}

type hostileEvent struct {
	event  string
	base   map[string]any // a well-formed payload on the attacker's own objects
	fields []hostileField
}

type hostileCase struct {
	name    string
	args    []any // nil: no payload at all
	codes   []string
	noArgs  bool
	payload any
}

// socketFailure emits with an ack and checks: failed ack with one of codes, the `error` event with the
// same code and message, no internal detail or secret in the message.
func socketFailure(t *testing.T, c *clienttest.Client, what, event string, args []any, codes []string, secrets ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("%s: no ack: %v", what, err)
	}
	var a struct {
		OK    *bool `json:"ok"`
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if len(res) == 0 || json.Unmarshal(res[0], &a) != nil || a.OK == nil || *a.OK {
		t.Errorf("%s: want a failed ack, got %.300s", what, fmtArgs(res))
		return
	}
	if !containsStr(codes, a.Error.Code) || a.Error.Message == "" {
		t.Errorf("%s: ack code %q (%q), want one of %v", what, a.Error.Code, a.Error.Message, codes)
	}
	checkNoLeak(t, what, a.Error.Message, secrets...)
	ev := waitJSON(t, c, "error", 5*time.Second)
	if ev["code"] != a.Error.Code || ev["message"] != a.Error.Message {
		t.Errorf("%s: error event %v does not match the ack %+v", what, ev, a.Error)
	}
}

func fmtArgs(res []json.RawMessage) string {
	var b strings.Builder
	for _, r := range res {
		b.Write(r)
	}
	return b.String()
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func waitJSON(t *testing.T, c *clienttest.Client, event string, d time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	args, err := c.Wait(ctx, event)
	if err != nil {
		t.Fatalf("waiting for %s: %v", event, err)
	}
	var m map[string]any
	if len(args) == 0 || json.Unmarshal(args[0], &m) != nil {
		t.Fatalf("%s: payload %s", event, args)
	}
	return m
}

// alive checks the connection still answers (lobby:leave of a lobby not followed is a harmless no-op).
func alive(t *testing.T, c *clienttest.Client, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.EmitWithAck(ctx, "lobby:leave", map[string]any{"lobbyId": "probe"})
	if err != nil || len(res) == 0 || !strings.Contains(string(res[0]), `"ok":true`) {
		t.Fatalf("%s: connection no longer usable: %v %s", what, err, res)
	}
}

func with(base map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range base {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func without(base map[string]any, k string) map[string]any {
	out := map[string]any{}
	for kk, vv := range base {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

// hostileCases generates the mutations of one event.
func hostileCases(e hostileEvent) []hostileCase {
	v := []string{"VALIDATION_ERROR"}
	huge := strings.Repeat("A", 900_000) // under MAX_PAYLOAD (1 MB), so it reaches the handler
	cs := []hostileCase{
		{name: "no payload", noArgs: true, codes: v},
		{name: "null", payload: nil, codes: v},
		{name: "number", payload: 42, codes: v},
		{name: "string", payload: "lobby:x", codes: v},
		{name: "array", payload: []any{e.base}, codes: v},
		{name: "boolean", payload: true, codes: v},
		{name: "empty object", payload: map[string]any{}, codes: v},
		{name: "extra field", payload: with(e.base, "isAdmin", true), codes: v},
		{name: "operator key", payload: with(e.base, "$where", "1 == 1"), codes: v},
		{name: "prototype key", payload: with(e.base, "__proto__", map[string]any{"isHost": true}), codes: v},
	}
	for _, f := range e.fields {
		wrong := any(42)
		if f.kind == kBool {
			wrong = "true"
		}
		cs = append(cs,
			hostileCase{name: f.name + " wrong type", payload: with(e.base, f.name, wrong), codes: v},
			hostileCase{name: f.name + " $ne", payload: with(e.base, f.name, map[string]any{"$ne": ""}), codes: v},
			hostileCase{name: f.name + " $gt", payload: with(e.base, f.name, map[string]any{"$gt": ""}), codes: v},
			hostileCase{name: f.name + " $regex", payload: with(e.base, f.name, map[string]any{"$regex": ".*"}), codes: v},
			hostileCase{name: f.name + " array", payload: with(e.base, f.name, []any{"x"}), codes: v},
		)
		if f.kind == kString {
			codes := f.hugeCodes
			if codes == nil {
				codes = v
			}
			cs = append(cs, hostileCase{name: f.name + " huge string", payload: with(e.base, f.name, huge), codes: codes})
		}
		if f.required {
			cs = append(cs, hostileCase{name: f.name + " missing", payload: without(e.base, f.name), codes: v},
				hostileCase{name: f.name + " null", payload: with(e.base, f.name, nil), codes: v})
		}
	}
	return cs
}

func TestHostileSocketEvents(t *testing.T) {
	alice, bob, carol, mallory := register(t), register(t), register(t), register(t)
	secrets := []string{alice.Username, alice.Email, bob.Username, bob.Email, carol.Username, carol.Email}

	// Victims' objects: alice's lobby with bob, alice↔bob direct chat with a message, carol's match request.
	al := createLobby(t, alice, nil)["id"].(string)
	joinLobby(t, bob, al)
	dc := directChat(t, alice, bob)
	bobSock := lobbyDial(t, bob)
	lobbyAck(t, bobSock, "lobby:join", map[string]any{"lobbyId": al})
	if a := lobbyAck(t, bobSock, "chat:join", map[string]any{"chatId": dc}); a["ok"] != true {
		t.Fatalf("bob chat:join: %v", a)
	}
	sent := lobbyAck(t, bobSock, "chat:message", map[string]any{"chatId": dc, "content": "private to alice"})
	dcMsg := sent["message"].(map[string]any)["id"].(string)
	r := call(t, "POST", "/api/matchmaking", carol.Access, map[string]any{"gameId": "arena-shooter", "gameMode": "5v5",
		"region": "hostile-socket", "skill": 1000})
	if r.Status != http.StatusCreated {
		t.Fatalf("carol search: %d %s", r.Status, r.Raw)
	}
	cr := r.data()["matchRequestId"].(string)

	// The attacker: her own lobby and its chat, joined.
	ml := createLobby(t, mallory, nil)["id"].(string)
	m := lobbyDial(t, mallory)
	if a := lobbyAck(t, m, "chat:join", map[string]any{"chatId": "lobby:" + ml}); a["ok"] != true {
		t.Fatalf("mallory chat:join: %v", a)
	}
	lobbyAck(t, m, "lobby:join", map[string]any{"lobbyId": ml})
	for _, ev := range []string{"chat:joined", "lobby:joined", "lobby:update"} {
		waitJSON(t, m, ev, 5*time.Second)
	}
	before := settledCounts(t)

	own := "lobby:" + ml
	fake := "656565656565656565656565"
	lobbyHuge := []string{"VALIDATION_ERROR"}
	events := []hostileEvent{
		{"user:status", map[string]any{"status": "away"}, []hostileField{{name: "status", kind: kString, required: true}}},
		{"chat:join", map[string]any{"chatId": own}, []hostileField{{name: "chatId", kind: kString, required: true}}},
		{"chat:leave", map[string]any{"chatId": own + "x"}, []hostileField{{name: "chatId", kind: kString, required: true}}},
		{"chat:message", map[string]any{"chatId": own, "content": "hi", "contentType": "text"}, []hostileField{
			{name: "chatId", kind: kString, required: true}, {name: "content", kind: kString, required: true},
			{name: "contentType", kind: kString}, {name: "clientMessageId", kind: kString}}},
		{"chat:typing", map[string]any{"chatId": own, "isTyping": true}, []hostileField{
			{name: "chatId", kind: kString, required: true}, {name: "isTyping", kind: kBool, required: true}}},
		{"chat:read", map[string]any{"chatId": own}, []hostileField{
			{name: "chatId", kind: kString, required: true},
			{name: "lastMessageId", kind: kString, hugeCodes: []string{"VALIDATION_ERROR", "MESSAGE_ERROR", "NOT_FOUND"}}}},
		{"lobby:join", map[string]any{"lobbyId": ml}, []hostileField{{name: "lobbyId", kind: kString, required: true, hugeCodes: lobbyHuge}}},
		{"lobby:subscribe", map[string]any{"lobbyId": ml}, []hostileField{{name: "lobbyId", kind: kString, required: true, hugeCodes: lobbyHuge}}},
		{"lobby:leave", map[string]any{"lobbyId": fake}, []hostileField{{name: "lobbyId", kind: kString, required: true, hugeCodes: lobbyHuge}}},
		{"lobby:ready", map[string]any{"lobbyId": ml, "isReady": false}, []hostileField{
			{name: "lobbyId", kind: kString, required: true, hugeCodes: lobbyHuge}, {name: "isReady", kind: kBool, required: true}}},
		{"lobby:kick", map[string]any{"lobbyId": ml, "userId": alice.ID}, []hostileField{
			{name: "lobbyId", kind: kString, required: true, hugeCodes: lobbyHuge},
			{name: "userId", kind: kString, required: true, hugeCodes: []string{"VALIDATION_ERROR", "KICK_ERROR"}}}},
		{"matchmaking:subscribe", map[string]any{"requestId": fake}, []hostileField{
			{name: "requestId", kind: kString, required: true, hugeCodes: []string{"VALIDATION_ERROR", "MATCH_NOT_FOUND"}}}},
		{"matchmaking:unsubscribe", map[string]any{"requestId": fake}, []hostileField{
			{name: "requestId", kind: kString, required: true, hugeCodes: []string{"VALIDATION_ERROR", "MATCH_NOT_FOUND"}}}},
		{"matchmaking:cancel", map[string]any{"requestId": fake}, []hostileField{
			{name: "requestId", kind: kString, required: true, hugeCodes: []string{"VALIDATION_ERROR", "MATCH_NOT_FOUND"}}}},
	}
	total := 0
	for _, e := range events {
		for _, tc := range hostileCases(e) {
			what := e.event + " / " + tc.name
			args := []any{tc.payload}
			if tc.noArgs {
				args = nil
			}
			socketFailure(t, m, what, e.event, args, tc.codes, secrets...)
			total++
		}
		// Without an ack the error event alone answers.
		if err := m.Emit(e.event, 42); err != nil {
			t.Fatal(err)
		}
		if ev := waitJSON(t, m, "error", 5*time.Second); ev["code"] != "VALIDATION_ERROR" {
			t.Errorf("%s without ack: %v", e.event, ev)
		}
		alive(t, m, e.event)
	}
	sameCounts(t, before, "malformed payloads")

	// Other users' objects: the documented refusal, nothing written, the victims hear nothing.
	foreign := []struct {
		event   string
		payload map[string]any
		codes   []string
	}{
		{"chat:join", map[string]any{"chatId": dc}, []string{"ACCESS_DENIED"}},
		{"chat:join", map[string]any{"chatId": "lobby:" + al}, []string{"ACCESS_DENIED"}},
		{"chat:message", map[string]any{"chatId": dc, "content": "spoofed"}, []string{"NOT_IN_CHAT"}},
		{"chat:message", map[string]any{"chatId": "lobby:" + al, "content": "spoofed"}, []string{"NOT_IN_CHAT"}},
		{"chat:typing", map[string]any{"chatId": dc, "isTyping": true}, []string{"NOT_IN_CHAT"}},
		{"chat:read", map[string]any{"chatId": dc}, []string{"ACCESS_DENIED"}},
		{"chat:read", map[string]any{"chatId": dc, "lastMessageId": dcMsg}, []string{"ACCESS_DENIED"}},
		{"chat:read", map[string]any{"chatId": own, "lastMessageId": dcMsg}, []string{"VALIDATION_ERROR", "NOT_FOUND", "MESSAGE_ERROR"}},
		{"lobby:join", map[string]any{"lobbyId": al}, []string{"ACCESS_DENIED"}},
		{"lobby:subscribe", map[string]any{"lobbyId": al}, []string{"ACCESS_DENIED"}},
		{"lobby:ready", map[string]any{"lobbyId": al, "isReady": true}, []string{"ACCESS_DENIED", "LOBBY_ERROR", "READY_ERROR"}},
		{"lobby:kick", map[string]any{"lobbyId": al, "userId": bob.ID}, []string{"NOT_HOST", "ACCESS_DENIED"}},
		{"lobby:kick", map[string]any{"lobbyId": ml, "userId": alice.ID}, []string{"KICK_ERROR", "LOBBY_ERROR", "NOT_FOUND"}},
		{"matchmaking:subscribe", map[string]any{"requestId": cr}, []string{"MATCH_NOT_FOUND"}},
		{"matchmaking:subscribe", map[string]any{"matchRequestId": cr}, []string{"MATCH_NOT_FOUND"}},
		{"matchmaking:cancel", map[string]any{"requestId": cr}, []string{"MATCH_NOT_FOUND"}},
	}
	before = settledCounts(t)
	for _, f := range foreign {
		socketFailure(t, m, "foreign "+f.event, f.event, []any{f.payload}, f.codes, secrets...)
		total++
	}
	alive(t, m, "after foreign ids")
	sameCounts(t, before, "other users' objects")
	for _, ev := range []string{"chat:member:joined", "chat:message", "chat:typing", "chat:read", "lobby:member:joined",
		"lobby:member:ready", "lobby:member:kicked", "lobby:kicked"} {
		if n := bobSock.Pending(ev); n != 0 && ev != "chat:message" {
			t.Errorf("victim got %d %s", n, ev)
		}
	}
	if n := bobSock.Pending("chat:message"); n > 1 { // bob's own message only
		t.Errorf("victim got %d chat:message", n)
	}
	if n := chatCount(t, dc); n != 1 {
		t.Errorf("direct chat has %d messages, want 1", n)
	}
	// Victims' state is intact.
	if r := call(t, "GET", "/api/lobbies/"+al, alice.Access, nil); r.Status != 200 || len(r.data()["members"].([]any)) != 2 ||
		r.data()["status"] != "forming" {
		t.Errorf("alice's lobby changed: %d %s", r.Status, r.Raw)
	}
	if r := call(t, "GET", "/api/matchmaking/"+cr, carol.Access, nil); r.Status != 200 || r.data()["status"] == "cancelled" {
		t.Errorf("carol's request changed: %d %s", r.Status, r.Raw)
	}
	_ = call(t, "DELETE", "/api/matchmaking/"+cr, carol.Access, nil)
	t.Logf("%d hostile socket events answered with the documented error", total)
}

// A message over MAX_PAYLOAD (1 MB string) is not a handler matter: the engine closes that connection,
// nothing is written, and every other connection keeps working.
func TestHostileSocketOverMaxPayload(t *testing.T) {
	mallory, other := register(t), register(t)
	ml := createLobby(t, mallory, nil)["id"].(string)
	m := lobbyDial(t, mallory)
	if a := lobbyAck(t, m, "chat:join", map[string]any{"chatId": "lobby:" + ml}); a["ok"] != true {
		t.Fatalf("chat:join: %v", a)
	}
	o := lobbyDial(t, other)
	before := settledCounts(t)
	if err := m.Emit("chat:message", map[string]any{"chatId": "lobby:" + ml, "content": strings.Repeat("B", 1<<20)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Closed: with WebSocket close code 1009 (message too big) or an engine close reason.
	if reason, err := m.WaitDisconnect(ctx); ctx.Err() != nil {
		t.Fatalf("oversized message did not close the connection: %q %v", reason, err)
	}
	sameCounts(t, before, "oversized message")
	alive(t, o, "other connection")
}
