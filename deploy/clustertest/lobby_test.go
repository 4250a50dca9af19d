package clustertest

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// lobbyScenario plays one lobby across two processes: the host on node 1, three members on node 2.
// Chat messages, typing and ready cross the nodes both ways; the host's kick (node 1) takes the
// kicked user's socket on node 2 out of the lobby and lobby-chat rooms (no more chat:message,
// lobby:kicked, rejoin refused); a member who leaves for good over REST on node 1 loses access at
// once on node 2.
func lobbyScenario(t *testing.T, c *cluster) {
	n1, n2 := c.nodes[0], c.nodes[1]
	hID, hTok := n1.register(t)
	bID, bTok := n2.register(t)
	cID, cTok := n2.register(t)
	dID, dTok := n1.register(t)

	lobby := n1.call(t, "POST", "/api/lobbies", hTok, map[string]any{"gameId": "party-trivia", "gameMode": "casual"})["data"].(map[string]any)
	lid := lobby["id"].(string)
	n2.call(t, "POST", "/api/lobbies/"+lid+"/join", bTok, nil)
	n1.call(t, "POST", "/api/lobbies/"+lid+"/join", cTok, nil)
	n2.call(t, "POST", "/api/lobbies/"+lid+"/join", dTok, nil)

	h := dial(t, n1, hTok, "host@1")
	b := dial(t, n2, bTok, "b@2")
	cc := dial(t, n2, cTok, "c@2")
	d := dial(t, n2, dTok, "d@2")
	chatID := "lobby:" + lid
	all := []*sock{h, b, cc, d}
	for i, s := range all {
		s.ok("lobby:join", map[string]any{"lobbyId": lid})
		s.ok("chat:join", map[string]any{"chatId": chatID})
		// Everyone who joined the rooms earlier hears the newcomer, whatever the node.
		for _, earlier := range all[:i] {
			earlier.next("chat:member:joined", func(m map[string]any) bool { return m["chatId"] == chatID })
		}
	}

	forChat := func(m map[string]any) bool { return m["chatId"] == chatID }
	fromUser := func(id string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			msg, _ := m["message"].(map[string]any)
			sender, _ := msg["sender"].(map[string]any)
			return m["chatId"] == chatID && sender["id"] == id
		}
	}

	// Chat both ways: node 1 → node 2 and node 2 → node 1, every member (sender included) once.
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "hello from node 1"})
	for _, s := range all {
		if m := s.next("chat:message", fromUser(hID)); m["message"].(map[string]any)["content"] != "hello from node 1" {
			t.Fatalf("%s got %v", s.name, m)
		}
	}
	b.ok("chat:message", map[string]any{"chatId": chatID, "content": "hi from node 2"})
	for _, s := range all {
		s.next("chat:message", fromUser(bID))
	}

	// Typing: the others hear it (across nodes), the typist does not.
	b.ok("chat:typing", map[string]any{"chatId": chatID, "isTyping": true})
	for _, s := range []*sock{h, cc, d} {
		m := s.next("chat:typing", forChat)
		if u, _ := m["user"].(map[string]any); u["id"] != bID || m["isTyping"] != true {
			t.Fatalf("%s: chat:typing %v", s.name, m)
		}
	}
	h.ok("chat:typing", map[string]any{"chatId": chatID, "isTyping": false})
	for _, s := range []*sock{b, cc, d} {
		if m := s.next("chat:typing", forChat); m["isTyping"] != false || m["user"].(map[string]any)["id"] != hID {
			t.Fatalf("%s: chat:typing %v", s.name, m)
		}
	}
	b.none("chat:typing", 0)
	h.none("chat:typing", 0)

	// Ready from both nodes: lobby:member:ready everywhere, lobby:ready once all four are ready.
	for _, s := range all {
		s.ok("lobby:ready", map[string]any{"lobbyId": lid, "isReady": true})
	}
	for _, s := range all {
		for _, id := range []string{hID, bID, cID, dID} {
			s.next("lobby:member:ready", func(m map[string]any) bool {
				u, _ := m["user"].(map[string]any)
				return m["lobbyId"] == lid && u["id"] == id && m["isReady"] == true
			})
		}
		if m := s.next("lobby:ready", nil); m["lobbyId"] != lid || m["readyAt"] == "" {
			t.Fatalf("%s: lobby:ready %v", s.name, m)
		}
	}

	// The host (node 1) kicks B (node 2).
	h.ok("lobby:kick", map[string]any{"lobbyId": lid, "userId": bID})
	if m := b.next("lobby:kicked", nil); m["lobbyId"] != lid || m["reason"] == "" {
		t.Fatalf("lobby:kicked %v", m)
	}
	for _, s := range []*sock{h, cc, d} {
		s.next("lobby:member:kicked", func(m map[string]any) bool { return m["lobbyId"] == lid && m["userId"] == bID })
	}
	// B's socket left both rooms on node 2: the next chat message reaches C and D there, not B.
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "after the kick"})
	for _, s := range []*sock{h, cc, d} {
		s.next("chat:message", fromUser(hID))
	}
	b.none("chat:message", 300*time.Millisecond)
	// Rejoin refused (socket and REST), and B cannot post.
	if code := b.fails("lobby:join", map[string]any{"lobbyId": lid}); code != "ACCESS_DENIED" {
		t.Fatalf("kicked lobby:join: %s", code)
	}
	if code := b.fails("chat:join", map[string]any{"chatId": chatID}); code != "JOIN_ERROR" && code != "ACCESS_DENIED" {
		t.Fatalf("kicked chat:join: %s", code)
	}
	if code := b.fails("chat:message", map[string]any{"chatId": chatID, "content": "let me in"}); code == "" {
		t.Fatal("kicked chat:message accepted")
	}
	if code, out := n2.do(t, "POST", "/api/lobbies/"+lid+"/join", bTok, nil); code != http.StatusBadRequest && code != http.StatusForbidden && code != http.StatusConflict {
		t.Fatalf("kicked REST rejoin: %d %v", code, out)
	}
	if code, out := n1.do(t, "POST", "/api/lobbies/"+lid+"/join", bTok, nil); code < 400 {
		t.Fatalf("kicked REST rejoin through node 1: %d %v", code, out)
	}

	// C leaves for good over REST on node 1: C's socket on node 2 loses access at once.
	if code, out := n1.do(t, "POST", "/api/lobbies/"+lid+"/leave", cTok, nil); code != http.StatusNoContent {
		t.Fatalf("leave: %d %v", code, out)
	}
	if code := cc.fails("chat:message", map[string]any{"chatId": chatID, "content": "still here?"}); code == "" {
		t.Fatal("chat:message after leaving accepted")
	}
	for _, s := range []*sock{h, d} {
		s.next("lobby:member:left", func(m map[string]any) bool {
			u, _ := m["user"].(map[string]any)
			return m["lobbyId"] == lid && u["id"] == cID
		})
	}
	d.ok("chat:message", map[string]any{"chatId": chatID, "content": "bye C"})
	h.next("chat:message", fromUser(dID))
	d.next("chat:message", fromUser(dID))
	cc.none("chat:message", 300*time.Millisecond)
	b.none("lobby:member:left", 0) // B left the lobby room at the kick: no lobby events either
	b.none("chat:message", 0)
	if code := cc.fails("lobby:join", map[string]any{"lobbyId": lid}); code != "ACCESS_DENIED" {
		t.Fatalf("lobby:join after leaving: %s", code)
	}
	if code := cc.fails("chat:join", map[string]any{"chatId": chatID}); code != "JOIN_ERROR" && code != "ACCESS_DENIED" {
		t.Fatalf("chat:join after leaving: %s", code)
	}
	// The lobby's history is closed to both, whatever the node.
	for _, tok := range []string{bTok, cTok} {
		if code, out := n2.do(t, "GET", "/api/chats/"+chatID+"/messages", tok, nil); code < 400 {
			t.Fatalf("history after leaving: %d %v", code, out)
		}
	}
}

// TestLobbyAcrossProcesses: two maoga processes, with the adapter's classic Redis pub/sub and with
// its sharded mode (REDIS_SHARDED: SPUBLISH/SSUBSCRIBE, room channels).
func TestLobbyAcrossProcesses(t *testing.T) {
	for _, mode := range []struct{ name, env string }{{"classic", "REDIS_SHARDED=0"}, {"sharded", "REDIS_SHARDED=1"}} {
		t.Run(mode.name, func(t *testing.T) {
			c := startCluster(t, 2, mode.env)
			lobbyScenario(t, c)
			if mode.name == "sharded" { // the nodes really talk over sharded channels
				chans, err := c.redis.Client().Do(context.Background(), "PUBSUB", "SHARDCHANNELS").StringSlice()
				if err != nil || len(chans) == 0 {
					t.Fatalf("no sharded channel subscribed: %v %v", chans, err)
				}
				if n, err := c.redis.Client().PubSubNumPat(context.Background()).Result(); err != nil || n != 0 {
					t.Fatalf("sharded nodes hold %d classic pattern subscriptions (%v)", n, err)
				}
			}
		})
	}
}
