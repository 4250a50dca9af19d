package app_test

// Chat through the whole server (chat helper): REST for direct chats, lobbies, unread counts, history
// and notifications; real Socket.IO clients (clienttest) for every chat event and error code.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/models"
)

// chatClient is a connected user whose chat handlers are known to be registered.
type chatClient struct {
	*clienttest.Client
	t *testing.T
}

// chatDialAt connects to base and waits until the chat handlers answer (an event sent right after
// CONNECT can reach the server before the connection handlers ran, see clienttest/race_test.go):
// chat:leave of a chat one is not in is a harmless no-op with an ack.
func chatDialAt(t *testing.T, base, token string) *chatClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, base, clienttest.Options{Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	for i := 0; ; i++ {
		actx, acancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := c.EmitWithAck(actx, "chat:leave", map[string]any{"chatId": "warm-up"})
		acancel()
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatalf("chat handlers never answered: %v", err)
		}
	}
	return &chatClient{Client: c, t: t}
}

func chatDial(t *testing.T, u *testUser) *chatClient { return chatDialAt(t, baseURL, u.Access) }

// ack emits with an acknowledgement and decodes the answer.
func (c *chatClient) ack(event string, payload any) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.EmitWithAck(ctx, event, payload)
	if err != nil {
		c.t.Fatalf("%s: %v", event, err)
	}
	var out map[string]any
	if len(args) != 1 || json.Unmarshal(args[0], &out) != nil {
		c.t.Fatalf("%s: ack %s", event, args)
	}
	return out
}

// next waits for the next event named event and decodes its first argument.
func (c *chatClient) next(event string) map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.Wait(ctx, event)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", event, err)
	}
	var out map[string]any
	if err := json.Unmarshal(args[0], &out); err != nil {
		c.t.Fatalf("%s: %s", event, args[0])
	}
	return out
}

// failsWith emits payload with an ack and checks both answers of a failure: the ack envelope
// {ok:false, error:{code, message}} and the event error {code, message}.
func (c *chatClient) failsWith(event string, payload any, code string) {
	c.t.Helper()
	a := c.ack(event, payload)
	e, _ := a["error"].(map[string]any)
	if a["ok"] != false || e["code"] != code || e["message"] == "" {
		c.t.Fatalf("%s %v: ack %v, want code %s", event, payload, a, code)
	}
	ev := c.next("error")
	if ev["code"] != code || ev["message"] == "" {
		c.t.Fatalf("%s: error event %v, want code %s", event, ev, code)
	}
}

// join joins a chat and checks the answers to the caller.
func (c *chatClient) join(chatID string) {
	c.t.Helper()
	if a := c.ack("chat:join", map[string]any{"chatId": chatID}); a["ok"] != true || a["chatId"] != chatID {
		c.t.Fatalf("chat:join %s: %v", chatID, a)
	}
	if ev := c.next("chat:joined"); ev["chatId"] != chatID {
		c.t.Fatalf("chat:joined %v", ev)
	}
}

// send sends a message and returns the stored message from the ack.
func (c *chatClient) send(chatID, content string) map[string]any {
	c.t.Helper()
	a := c.ack("chat:message", map[string]any{"chatId": chatID, "content": content, "contentType": "text"})
	m, _ := a["message"].(map[string]any)
	if a["ok"] != true || m["id"] == nil || m["content"] != strings.TrimSpace(content) {
		c.t.Fatalf("chat:message: ack %v", a)
	}
	return m
}

// quiet checks that no event named event arrives within d (after the events already checked).
func (c *chatClient) quiet(event string, d time.Duration) {
	c.t.Helper()
	time.Sleep(d)
	if n := c.Pending(event); n != 0 {
		c.t.Fatalf("%d unexpected %s events", n, event)
	}
}

func directChat(t *testing.T, a, b *testUser) string {
	t.Helper()
	r := call(t, "POST", "/api/chats/direct", a.Access, map[string]any{"userId": b.ID})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("direct chat: %d %s", r.Status, r.Raw)
	}
	return r.data()["id"].(string)
}

func chatMessages(t *testing.T, token, chatID, query string) reply {
	t.Helper()
	return call(t, "GET", "/api/chats/"+chatID+"/messages"+query, token, nil)
}

func chatCount(t *testing.T, chatID string) int64 {
	t.Helper()
	n, err := srv.Store.Collection(models.MessagesCollection).CountDocuments(context.Background(), bson.M{"chatId": chatID})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestChatLobby is the documents' chat.test.js in Go: a lobby with two members, both follow the lobby
// and join its chat; messages reach the whole room with sender details, typing and read receipts reach
// the others, leaving is announced; an outsider is denied.
func TestChatLobby(t *testing.T) {
	host, member, outsider := register(t), register(t), register(t)
	r := call(t, "POST", "/api/lobbies", host.Access, map[string]any{"gameId": "party-trivia", "gameMode": "casual"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create lobby: %d %s", r.Status, r.Raw)
	}
	lobbyID := r.data()["id"].(string)
	if r := call(t, "POST", "/api/lobbies/"+lobbyID+"/join", member.Access, nil); r.Status != http.StatusOK {
		t.Fatalf("join lobby: %d %s", r.Status, r.Raw)
	}
	chatID := "lobby:" + lobbyID
	c1, c2, c3 := chatDial(t, host), chatDial(t, member), chatDial(t, outsider)
	for _, c := range []*chatClient{c1, c2} {
		if a := c.ack("lobby:join", map[string]any{"lobbyId": lobbyID}); a["ok"] != true {
			t.Fatalf("lobby:join: %v", a)
		}
		if ev := c.next("lobby:joined"); ev["lobbyId"] != lobbyID {
			t.Fatalf("lobby:joined %v", ev)
		}
	}

	c1.join(chatID)
	c2.join(chatID)
	if ev := c1.next("chat:member:joined"); ev["chatId"] != chatID || ev["user"].(map[string]any)["id"] != member.ID ||
		ev["user"].(map[string]any)["username"] != member.Username {
		t.Fatalf("chat:member:joined %v", ev)
	}
	// Joining again is idempotent: chat:joined again, nobody is told twice.
	c2.join(chatID)

	m := c1.send(chatID, "Hello, world!")
	for _, c := range []*chatClient{c1, c2} {
		ev := c.next("chat:message")
		msg := ev["message"].(map[string]any)
		sender := msg["sender"].(map[string]any)
		if ev["chatId"] != chatID || msg["id"] != m["id"] || msg["content"] != "Hello, world!" || msg["contentType"] != "text" ||
			sender["id"] != host.ID || sender["username"] != host.Username || sender["displayName"] == nil || msg["createdAt"] == nil {
			t.Fatalf("chat:message %v", ev)
		}
	}

	if a := c1.ack("chat:typing", map[string]any{"chatId": chatID, "isTyping": true}); a["ok"] != true {
		t.Fatalf("typing ack %v", a)
	}
	ev := c2.next("chat:typing")
	if ev["chatId"] != chatID || ev["isTyping"] != true || ev["user"].(map[string]any)["username"] != host.Username {
		t.Fatalf("chat:typing %v", ev)
	}

	if a := c2.ack("chat:read", map[string]any{"chatId": chatID}); a["ok"] != true || a["lastReadMessageId"] != m["id"] {
		t.Fatalf("read ack %v", a)
	}
	if ev := c1.next("chat:read"); ev["chatId"] != chatID || ev["userId"] != member.ID {
		t.Fatalf("chat:read %v", ev)
	}

	c3.failsWith("chat:join", map[string]any{"chatId": chatID}, "ACCESS_DENIED")
	c3.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "hi"}, "NOT_IN_CHAT")

	if a := c2.ack("chat:leave", map[string]any{"chatId": chatID}); a["ok"] != true {
		t.Fatalf("leave ack %v", a)
	}
	if ev := c1.next("chat:member:left"); ev["chatId"] != chatID || ev["user"].(map[string]any)["id"] != member.ID {
		t.Fatalf("chat:member:left %v", ev)
	}
	c2.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "hi"}, "NOT_IN_CHAT")

	// Senders and typers never get their own typing/read events; the member who rejoined was announced once.
	c1.quiet("chat:typing", 50*time.Millisecond)
	c2.quiet("chat:read", 0)
	c1.quiet("chat:member:joined", 0)

	// A member who leaves the lobby for good loses the chat even while their socket is still in its room.
	c2.join(chatID)
	c1.next("chat:member:joined")
	if r := call(t, "POST", "/api/lobbies/"+lobbyID+"/leave", member.Access, nil); r.Status != http.StatusNoContent {
		t.Fatalf("leave lobby: %d %s", r.Status, r.Raw)
	}
	before := chatCount(t, chatID)
	a := c2.ack("chat:message", map[string]any{"chatId": chatID, "content": "still here?"})
	if code := a["error"].(map[string]any)["code"]; code != "ACCESS_DENIED" && code != "NOT_IN_CHAT" {
		t.Fatalf("message after leaving the lobby: %v", a)
	}
	if chatCount(t, chatID) != before {
		t.Fatal("message of a former member was stored")
	}

	// A socket that disconnects leaves its chat rooms like chat:leave.
	c3b := chatDial(t, host)
	c3b.join(chatID)
	c1.next("chat:member:joined")
	_ = c3b.Close()
	if ev := c1.next("chat:member:left"); ev["user"].(map[string]any)["id"] != host.ID {
		t.Fatalf("member:left on disconnect %v", ev)
	}
}

func TestChatDirectAndErrors(t *testing.T) {
	a, b, out := register(t), register(t), register(t)

	// Created once per pair, whoever asks, also concurrently.
	r := call(t, "POST", "/api/chats/direct", a.Access, map[string]any{"userId": b.ID})
	if r.Status != http.StatusCreated || r.data()["type"] != "direct" {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	chatID := r.data()["id"].(string)
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			from, to := a, b
			if i%2 == 0 {
				from, to = b, a
			}
			js, _ := json.Marshal(map[string]any{"userId": to.ID})
			req, _ := http.NewRequest("POST", baseURL+"/api/chats/direct", bytes.NewReader(js))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+from.Access)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var body struct{ Data struct{ ID string } }
			_ = json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != http.StatusOK {
				t.Errorf("repeat create: %d", res.StatusCode)
			}
			ids[i] = body.Data.ID
		}(i)
	}
	wg.Wait()
	for _, id := range ids {
		if id != chatID {
			t.Fatalf("one pair, several chats: %s vs %v", chatID, ids)
		}
	}
	expect(t, call(t, "POST", "/api/chats/direct", a.Access, map[string]any{"userId": a.ID}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/chats/direct", a.Access, map[string]any{"userId": bson.NewObjectID().Hex()}), 404, "NOT_FOUND")
	expect(t, call(t, "POST", "/api/chats/direct", a.Access, map[string]any{}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/chats/direct", a.Access, `{"userId":{"$ne":null}}`), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/chats/direct", "", map[string]any{"userId": b.ID}), 401, "UNAUTHORIZED")

	ca, cb, co := chatDial(t, a), chatDial(t, b), chatDial(t, out)

	// Unknown chats, strangers, malformed payloads.
	ca.failsWith("chat:join", map[string]any{"chatId": bson.NewObjectID().Hex()}, "CHAT_NOT_FOUND")
	ca.failsWith("chat:join", map[string]any{"chatId": "lobby:" + bson.NewObjectID().Hex()}, "CHAT_NOT_FOUND")
	co.failsWith("chat:join", map[string]any{"chatId": chatID}, "ACCESS_DENIED")
	co.failsWith("chat:read", map[string]any{"chatId": chatID}, "ACCESS_DENIED")
	for _, bad := range []any{
		"just a string",
		map[string]any{},
		map[string]any{"chatId": 42},
		map[string]any{"chatId": map[string]any{"$ne": nil}},
		map[string]any{"chatId": chatID, "extra": true},
		map[string]any{"chatId": strings.Repeat("x", 200)},
	} {
		ca.failsWith("chat:join", bad, "VALIDATION_ERROR")
	}

	// Sending or typing without having joined.
	ca.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "hi"}, "NOT_IN_CHAT")
	ca.failsWith("chat:typing", map[string]any{"chatId": chatID, "isTyping": true}, "NOT_IN_CHAT")

	ca.join(chatID)
	cb.join(chatID)
	ca.next("chat:member:joined")

	// Invalid messages: VALIDATION_ERROR, nothing stored, nothing broadcast.
	for _, bad := range []map[string]any{
		{"chatId": chatID, "content": ""},
		{"chatId": chatID, "content": "   \n "},
		{"chatId": chatID, "content": strings.Repeat("a", 2001)},
		{"chatId": chatID, "content": "hi", "contentType": "video"},
		{"chatId": chatID, "content": "hi", "contentType": ""},
		{"chatId": chatID, "content": "not a url", "contentType": "gif"},
		{"chatId": chatID, "content": "javascript:alert(1)", "contentType": "gif"},
		{"chatId": chatID, "content": 7},
		{"chatId": chatID, "content": map[string]any{"$ne": nil}},
		{"chatId": chatID},
		{"chatId": chatID, "content": "hi", "senderId": b.ID},
	} {
		ca.failsWith("chat:message", bad, "VALIDATION_ERROR")
	}
	ca.failsWith("chat:typing", map[string]any{"chatId": chatID, "isTyping": "yes"}, "VALIDATION_ERROR")
	ca.failsWith("chat:typing", map[string]any{"chatId": chatID}, "VALIDATION_ERROR")
	ca.failsWith("chat:read", map[string]any{"chatId": chatID, "lastMessageId": bson.NewObjectID().Hex()}, "VALIDATION_ERROR")
	if n := chatCount(t, chatID); n != 0 {
		t.Fatalf("%d invalid messages stored", n)
	}
	cb.quiet("chat:message", 50*time.Millisecond)

	// The limits themselves pass: 2000 characters (multi-byte), emoji, gif URL.
	long := strings.Repeat("é", 2000)
	ca.send(chatID, long)
	if a := ca.ack("chat:message", map[string]any{"chatId": chatID, "content": "🎉", "contentType": "emoji"}); a["ok"] != true {
		t.Fatalf("emoji: %v", a)
	}
	if a := ca.ack("chat:message", map[string]any{"chatId": chatID, "content": "https://media.example.com/x.gif", "contentType": "gif"}); a["ok"] != true {
		t.Fatalf("gif: %v", a)
	}
	for i, want := range []string{"text", "emoji", "gif"} {
		ev := cb.next("chat:message")
		if got := ev["message"].(map[string]any)["contentType"]; got != want {
			t.Fatalf("message %d contentType %v", i, got)
		}
	}
	// Without an ack callback the failure still arrives as the error event. (b: a has used up its
	// message budget — refused attempts count too.)
	if err := cb.Emit("chat:message", map[string]any{"chatId": chatID, "content": ""}); err != nil {
		t.Fatal(err)
	}
	if ev := cb.next("error"); ev["code"] != "VALIDATION_ERROR" {
		t.Fatalf("error event %v", ev)
	}
}

func TestChatUnreadCountsAndPaging(t *testing.T) {
	a, b, out := register(t), register(t), register(t)
	chatID := directChat(t, a, b)
	ca := chatDial(t, a)
	ca.join(chatID)
	var sent []string
	for i := 0; i < 7; i++ {
		sent = append(sent, ca.send(chatID, fmt.Sprintf("message %d", i))["id"].(string))
	}

	chats := func(u *testUser) []any {
		r := call(t, "GET", "/api/chats", u.Access, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		return r.list()
	}
	list := chats(b)
	if len(list) != 1 {
		t.Fatalf("b's chats: %v", list)
	}
	item := list[0].(map[string]any)
	if item["id"] != chatID || item["unreadCount"] != float64(7) || item["lastMessageAt"] == nil || item["lastMessageId"] != sent[6] {
		t.Fatalf("b's chat: %v", item)
	}
	if got := chats(a)[0].(map[string]any)["unreadCount"]; got != float64(0) {
		t.Fatalf("sender's own messages unread: %v", got)
	}
	if len(chats(out)) != 0 {
		t.Fatal("outsider sees the chat")
	}

	// History newest first, three per page.
	var got []string
	before := ""
	for page := 0; ; page++ {
		q := "?limit=3"
		if before != "" {
			q += "&before=" + before
		}
		r := chatMessages(t, b.Access, chatID, q)
		if r.Status != http.StatusOK {
			t.Fatalf("history: %d %s", r.Status, r.Raw)
		}
		for _, m := range r.list() {
			mm := m.(map[string]any)
			if mm["sender"].(map[string]any)["username"] != a.Username {
				t.Fatalf("history item %v", mm)
			}
			got = append(got, mm["id"].(string))
		}
		next, _ := r.Body["nextCursor"].(string)
		if next == "" {
			if page != 2 {
				t.Fatalf("%d pages, want 3", page+1)
			}
			break
		}
		before = next
	}
	for i := range sent {
		if got[i] != sent[len(sent)-1-i] {
			t.Fatalf("history order %v, sent %v", got, sent)
		}
	}
	if r := chatMessages(t, b.Access, chatID, ""); len(r.list()) != 7 || r.Body["nextCursor"] != nil {
		t.Fatalf("default page: %s", r.Raw)
	}
	expect(t, chatMessages(t, out.Access, chatID, ""), 403, "FORBIDDEN")
	expect(t, chatMessages(t, b.Access, bson.NewObjectID().Hex(), ""), 404, "NOT_FOUND")
	expect(t, chatMessages(t, b.Access, chatID, "?limit=0"), 400, "VALIDATION_ERROR")
	expect(t, chatMessages(t, b.Access, chatID, "?limit=101"), 400, "VALIDATION_ERROR")
	expect(t, chatMessages(t, b.Access, chatID, "?limit=x"), 400, "VALIDATION_ERROR")
	expect(t, chatMessages(t, b.Access, chatID, "?before=nope"), 400, "VALIDATION_ERROR")

	// Read receipts move the unread count; b reads without joining the room.
	cb := chatDial(t, b)
	if a := cb.ack("chat:read", map[string]any{"chatId": chatID, "lastMessageId": sent[4]}); a["ok"] != true {
		t.Fatalf("read: %v", a)
	}
	if ev := ca.next("chat:read"); ev["userId"] != b.ID {
		t.Fatalf("chat:read %v", ev)
	}
	item = chats(b)[0].(map[string]any)
	if item["unreadCount"] != float64(2) || item["lastReadMessageId"] != sent[4] {
		t.Fatalf("after reading up to the 5th: %v", item)
	}
	cb.ack("chat:read", map[string]any{"chatId": chatID})
	if item = chats(b)[0].(map[string]any); item["unreadCount"] != float64(0) {
		t.Fatalf("after reading all: %v", item)
	}
}

// chatNotes lists the user's chat_message notifications.
func chatNotes(t *testing.T, u *testUser) []map[string]any {
	t.Helper()
	r := call(t, "GET", "/api/notifications?limit=100", u.Access, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("notifications: %d %s", r.Status, r.Raw)
	}
	var out []map[string]any
	for _, n := range r.list() {
		if m := n.(map[string]any); m["type"] == "chat_message" {
			out = append(out, m)
		}
	}
	return out
}

func waitChatNotes(t *testing.T, u *testUser, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := chatNotes(t, u)
		if len(got) == n {
			// Notifications are created asynchronously: make sure no extra one is still on its way.
			time.Sleep(200 * time.Millisecond)
			if got = chatNotes(t, u); len(got) != n {
				t.Fatalf("want %d chat notifications, got %d", n, len(got))
			}
			return got
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("want %d chat notifications, got %d", n, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatUnreadNotificationRule(t *testing.T) {
	a, b := register(t), register(t)
	chatID := directChat(t, a, b)
	ca := chatDial(t, a)
	ca.join(chatID)

	// b is offline: three messages, one notification.
	for i := 0; i < 3; i++ {
		ca.send(chatID, fmt.Sprint("while you were away ", i))
	}
	notes := waitChatNotes(t, b, 1)
	data := notes[0]["data"].(map[string]any)
	if data["chatId"] != chatID || !strings.Contains(notes[0]["title"].(string), a.Username) {
		t.Fatalf("notification %v", notes[0])
	}

	// b comes online and joins the room: messages are seen live, no notification — even after reading.
	cb := chatDial(t, b)
	cb.join(chatID)
	cb.ack("chat:read", map[string]any{"chatId": chatID})
	ca.send(chatID, "hi, you are here")
	cb.next("chat:message")
	waitChatNotes(t, b, 1)

	// b is online but leaves the room: the next message notifies again (b read the chat), live.
	cb.ack("chat:leave", map[string]any{"chatId": chatID})
	ca.send(chatID, "are you still there?")
	waitChatNotes(t, b, 2)
	ev := cb.next("notification:new")
	if n := ev["notification"].(map[string]any); n["type"] != "chat_message" {
		t.Fatalf("notification:new %v", ev)
	}
	ca.send(chatID, "hello?")
	waitChatNotes(t, b, 2)
	// The sender is never notified of their own messages.
	if n := len(chatNotes(t, a)); n != 0 {
		t.Fatalf("sender has %d chat notifications", n)
	}
}

func TestChatRateLimit(t *testing.T) {
	a, b := register(t), register(t)
	chatID := directChat(t, a, b)
	ca, cb := chatDial(t, a), chatDial(t, b)
	ca.join(chatID)
	cb.join(chatID)
	ca.next("chat:member:joined")

	cfg := app.Defaults()
	for i := 0; i < cfg.ChatMessageLimit; i++ {
		ca.send(chatID, fmt.Sprint("m", i))
	}
	ca.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "one too many"}, "RATE_LIMITED")
	if n := chatCount(t, chatID); n != int64(cfg.ChatMessageLimit) {
		t.Fatalf("stored %d messages, want %d", n, cfg.ChatMessageLimit)
	}
	for i := 0; i < cfg.ChatMessageLimit; i++ {
		if ev := cb.next("chat:message"); ev["message"].(map[string]any)["content"] == "one too many" {
			t.Fatal("refused message broadcast")
		}
	}
	cb.quiet("chat:message", 100*time.Millisecond)
	// The budget is the user's, not the socket's.
	ca2 := chatDial(t, a)
	ca2.join(chatID)
	ca2.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "other tab"}, "RATE_LIMITED")
	// The other user is not affected.
	cb.send(chatID, "my turn")

	for i := 0; i < cfg.ChatTypingLimit; i++ {
		if a := ca.ack("chat:typing", map[string]any{"chatId": chatID, "isTyping": i%2 == 0}); a["ok"] != true {
			t.Fatalf("typing %d: %v", i, a)
		}
	}
	ca.failsWith("chat:typing", map[string]any{"chatId": chatID, "isTyping": true}, "RATE_LIMITED")
	for i := 0; i < cfg.ChatTypingLimit; i++ {
		cb.next("chat:typing")
	}
	cb.quiet("chat:typing", 100*time.Millisecond)
}

// TestChatJoinAndMessageErrors runs a second server with small limits: JOIN_ERROR past the chats one
// connection may be in, and MESSAGE_ERROR when the store refuses a message.
func TestChatJoinAndMessageErrors(t *testing.T) {
	dir, err := os.MkdirTemp("", "maoga-chat-app-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := testConfig(dir)
	cfg.ChatMaxJoined = 2
	ctx := context.Background()
	a2, err := app.New(ctx, cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a2.Start(ln) }()
	base := "http://" + ln.Addr().String()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a2.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	post := func(path, token string, body any) map[string]any {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(js))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct{ Data map[string]any }
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s: %d %v", path, res.StatusCode, err)
		}
		return out.Data
	}
	type u struct{ id, token string }
	var users []u
	for i := 0; i < 4; i++ {
		n := uniqueName("cj")
		d := post("/api/auth/register", "", map[string]any{"username": n, "email": n + "@example.com", "password": "password123"})
		users = append(users, u{d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)})
	}
	var chats []string
	for _, other := range users[1:] {
		chats = append(chats, post("/api/chats/direct", users[0].token, map[string]any{"userId": other.id})["id"].(string))
	}
	c := chatDialAt(t, base, users[0].token)
	c.join(chats[0])
	c.join(chats[1])
	c.failsWith("chat:join", map[string]any{"chatId": chats[2]}, "JOIN_ERROR")
	// Rejoining a chat the socket is in is not a new room; leaving one makes room.
	c.join(chats[1])
	c.ack("chat:leave", map[string]any{"chatId": chats[1]})
	c.join(chats[2])

	// The store refuses a second message with the same content (a unique index added for this test):
	// MESSAGE_ERROR, and nothing is broadcast.
	msgs := a2.Store.Collection(models.MessagesCollection)
	if _, err := msgs.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "content", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("test_content_unique")}); err != nil {
		t.Fatal(err)
	}
	c.send(chats[0], "once")
	c.next("chat:message")
	c.failsWith("chat:message", map[string]any{"chatId": chats[0], "content": "once"}, "MESSAGE_ERROR")
	c.quiet("chat:message", 100*time.Millisecond)
	if n, err := msgs.CountDocuments(ctx, bson.M{"chatId": chats[0]}); err != nil || n != 1 {
		t.Fatalf("stored %d (%v)", n, err)
	}
	c.Close()
}

// TestChatClientMessageID: a chat:message resent with the same clientMessageId (its ack was lost) is
// answered with the first message and stored and broadcast once, also from the sender's other socket
// that has not joined the chat (a reconnect before the rejoin), and without using the message budget.
// Another sender's same key is another message; a used key with other content and bad keys are refused.
func TestChatClientMessageID(t *testing.T) {
	a, b := register(t), register(t)
	chatID := directChat(t, a, b)
	ca, cb := chatDial(t, a), chatDial(t, b)
	ca.join(chatID)
	cb.join(chatID)
	ca.next("chat:member:joined")

	keyed := func(c *chatClient, key, content string) map[string]any {
		t.Helper()
		a := c.ack("chat:message", map[string]any{"chatId": chatID, "content": content, "clientMessageId": key})
		m, _ := a["message"].(map[string]any)
		if a["ok"] != true || m["id"] == nil || m["content"] != content {
			t.Fatalf("chat:message %s: ack %v", key, a)
		}
		return m
	}
	first := keyed(ca, "msg-1", "hello once")
	for _, c := range []*chatClient{ca, cb} {
		if ev := c.next("chat:message"); ev["message"].(map[string]any)["id"] != first["id"] {
			t.Fatalf("broadcast %v, want %v", ev, first["id"])
		}
	}
	again := keyed(ca, "msg-1", "hello once")
	other := chatDial(t, a) // a's new connection, not in the chat's room yet
	third := keyed(other, "msg-1", "hello once")
	for _, m := range []map[string]any{again, third} {
		if m["id"] != first["id"] || m["createdAt"] != first["createdAt"] {
			t.Fatalf("resend answered %v, first was %v", m, first)
		}
	}
	cb.quiet("chat:message", 150*time.Millisecond)
	ca.quiet("chat:message", 0)
	if n := chatCount(t, chatID); n != 1 {
		t.Fatalf("stored %d messages, want 1", n)
	}

	// The other sender's same key is its own message.
	if m := keyed(cb, "msg-1", "hello once"); m["id"] == first["id"] {
		t.Fatalf("b's message got a's id: %v", m)
	}
	ca.next("chat:message")
	cb.next("chat:message")

	// A used key with other content; bad keys (the socket error is {code, message}: the message names
	// the field).
	ca.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "changed", "clientMessageId": "msg-1"}, "MESSAGE_ERROR")
	for _, bad := range []any{"", "a b", "a|b", strings.Repeat("k", 65), 42, map[string]any{"$ne": ""}} {
		p := map[string]any{"chatId": chatID, "content": "x", "clientMessageId": bad}
		ack := ca.ack("chat:message", p)
		e, _ := ack["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if ack["ok"] != false || e["code"] != "VALIDATION_ERROR" || !strings.Contains(msg, "clientMessageId") {
			t.Fatalf("clientMessageId %v: ack %v", bad, ack)
		}
		ca.next("error")
	}
	if n := chatCount(t, chatID); n != 2 {
		t.Fatalf("stored %d messages, want 2", n)
	}

	// Resends use no budget: with a's CHAT_MESSAGE_LIMIT spent, msg-1 is still answered, a new message
	// is not.
	limit := app.Defaults().ChatMessageLimit
	for i := 1; i < limit; i++ {
		keyed(ca, fmt.Sprint("fill-", i), fmt.Sprint("m", i))
	}
	for i := 0; i < 3; i++ {
		if m := keyed(ca, "msg-1", "hello once"); m["id"] != first["id"] {
			t.Fatalf("resend past the limit: %v", m)
		}
	}
	ca.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "new", "clientMessageId": "msg-new"}, "RATE_LIMITED")
	for i := 1; i < limit; i++ {
		if ev := cb.next("chat:message"); ev["message"].(map[string]any)["content"] != fmt.Sprint("m", i) {
			t.Fatalf("broadcast %d: %v", i, ev)
		}
	}
	cb.quiet("chat:message", 150*time.Millisecond)
	if n := chatCount(t, chatID); n != int64(limit)+1 {
		t.Fatalf("stored %d messages, want %d", n, limit+1)
	}
}
