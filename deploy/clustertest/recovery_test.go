package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRecoveryAcrossNodes: connection state recovery (RECOVERY_MAX_DISCONNECTION, default 2m) in a
// cluster. A client whose transport drops and that comes back to the same node (sticky sessions)
// gets its socket back — same id, rooms kept, and the broadcasts it missed, including those
// published on another node and delivered through Redis. One that lands on another node, which
// never saw its session, gets a clean fresh session: new id, its connection handlers run (presence,
// user room), it joins its rooms again like any new socket, and nothing breaks on either node.
func TestRecoveryAcrossNodes(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	_, hTok := n1.register(t)
	bID, bTok := n2.register(t)
	fr := n1.call(t, "POST", "/api/friends/requests", hTok, map[string]any{"userId": bID})["data"].(map[string]any)
	n2.call(t, "POST", "/api/friends/requests/"+fr["id"].(string)+"/accept", bTok, nil)
	lid := n1.call(t, "POST", "/api/lobbies", hTok, map[string]any{"gameId": "party-trivia", "gameMode": "casual"})["data"].(map[string]any)["id"].(string)
	n2.call(t, "POST", "/api/lobbies/"+lid+"/join", bTok, nil)
	chatID := "lobby:" + lid
	forChat := func(m map[string]any) bool { return m["chatId"] == chatID }
	content := func(text string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			msg, _ := m["message"].(map[string]any)
			return m["chatId"] == chatID && msg["content"] == text
		}
	}
	status := func(s string) func(map[string]any) bool {
		return func(m map[string]any) bool { return m["userId"] == bID && m["status"] == s }
	}

	h := dial(t, n1, hTok, "host@1")
	b := dial(t, n2, bTok, "b@2")
	if b.PID() == "" {
		t.Fatal("recovery is off on the nodes (no pid in the CONNECT answer)")
	}
	for _, s := range []*sock{h, b} {
		s.ok("lobby:join", map[string]any{"lobbyId": lid})
		s.ok("chat:join", map[string]any{"chatId": chatID})
	}
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "hello"})
	b.next("chat:message", content("hello"))
	firstID := b.ID()

	// 1. The transport drops; node 1 broadcasts while B is away; B comes back to node 2.
	b.CloseTransport()
	h.next("chat:member:left", forChat) // node 2 finished the old socket (its disconnecting handlers ran)
	h.next("user:status", status("offline"))
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "missed, sent on node 1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bc, err := b.Reconnect(ctx, n2.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bc.Close() })
	b2 := &sock{Client: bc, t: t, name: "b@2 recovered"}
	if !b2.Recovered() || b2.ID() != firstID {
		t.Fatalf("same node: not recovered (recovered %v, id %s, was %s)", b2.Recovered(), b2.ID(), firstID)
	}
	b2.next("chat:message", content("missed, sent on node 1"))
	h.next("chat:member:joined", forChat)
	h.next("user:status", status("online")) // the connection handler ran: presence, across nodes
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "live after recovery"})
	b2.next("chat:message", content("live after recovery")) // rooms kept: no join needed
	b2.ok("chat:message", map[string]any{"chatId": chatID, "content": "from the recovered socket"})
	h.next("chat:message", content("from the recovered socket"))

	// 2. The transport drops again and the client lands on node 1 (its node is not sticky any more).
	b2.CloseTransport()
	h.next("chat:member:left", forChat)
	h.next("user:status", status("offline"))
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "sent while moving"})
	bc3, err := b2.Reconnect(ctx, n1.url)
	if err != nil {
		t.Fatalf("other node: %v", err)
	}
	t.Cleanup(func() { _ = bc3.Close() })
	b3 := &sock{Client: bc3, t: t, name: "b@1 fresh"}
	if b3.Recovered() || b3.ID() == firstID || b3.PID() == "" || b3.PID() == b.PID() {
		t.Fatalf("other node: want a fresh session, got recovered %v id %s pid %s", b3.Recovered(), b3.ID(), b3.PID())
	}
	h.next("user:status", status("online"))
	b3.warmUp()
	// Fresh: not in the lobby's rooms until it joins them again; then everything works.
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "before the rejoin"})
	h.next("chat:message", content("before the rejoin"))
	b3.none("chat:message", 300*time.Millisecond)
	b3.ok("lobby:join", map[string]any{"lobbyId": lid})
	b3.ok("chat:join", map[string]any{"chatId": chatID})
	h.ok("chat:message", map[string]any{"chatId": chatID, "content": "after the rejoin"})
	b3.next("chat:message", content("after the rejoin"))
	n2.call(t, "GET", "/api/users/me", bTok, nil) // node 2 still serves
	for _, nd := range c.nodes {
		if code := nd.ready(); code != 200 {
			t.Fatalf("node %d not ready after the moves: %d", nd.n, code)
		}
		if log := nd.log.String(); strings.Contains(log, "panic") {
			t.Fatalf("node %d logged a panic:\n%s", nd.n, log)
		}
	}
	// Presence agrees on both nodes: one socket, online.
	for _, nd := range c.nodes {
		friends := nd.call(t, "GET", "/api/friends", hTok, nil)["data"].([]any)
		if len(friends) != 1 || !strings.Contains(string(mustJSON(friends)), `"online"`) {
			t.Fatalf("node %d shows B as %s", nd.n, mustJSON(friends))
		}
	}
}
