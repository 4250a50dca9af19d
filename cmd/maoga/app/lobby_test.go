package app_test

// Lobbies through the whole server: REST calls and real Socket.IO clients (clienttest). Every socket
// event and every error code of EVENTS.md's Lobby section. (Written by the lobby helper.)

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/clienttest"
)

// lobbyDial connects and waits until the lobby handlers are registered (server/socketio may dispatch
// an event that arrives right after CONNECT before the connection handlers ran; see
// clienttest/race_test.go): lobby:leave of a lobby the socket does not follow is harmless.
func lobbyDial(t *testing.T, u *testUser) *clienttest.Client {
	t.Helper()
	c := dialURL(t, baseURL, u.Access)
	t.Cleanup(func() { _ = c.Close() })
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.EmitWithAck(ctx, "lobby:leave", map[string]any{"lobbyId": "warm-up"})
		cancel()
		if err == nil {
			return c
		}
		if i == 25 {
			t.Fatalf("lobby handlers never answered: %v", err)
		}
	}
}

// lobbyAck emits with an ack and decodes the ack's first argument.
func lobbyAck(t *testing.T, c *clienttest.Client, event string, payload any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.EmitWithAck(ctx, event, payload)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var m map[string]any
	if err := json.Unmarshal(args[0], &m); err != nil {
		t.Fatalf("%s ack %s: %v", event, args[0], err)
	}
	return m
}

// lobbyNext waits for the next event and decodes its first argument.
func lobbyNext(t *testing.T, c *clienttest.Client, event string) map[string]any {
	t.Helper()
	var m map[string]any
	notifNext(t, c, event, &m)
	return m
}

// lobbyNone checks that no event named event arrived (after giving in-flight events a moment).
func lobbyNone(t *testing.T, c *clienttest.Client, event string) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if n := c.Pending(event); n != 0 {
		args, _ := c.Wait(context.Background(), event)
		t.Fatalf("unexpected %s (%d queued): %s", event, n, args[0])
	}
}

// lobbyFail emits with an ack and checks both the `error` event and the failed ack carry code.
func lobbyFail(t *testing.T, c *clienttest.Client, event string, payload any, code string) {
	t.Helper()
	a := lobbyAck(t, c, event, payload)
	e, _ := a["error"].(map[string]any)
	if a["ok"] != false || e["code"] != code || e["message"] == "" {
		t.Fatalf("%s %v: want ack with %s, got %v", event, payload, code, a)
	}
	ev := lobbyNext(t, c, "error")
	if ev["code"] != code || ev["message"] != e["message"] {
		t.Fatalf("%s: error event %v, ack %v", event, ev, a)
	}
}

func createLobby(t *testing.T, host *testUser, body map[string]any) map[string]any {
	t.Helper()
	if body == nil {
		body = map[string]any{"gameId": "party-trivia", "gameMode": "casual"}
	}
	r := call(t, "POST", "/api/lobbies", host.Access, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create lobby: %d %s", r.Status, r.Raw)
	}
	return r.data()
}

func joinLobby(t *testing.T, u *testUser, id string) {
	t.Helper()
	if r := call(t, "POST", "/api/lobbies/"+id+"/join", u.Access, nil); r.Status != http.StatusOK {
		t.Fatalf("join: %d %s", r.Status, r.Raw)
	}
}

func TestLobbyREST(t *testing.T) {
	host, bob, outsider := register(t), register(t), register(t)

	expect(t, call(t, "POST", "/api/lobbies", "", map[string]any{"gameId": "party-trivia", "gameMode": "casual"}), 401, "UNAUTHORIZED")
	r := call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameMode": "casual"})
	expect(t, r, 400, "VALIDATION_ERROR")
	if r.errField("gameId") == "" {
		t.Fatalf("details: %s", r.Raw)
	}
	expect(t, call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameId": "nope", "gameMode": "casual"}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameId": "party-trivia", "gameMode": "casual",
		"capacity": map[string]any{"min": 1, "max": 8}}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameId": "party-trivia", "gameMode": "casual", "extra": 1}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/lobbies", host.Access, `{"gameId": {"$ne": 1}, "gameMode": "casual"}`), 400, "VALIDATION_ERROR")

	l := createLobby(t, host, map[string]any{"gameId": "party-trivia", "gameMode": "casual",
		"capacity": map[string]any{"min": 2, "max": 3}, "settings": map[string]any{"map": "quiz"}, "visibility": "private"})
	id := l["id"].(string)
	capacity := l["capacity"].(map[string]any)
	members := l["members"].([]any)
	if l["lobbyId"] != id || l["hostId"] != host.ID || l["status"] != "forming" || capacity["max"] != 3.0 || len(members) != 1 ||
		members[0].(map[string]any)["isHost"] != true || l["settings"].(map[string]any)["map"] != "quiz" || l["visibility"] != "private" {
		t.Fatalf("created: %v", l)
	}
	expect(t, call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameId": "party-trivia", "gameMode": "casual"}), 409, "CONFLICT")

	expect(t, call(t, "GET", "/api/lobbies/"+id, outsider.Access, nil), 403, "ACCESS_DENIED")
	expect(t, call(t, "GET", "/api/lobbies/"+bson.NewObjectID().Hex(), host.Access, nil), 404, "LOBBY_NOT_FOUND")
	expect(t, call(t, "GET", "/api/lobbies/nope", host.Access, nil), 404, "LOBBY_NOT_FOUND")
	if r := call(t, "GET", "/api/lobbies/"+id, host.Access, nil); r.Status != 200 || r.data()["id"] != id {
		t.Fatalf("get: %d %s", r.Status, r.Raw)
	}

	joinLobby(t, bob, id)
	expect(t, call(t, "POST", "/api/lobbies/"+bson.NewObjectID().Hex()+"/join", outsider.Access, nil), 404, "LOBBY_NOT_FOUND")
	// bob sits in this lobby: another one is refused.
	other := createLobby(t, outsider, nil)
	expect(t, call(t, "POST", "/api/lobbies/"+other["id"].(string)+"/join", bob.Access, nil), 409, "JOIN_ERROR")
	// Full: capacity.max 3.
	third := register(t)
	joinLobby(t, third, id)
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/join", register(t).Access, nil), 409, "JOIN_ERROR")

	expect(t, call(t, "PATCH", "/api/lobbies/"+id, bob.Access, map[string]any{"settings": map[string]any{"map": "x"}}), 403, "NOT_HOST")
	expect(t, call(t, "PATCH", "/api/lobbies/"+id, host.Access, map[string]any{}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "PATCH", "/api/lobbies/"+id, host.Access, map[string]any{"capacity": map[string]any{"min": 2, "max": 2}}), 409, "LOBBY_ERROR")
	expect(t, call(t, "PATCH", "/api/lobbies/"+id, host.Access, map[string]any{"settings": map[string]any{"deep": map[string]any{"a": 1}}}), 400, "VALIDATION_ERROR")
	r = call(t, "PATCH", "/api/lobbies/"+id, host.Access, map[string]any{"settings": map[string]any{"map": "history", "rounds": 10},
		"capacity": map[string]any{"min": 3, "max": 4}})
	if r.Status != 200 || r.data()["settings"].(map[string]any)["rounds"] != 10.0 || r.data()["capacity"].(map[string]any)["min"] != 3.0 {
		t.Fatalf("patch: %d %s", r.Status, r.Raw)
	}

	expect(t, call(t, "POST", "/api/lobbies/"+id+"/ready", bob.Access, map[string]any{}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/ready", bob.Access, map[string]any{"isReady": "yes"}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/ready", outsider.Access, map[string]any{"isReady": true}), 409, "LOBBY_ERROR")
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/start", host.Access, nil), 409, "LOBBY_ERROR")
	for _, u := range []*testUser{host, bob, third} {
		r = call(t, "POST", "/api/lobbies/"+id+"/ready", u.Access, map[string]any{"isReady": true})
		if r.Status != 200 {
			t.Fatalf("ready: %d %s", r.Status, r.Raw)
		}
	}
	if r.data()["status"] != "ready" || r.data()["readyAt"] == nil {
		t.Fatalf("all ready: %s", r.Raw)
	}
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/start", bob.Access, nil), 403, "NOT_HOST")
	r = call(t, "POST", "/api/lobbies/"+id+"/start", host.Access, nil)
	if r.Status != 200 || r.data()["status"] != "active" || r.data()["startedAt"] == nil {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/ready", bob.Access, map[string]any{"isReady": false}), 409, "READY_ERROR")

	expect(t, call(t, "POST", "/api/lobbies/"+id+"/leave", outsider.Access, nil), 403, "ACCESS_DENIED")
	if r := call(t, "POST", "/api/lobbies/"+id+"/leave", third.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Raw)
	}
	expect(t, call(t, "GET", "/api/lobbies/"+id, third.Access, nil), 403, "ACCESS_DENIED")
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/close", bob.Access, nil), 403, "NOT_HOST")
	r = call(t, "POST", "/api/lobbies/"+id+"/close", host.Access, nil)
	if r.Status != 200 || r.data()["status"] != "closed" {
		t.Fatalf("close: %d %s", r.Status, r.Raw)
	}
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/close", host.Access, nil), 409, "LOBBY_ERROR")
	// Closed: everyone may sit elsewhere again.
	createLobby(t, bob, nil)
}

func TestLobbySocketFollowReadyLeave(t *testing.T) {
	host, bob := register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, id)
	hs, bs := lobbyDial(t, host), lobbyDial(t, bob)

	a := lobbyAck(t, hs, "lobby:join", map[string]any{"lobbyId": id})
	if a["ok"] != true || a["lobbyId"] != id || a["lobby"].(map[string]any)["id"] != id {
		t.Fatalf("join ack: %v", a)
	}
	if j := lobbyNext(t, hs, "lobby:joined"); j["lobbyId"] != id {
		t.Fatalf("lobby:joined: %v", j)
	}
	up := lobbyNext(t, hs, "lobby:update")
	u := up["update"].(map[string]any)
	if up["lobbyId"] != id || u["status"] != "forming" || u["hostId"] != host.ID || len(u["members"].([]any)) != 2 ||
		u["capacity"] == nil || u["settings"] == nil || u["updatedAt"] == nil {
		t.Fatalf("lobby:update: %v", up)
	}

	// The alias, without an ack: the events alone.
	if err := bs.Emit("lobby:subscribe", map[string]any{"lobbyId": id}); err != nil {
		t.Fatal(err)
	}
	lobbyNext(t, bs, "lobby:joined")
	lobbyNext(t, bs, "lobby:update")
	mj := lobbyNext(t, hs, "lobby:member:joined")
	user := mj["user"].(map[string]any)
	if mj["lobbyId"] != id || user["id"] != bob.ID || user["username"] != bob.Username || user["displayName"] == nil {
		t.Fatalf("lobby:member:joined: %v", mj)
	}
	lobbyNone(t, bs, "lobby:member:joined") // not to the joiner itself

	a = lobbyAck(t, bs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": true})
	if a["ok"] != true || a["isReady"] != true || a["status"] != "forming" {
		t.Fatalf("ready ack: %v", a)
	}
	for _, c := range []*clienttest.Client{hs, bs} {
		mr := lobbyNext(t, c, "lobby:member:ready")
		if mr["lobbyId"] != id || mr["isReady"] != true || mr["user"].(map[string]any)["id"] != bob.ID || mr["user"].(map[string]any)["username"] != bob.Username {
			t.Fatalf("lobby:member:ready: %v", mr)
		}
		if s := lobbyNext(t, c, "lobby:update")["update"].(map[string]any)["status"]; s != "forming" {
			t.Fatalf("status %v", s)
		}
	}
	lobbyAck(t, hs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": true})
	for _, c := range []*clienttest.Client{hs, bs} {
		lobbyNext(t, c, "lobby:member:ready")
		rd := lobbyNext(t, c, "lobby:ready")
		if rd["lobbyId"] != id {
			t.Fatalf("lobby:ready: %v", rd)
		}
		if _, err := time.Parse(time.RFC3339, rd["readyAt"].(string)); err != nil {
			t.Fatalf("readyAt: %v", rd)
		}
		if s := lobbyNext(t, c, "lobby:update")["update"].(map[string]any)["status"]; s != "ready" {
			t.Fatalf("status %v", s)
		}
	}
	// Un-ready: back to forming, and no lobby:ready.
	lobbyAck(t, bs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": false})
	lobbyNext(t, hs, "lobby:member:ready")
	if s := lobbyNext(t, hs, "lobby:update")["update"].(map[string]any)["status"]; s != "forming" {
		t.Fatalf("status after un-ready %v", s)
	}
	lobbyNone(t, hs, "lobby:ready")

	// bob stops following: the host hears lobby:member:left, bob hears nothing more.
	lobbyNext(t, bs, "lobby:member:ready")
	lobbyNext(t, bs, "lobby:update")
	a = lobbyAck(t, bs, "lobby:leave", map[string]any{"lobbyId": id})
	if a["ok"] != true || a["lobbyId"] != id {
		t.Fatalf("leave ack: %v", a)
	}
	ml := lobbyNext(t, hs, "lobby:member:left")
	if ml["lobbyId"] != id || ml["user"].(map[string]any)["id"] != bob.ID || ml["user"].(map[string]any)["username"] != bob.Username {
		t.Fatalf("lobby:member:left: %v", ml)
	}
	lobbyAck(t, hs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": false})
	lobbyNext(t, hs, "lobby:member:ready")
	lobbyNone(t, bs, "lobby:member:ready")
	// bob is still a member for good.
	if r := call(t, "GET", "/api/lobbies/"+id, bob.Access, nil); r.Status != 200 {
		t.Fatalf("bob after lobby:leave: %d", r.Status)
	}
}

func TestLobbySocketErrors(t *testing.T) {
	host, bob, outsider := register(t), register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, id)
	hs, bs, outs := lobbyDial(t, host), lobbyDial(t, bob), lobbyDial(t, outsider)

	for _, ev := range []string{"lobby:join", "lobby:subscribe", "lobby:leave", "lobby:ready", "lobby:kick"} {
		lobbyFail(t, outs, ev, map[string]any{}, "VALIDATION_ERROR")
		lobbyFail(t, outs, ev, "not an object", "VALIDATION_ERROR")
		lobbyFail(t, outs, ev, map[string]any{"lobbyId": 12}, "VALIDATION_ERROR")
	}
	lobbyFail(t, outs, "lobby:ready", map[string]any{"lobbyId": id}, "VALIDATION_ERROR")
	lobbyFail(t, outs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": "yes"}, "VALIDATION_ERROR")
	lobbyFail(t, outs, "lobby:kick", map[string]any{"lobbyId": id}, "VALIDATION_ERROR")
	lobbyFail(t, outs, "lobby:join", map[string]any{"lobbyId": id, "extra": true}, "VALIDATION_ERROR")

	lobbyFail(t, outs, "lobby:join", map[string]any{"lobbyId": bson.NewObjectID().Hex()}, "LOBBY_NOT_FOUND")
	lobbyFail(t, outs, "lobby:join", map[string]any{"lobbyId": "nope"}, "LOBBY_NOT_FOUND")
	lobbyFail(t, outs, "lobby:kick", map[string]any{"lobbyId": bson.NewObjectID().Hex(), "userId": bob.ID}, "LOBBY_NOT_FOUND")
	lobbyFail(t, outs, "lobby:ready", map[string]any{"lobbyId": bson.NewObjectID().Hex(), "isReady": true}, "LOBBY_NOT_FOUND")
	lobbyFail(t, outs, "lobby:join", map[string]any{"lobbyId": id}, "ACCESS_DENIED")
	lobbyFail(t, outs, "lobby:subscribe", map[string]any{"lobbyId": id}, "ACCESS_DENIED")
	lobbyFail(t, outs, "lobby:kick", map[string]any{"lobbyId": id, "userId": bob.ID}, "ACCESS_DENIED")
	lobbyFail(t, outs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": true}, "LOBBY_ERROR")
	lobbyFail(t, bs, "lobby:kick", map[string]any{"lobbyId": id, "userId": host.ID}, "NOT_HOST")
	lobbyFail(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": outsider.ID}, "KICK_ERROR")
	lobbyFail(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": host.ID}, "KICK_ERROR")
	lobbyFail(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": "nope"}, "KICK_ERROR")

	// Active lobby: ready changes are READY_ERROR.
	for _, c := range []*clienttest.Client{hs, bs} {
		lobbyAck(t, c, "lobby:ready", map[string]any{"lobbyId": id, "isReady": true})
	}
	if r := call(t, "POST", "/api/lobbies/"+id+"/start", host.Access, nil); r.Status != 200 {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	lobbyFail(t, bs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": false}, "READY_ERROR")
	// Closed lobby: lobby:join is JOIN_ERROR, lobby:kick LOBBY_ERROR.
	if r := call(t, "POST", "/api/lobbies/"+id+"/close", host.Access, nil); r.Status != 200 {
		t.Fatalf("close: %d %s", r.Status, r.Raw)
	}
	lobbyFail(t, hs, "lobby:join", map[string]any{"lobbyId": id}, "JOIN_ERROR")
	lobbyFail(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": bob.ID}, "LOBBY_ERROR")
	// Without an ack the failure still arrives as the error event.
	if err := outs.Emit("lobby:join", map[string]any{"lobbyId": id}); err != nil {
		t.Fatal(err)
	}
	if e := lobbyNext(t, outs, "error"); e["code"] != "JOIN_ERROR" {
		t.Fatalf("error event: %v", e)
	}
}

// socketsIn lists the socket ids in a room of the main namespace.
func socketsIn(t *testing.T, room string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := srv.IO.Of("/").In(room).FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range list {
		out[s.ID()] = true
	}
	return out
}

func TestLobbyKickOverSockets(t *testing.T) {
	host, bob, carol := register(t), register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, id)
	joinLobby(t, carol, id)
	hs, cs := lobbyDial(t, host), lobbyDial(t, carol)
	b1, b2 := lobbyDial(t, bob), lobbyDial(t, bob) // two tabs
	for _, c := range []*clienttest.Client{hs, cs, b1, b2} {
		lobbyAck(t, c, "lobby:join", map[string]any{"lobbyId": id})
	}
	// bob's tabs also sit in the lobby chat room (joined server-side: the chat feature is not needed here).
	if err := srv.IO.Of("/").In("user:" + bob.ID).SocketsJoin("chat:lobby:" + id); err != nil {
		t.Fatal(err)
	}
	if in := socketsIn(t, "chat:lobby:"+id); !in[b1.ID()] || !in[b2.ID()] {
		t.Fatalf("chat room before the kick: %v", in)
	}
	time.Sleep(100 * time.Millisecond) // let the join broadcasts arrive, then forget them
	for _, c := range []*clienttest.Client{hs, cs, b1, b2} {
		for _, ev := range []string{"lobby:joined", "lobby:update", "lobby:member:joined"} {
			for c.Pending(ev) > 0 {
				lobbyNext(t, c, ev)
			}
		}
	}

	a := lobbyAck(t, hs, "lobby:kick", map[string]any{"lobbyId": id, "userId": bob.ID})
	if a["ok"] != true || a["userId"] != bob.ID {
		t.Fatalf("kick ack: %v", a)
	}
	for _, c := range []*clienttest.Client{b1, b2} {
		k := lobbyNext(t, c, "lobby:kicked")
		if k["lobbyId"] != id || k["reason"] != "You have been kicked from the lobby" {
			t.Fatalf("lobby:kicked: %v", k)
		}
	}
	for _, c := range []*clienttest.Client{hs, cs} {
		mk := lobbyNext(t, c, "lobby:member:kicked")
		if mk["lobbyId"] != id || mk["userId"] != bob.ID {
			t.Fatalf("lobby:member:kicked: %v", mk)
		}
		var kicked map[string]any
		for _, m := range lobbyNext(t, c, "lobby:update")["update"].(map[string]any)["members"].([]any) {
			if m.(map[string]any)["userId"] == bob.ID {
				kicked = m.(map[string]any)
			}
		}
		if kicked["status"] != "kicked" || kicked["leftAt"] == nil {
			t.Fatalf("bob in the update: %v", kicked)
		}
	}
	lobbyNone(t, b1, "lobby:member:kicked")
	if in := socketsIn(t, "lobby:"+id); in[b1.ID()] || in[b2.ID()] || !in[hs.ID()] || !in[cs.ID()] {
		t.Fatalf("lobby room after the kick: %v", in)
	}
	if in := socketsIn(t, "chat:lobby:"+id); in[b1.ID()] || in[b2.ID()] {
		t.Fatalf("chat room after the kick: %v", in)
	}
	// Kicked stays kicked.
	lobbyFail(t, b1, "lobby:join", map[string]any{"lobbyId": id}, "ACCESS_DENIED")
	expect(t, call(t, "POST", "/api/lobbies/"+id+"/join", bob.Access, nil), 409, "JOIN_ERROR")
	lobbyAck(t, cs, "lobby:ready", map[string]any{"lobbyId": id, "isReady": true})
	lobbyNext(t, hs, "lobby:member:ready")
	lobbyNone(t, b2, "lobby:member:ready")
}

func TestLobbyHostChangeAndClosed(t *testing.T) {
	host, bob, carol := register(t), register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, id)
	joinLobby(t, carol, id)
	hs, bs, cs := lobbyDial(t, host), lobbyDial(t, bob), lobbyDial(t, carol)
	for _, c := range []*clienttest.Client{hs, bs, cs} {
		lobbyAck(t, c, "lobby:join", map[string]any{"lobbyId": id})
	}
	// A REST join while following: member:joined + update to the room.
	dave := register(t)
	joinLobby(t, dave, id)
	for _, c := range []*clienttest.Client{bs, cs} {
		for {
			mj := lobbyNext(t, c, "lobby:member:joined")
			if mj["user"].(map[string]any)["id"] == dave.ID {
				break
			}
		}
	}

	if r := call(t, "POST", "/api/lobbies/"+id+"/leave", host.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Raw)
	}
	for _, c := range []*clienttest.Client{bs, cs} {
		ml := lobbyNext(t, c, "lobby:member:left")
		if ml["user"].(map[string]any)["id"] != host.ID {
			t.Fatalf("member left: %v", ml)
		}
		hc := lobbyNext(t, c, "lobby:host:changed")
		if hc["lobbyId"] != id || hc["hostId"] != bob.ID { // bob joined before carol
			t.Fatalf("lobby:host:changed: %v", hc)
		}
	}
	// The leaver's socket no longer follows the lobby.
	if in := socketsIn(t, "lobby:"+id); in[hs.ID()] || !in[bs.ID()] {
		t.Fatalf("room after leave: %v", in)
	}
	// The new host can kick and close; closing reaches every follower with the reason.
	if r := call(t, "POST", "/api/lobbies/"+id+"/close", carol.Access, nil); r.Status != 403 {
		t.Fatalf("close by carol: %d", r.Status)
	}
	if r := call(t, "POST", "/api/lobbies/"+id+"/close", bob.Access, nil); r.Status != 200 {
		t.Fatalf("close: %d %s", r.Status, r.Raw)
	}
	for _, c := range []*clienttest.Client{bs, cs} {
		cl := lobbyNext(t, c, "lobby:closed")
		if cl["lobbyId"] != id || cl["reason"] != "host_closed" {
			t.Fatalf("lobby:closed: %v", cl)
		}
	}
	lobbyNone(t, hs, "lobby:closed")
	if in := socketsIn(t, "lobby:"+id); len(in) != 0 {
		t.Fatalf("room after close: %v", in)
	}
}

func TestLobbyLastMemberLeavesCloses(t *testing.T) {
	host, bob := register(t), register(t)
	id := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, id)
	bs := lobbyDial(t, bob)
	lobbyAck(t, bs, "lobby:join", map[string]any{"lobbyId": id})
	call(t, "POST", "/api/lobbies/"+id+"/leave", host.Access, nil)
	lobbyNext(t, bs, "lobby:host:changed")
	if r := call(t, "POST", "/api/lobbies/"+id+"/leave", bob.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d", r.Status)
	}
	l, err := srv.Lobbies.Find(context.Background(), id)
	if err != nil || l.Status != "closed" {
		t.Fatalf("lobby after the last leave: %+v %v", l, err)
	}
	// Both may open new lobbies.
	createLobby(t, host, nil)
	createLobby(t, bob, nil)
}

func TestLobbyRacingJoinsOverREST(t *testing.T) {
	for round := 0; round < 5; round++ {
		host := register(t)
		id := createLobby(t, host, map[string]any{"gameId": "arena-shooter", "gameMode": "1v1"})["id"].(string) // max 2
		racers := []*testUser{register(t), register(t), register(t), register(t)}
		codes := make([]int, len(racers))
		var wg sync.WaitGroup
		for i, u := range racers {
			wg.Add(1)
			go func(i int, u *testUser) {
				defer wg.Done()
				codes[i] = call(t, "POST", "/api/lobbies/"+id+"/join", u.Access, nil).Status
			}(i, u)
		}
		wg.Wait()
		ok := 0
		for _, c := range codes {
			if c == 200 {
				ok++
			} else if c != 409 {
				t.Fatalf("join status %d", c)
			}
		}
		l, err := srv.Lobbies.Find(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok != 1 || len(l.ActiveMemberIDs) != 2 {
			t.Fatalf("round %d: %d joins won, %d members", round, ok, len(l.ActiveMemberIDs))
		}
	}
}
