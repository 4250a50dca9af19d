package app_test

// Connection state recovery through the app (RECOVERY_MAX_DISCONNECTION, on by default): a client
// whose transport dropped gets its socket back on the same server — id, rooms, the events it
// missed — and the app's connection handler sets it up again (user room, presence); a session whose
// rooms the user lost meanwhile (kicked) starts afresh instead. Multi-node recovery is in
// deploy/clustertest (recovery_test.go).

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
)

// dropTransport ends c's connection without a goodbye, as a network failure would.
func dropTransport(c *clienttest.Client) { c.CloseTransport() }

func reconnect(t *testing.T, c *clienttest.Client, token string) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, err := c.Reconnect(ctx, baseURL)
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	return c2
}

func waitUserStatus(t *testing.T, c *clienttest.Client, userID, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		args, err := c.Wait(ctx, "user:status")
		if err != nil {
			t.Fatalf("no user:status %s of %s: %v", status, userID, err)
		}
		var p struct{ UserID, Status string }
		_ = json.Unmarshal(args[0], &p)
		if p.UserID == userID && p.Status == status {
			return
		}
	}
}

func befriend(t *testing.T, a, b *testUser) {
	t.Helper()
	r := call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": b.ID})
	if r.Status != http.StatusCreated {
		t.Fatalf("friend request: %d %s", r.Status, r.Raw)
	}
	if r := call(t, "POST", "/api/friends/requests/"+r.data()["id"].(string)+"/accept", b.Access, nil); r.Status >= 300 {
		t.Fatalf("accept: %d %s", r.Status, r.Raw)
	}
}

func TestRecoverySameServer(t *testing.T) {
	host, bob, carol := register(t), register(t), register(t)
	befriend(t, host, bob)
	lid := createLobby(t, host, nil)["id"].(string)
	joinLobby(t, bob, lid)
	chatID := "lobby:" + lid

	h := chatDial(t, host)
	b := chatDial(t, bob)
	if b.PID() == "" {
		t.Fatal("recovery is off: the CONNECT answer carries no pid")
	}
	for _, c := range []*chatClient{h, b} {
		if r := c.ack("lobby:join", map[string]any{"lobbyId": lid}); r["ok"] != true {
			t.Fatalf("lobby:join %v", r)
		}
		if r := c.ack("chat:join", map[string]any{"chatId": chatID}); r["ok"] != true {
			t.Fatalf("chat:join %v", r)
		}
	}
	h.ack("chat:message", map[string]any{"chatId": chatID, "content": "before"})
	b.next("chat:message")
	oldID := b.ID()

	// B's transport drops. While B is away: a lobby chat message, a notification to B's user room.
	dropTransport(b.Client)
	waitUserStatus(t, h.Client, bob.ID, "offline") // the old socket's disconnect (presence) is done
	h.next("chat:member:left")
	h.ack("chat:message", map[string]any{"chatId": chatID, "content": "while you were away"})
	if r := call(t, "POST", "/api/friends/requests", carol.Access, map[string]any{"userId": bob.ID}); r.Status != http.StatusCreated {
		t.Fatalf("friend request: %d %s", r.Status, r.Raw)
	}

	// Both notifications (the chat message's and the friend request) are stored, and their
	// notification:new sent, while B has no socket: no notification:count was sent for them.
	stored := awayNotifications(t, bob.Access, carol.ID)

	b2c := reconnect(t, b.Client, bob.Access)
	b2 := &chatClient{Client: b2c, t: t}
	if !b2.Recovered() || b2.ID() != oldID {
		t.Fatalf("not recovered: recovered %v id %s (was %s)", b2.Recovered(), b2.ID(), oldID)
	}
	if m := b2.next("chat:message"); m["message"].(map[string]any)["content"] != "while you were away" {
		t.Fatalf("missed chat message %v", m)
	}
	// Missed notifications (the chat message's, sent while B was not in the room, and the friend
	// request) arrive too.
	for seen := false; !seen; {
		var n struct{ Notification struct{ Type string } }
		notifNext(t, b2.Client, "notification:new", &n)
		seen = n.Notification.Type == "friend_request"
	}
	// Then a fresh count (socket.NotificationCount), matching the store.
	var cnt countMsg
	notifNext(t, b2.Client, "notification:count", &cnt)
	if cnt != stored {
		t.Fatalf("notification:count after recovery %+v, stored %+v", cnt, stored)
	}
	// The connection handler ran for the recovered socket: presence online again (friends told),
	// the others in the chat hear B back, and B's handlers answer.
	waitUserStatus(t, h.Client, bob.ID, "online")
	if m := h.next("chat:member:joined"); m["chatId"] != chatID {
		t.Fatalf("chat:member:joined %v", m)
	}
	if st, err := srv.Presence.Status(context.Background(), bob.ID); err != nil || st != "online" {
		t.Fatalf("presence after recovery %q %v", st, err)
	}
	// Rooms kept: B hears the lobby chat without joining again, and can post to it.
	h.ack("chat:message", map[string]any{"chatId": chatID, "content": "welcome back"})
	if m := b2.next("chat:message"); m["message"].(map[string]any)["content"] != "welcome back" {
		t.Fatalf("live message after recovery %v", m)
	}
	if r := b2.ack("chat:message", map[string]any{"chatId": chatID, "content": "thanks"}); r["ok"] != true {
		t.Fatalf("post after recovery: %v", r)
	}
	h.next("chat:message") // welcome back
	h.next("chat:message") // thanks

	// Kicked while away: the restored session would put B back into the lobby's rooms; it is refused
	// and B starts afresh (new id, no rooms, none of the lobby's later messages).
	dropTransport(b2.Client)
	waitUserStatus(t, h.Client, bob.ID, "offline")
	if r := h.ack("lobby:kick", map[string]any{"lobbyId": lid, "userId": bob.ID}); r["ok"] != true {
		t.Fatalf("kick: %v", r)
	}
	h.ack("chat:message", map[string]any{"chatId": chatID, "content": "after the kick"})
	b3c := reconnect(t, b2.Client, bob.Access)
	b3 := &chatClient{Client: b3c, t: t}
	if b3.Recovered() || b3.ID() == oldID {
		t.Fatalf("a kicked user's session was restored (id %s)", b3.ID())
	}
	waitUserStatus(t, h.Client, bob.ID, "online") // a fresh session is set up as usual
	h.ack("chat:message", map[string]any{"chatId": chatID, "content": "still kicked"})
	h.next("chat:message")
	h.next("chat:message")
	time.Sleep(200 * time.Millisecond)
	if n := b3.Pending("chat:message"); n != 0 {
		t.Fatalf("the kicked user's fresh socket got %d lobby chat messages", n)
	}
	if r := b3.ack("chat:join", map[string]any{"chatId": chatID}); r["ok"] != false {
		t.Fatalf("kicked user rejoined the chat: %v", r)
	}

	// Another user's token with B's recovery id: never B's session (rooms, user room).
	if b3.Offset() == "" {
		t.Fatal("bob's fresh socket has no offset to present")
	}
	dropTransport(b3.Client)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other, err := clienttest.Dial(ctx, baseURL, clienttest.Options{Auth: map[string]any{"token": carol.Access},
		RecoverPID: b3.PID(), RecoverOffset: b3.Offset()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Recovered() || other.ID() == b3.ID() {
		t.Fatalf("carol took over bob's session %s", other.ID())
	}
}

// awayNotifications waits until the user's list holds a chat message notification and a friend
// request of requester, and returns the list's counts.
func awayNotifications(t *testing.T, token, requester string) countMsg {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := call(t, "GET", "/api/notifications", token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		var c countMsg
		chat, request := false, false
		for _, it := range r.list() {
			n := it.(map[string]any)
			c.Total++
			if n["read"] != true {
				c.Unread++
			}
			data, _ := n["data"].(map[string]any)
			chat = chat || n["type"] == "chat_message"
			request = request || (n["type"] == "friend_request" && data["requesterId"] == requester)
		}
		if chat && request {
			c.UnreadCount = c.Unread
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications made while away not stored: %s", r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
