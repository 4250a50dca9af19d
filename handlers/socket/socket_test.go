package socket_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/auth"
)

func TestConnectErrors(t *testing.T) {
	e := newEnv(t)
	ann := e.register("ann")

	other, _ := auth.NewTokens([]byte("another-secret"), time.Hour, "maoga", nil)
	foreign, _, _ := other.Issue(ann.ID)
	past, _ := auth.NewTokens(testSecret, time.Minute, "maoga", func() time.Time { return time.Now().Add(-time.Hour) })
	expired, _, _ := past.Issue(ann.ID)
	ghost, _, _ := e.auth.Tokens().Issue(bson.NewObjectID().Hex())

	cases := []struct {
		name string
		opts clienttest.Options
		want string
	}{
		{"no auth at all", clienttest.Options{}, "Authentication error: Token missing"},
		{"empty auth", clienttest.Options{Auth: map[string]any{}}, "Authentication error: Token missing"},
		{"empty token", clienttest.Options{Auth: map[string]any{"token": ""}}, "Authentication error: Token missing"},
		{"null token", clienttest.Options{Auth: map[string]any{"token": nil}}, "Authentication error: Token missing"},
		{"garbage token", clienttest.Options{Auth: map[string]any{"token": "abc.def.ghi"}}, "Authentication error: Invalid token"},
		{"token not a string", clienttest.Options{Auth: map[string]any{"token": 42}}, "Authentication error: Invalid token"},
		{"wrong secret", clienttest.Options{Auth: map[string]any{"token": foreign}}, "Authentication error: Invalid token"},
		{"expired", clienttest.Options{Auth: map[string]any{"token": expired}}, "Authentication error: Invalid token"},
		{"garbage in query", clienttest.Options{Query: url.Values{"token": {"nope"}}}, "Authentication error: Invalid token"},
		// auth.token wins over the query.
		{"bad auth, good query", clienttest.Options{Auth: map[string]any{"token": "nope"}, Query: url.Values{"token": {ann.Token}}}, "Authentication error: Invalid token"},
		{"user gone", clienttest.Options{Auth: map[string]any{"token": ghost}}, "Authentication error: User not found"},
	}
	for _, tc := range cases {
		_, err := e.dial(tc.opts)
		if got := connectError(t, err); got != tc.want {
			t.Errorf("%s: connect error %q, want %q", tc.name, got, tc.want)
		}
	}

	// Accepted from auth.token, from the query, and auth wins over a bad query.
	for name, opts := range map[string]clienttest.Options{
		"auth":                 {Auth: map[string]any{"token": ann.Token}},
		"query":                {Query: url.Values{"token": {ann.Token}}},
		"good auth, bad query": {Auth: map[string]any{"token": ann.Token}, Query: url.Values{"token": {"nope"}}},
	} {
		c, err := e.dial(opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Close()
	}

	for result, want := range map[string]int{"token_missing": 4, "invalid_token": 6, "user_not_found": 1, "accepted": 3} {
		if got := e.handshakeCount(result); got != want {
			t.Errorf("OnHandshake(%q) told %d times, want %d", result, got, want)
		}
	}

	// Accounts that are not active.
	oid, _ := models.ParseID(ann.ID)
	for _, status := range []string{models.AccountSuspended, models.AccountBanned} {
		if _, err := e.users.Update(context.Background(), oid, bson.M{"accountStatus": status}); err != nil {
			t.Fatal(err)
		}
		_, err := e.dial(clienttest.Options{Auth: map[string]any{"token": ann.Token}})
		if got, want := connectError(t, err), "Account is "+status; got != want {
			t.Errorf("connect error %q, want %q", got, want)
		}
	}
	if e.handshakeCount("account_suspended") != 1 || e.handshakeCount("account_banned") != 1 {
		t.Errorf("account refusals not observed: %v", e.handshakes)
	}
}

type statusMsg struct {
	UserID    string `json:"userId"`
	Status    string `json:"status"`
	UpdatedAt string `json:"updatedAt"`
}

func TestPresenceTwoSocketsAndFriendSeesChanges(t *testing.T) {
	e := newEnv(t)
	ann, bob, cid := e.register("ann"), e.register("bob"), e.register("cid")
	e.befriend(ann, bob)

	watcher := e.connect(bob)
	stranger := e.connect(cid) // not a friend: hears nothing of ann

	a1 := e.connect(ann)
	var m statusMsg
	next(t, watcher, "user:status", &m)
	if m.UserID != ann.ID || m.Status != "online" {
		t.Fatalf("first socket: %+v", m)
	}
	if ts, err := time.Parse(time.RFC3339Nano, m.UpdatedAt); err != nil || time.Since(ts) > time.Minute {
		t.Fatalf("updatedAt %q: %v", m.UpdatedAt, err)
	}

	a2 := e.connect(ann)
	// The second socket is not a new "online": the next change bob hears is
	// the one ann makes now.
	ctx, cancel := ctx5()
	defer cancel()
	reply, err := a2.EmitWithAck(ctx, "user:status", map[string]any{"status": "away"})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply[0]) != `{"ok":true,"status":"away"}` {
		t.Fatalf("ack = %s", reply[0])
	}
	next(t, watcher, "user:status", &m)
	if m.UserID != ann.ID || m.Status != "away" {
		t.Fatalf("after user:status away: %+v (a second online would show up here)", m)
	}

	// Closing one of two sockets changes nothing; the last one makes ann offline.
	a1.Close()
	reply, err = a2.EmitWithAck(ctx, "user:status", map[string]any{"status": "in-game"})
	if err != nil || string(reply[0]) != `{"ok":true,"status":"in-game"}` {
		t.Fatalf("ack = %v %v", reply, err)
	}
	next(t, watcher, "user:status", &m)
	if m.Status != "in-game" {
		t.Fatalf("after closing one socket bob heard %+v", m)
	}
	a2.Close()
	next(t, watcher, "user:status", &m)
	if m.UserID != ann.ID || m.Status != "offline" {
		t.Fatalf("after the last socket: %+v", m)
	}
	oid, _ := models.ParseID(ann.ID)
	u, err := e.users.ByID(context.Background(), oid)
	if err != nil || u.LastActive == nil || time.Since(*u.LastActive) > time.Minute || u.Status != "offline" {
		t.Fatalf("stored presence: %v %+v", err, u)
	}
	if st, _ := e.presence.Status(context.Background(), ann.ID); st != "offline" {
		t.Fatalf("presence status %s", st)
	}
	if n := stranger.Pending("user:status"); n != 0 {
		t.Fatalf("a stranger heard %d status changes", n)
	}
}

func TestUserStatusValidation(t *testing.T) {
	e := newEnv(t)
	ann := e.register("ann")
	c := e.connect(ann)
	ctx, cancel := ctx5()
	defer cancel()

	cases := []struct {
		name string
		args []any
		msg  string
	}{
		{"unknown status", []any{map[string]any{"status": "sleeping"}}, "status must be one of online, away, busy, in-game, offline"},
		{"status missing", []any{map[string]any{}}, "status is required"},
		{"status not a string", []any{map[string]any{"status": 5}}, "status must be a string"},
		{"unknown field", []any{map[string]any{"status": "away", "admin": true}}, "unknown field admin"},
		{"payload a string", []any{"away"}, "payload must be an object"},
		{"payload an array", []any{[]string{"away"}}, "payload must be an object"},
		{"no payload", nil, "payload is required"},
	}
	for _, tc := range cases {
		reply, err := c.EmitWithAck(ctx, "user:status", tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ack struct {
			OK    bool             `json:"ok"`
			Error socket.ErrorBody `json:"error"`
			Extra map[string]any   `json:"-"`
		}
		if err := json.Unmarshal(reply[0], &ack); err != nil {
			t.Fatal(err)
		}
		if ack.OK || ack.Error.Code != "VALIDATION_ERROR" || ack.Error.Message != tc.msg {
			t.Errorf("%s: ack %s, want VALIDATION_ERROR %q", tc.name, reply[0], tc.msg)
		}
		var ev socket.ErrorBody
		next(t, c, "error", &ev)
		if ev.Code != "VALIDATION_ERROR" || ev.Message != tc.msg {
			t.Errorf("%s: error event %+v", tc.name, ev)
		}
	}
	// Without an ack the error event still comes, and the connection survives.
	if err := c.Emit("user:status", map[string]any{"status": "nope"}); err != nil {
		t.Fatal(err)
	}
	var ev socket.ErrorBody
	next(t, c, "error", &ev)
	if ev.Code != "VALIDATION_ERROR" {
		t.Fatalf("error event %+v", ev)
	}
	if st, _ := e.presence.Status(ctx, ann.ID); st != "online" {
		t.Fatalf("a refused status changed presence to %s", st)
	}
	reply, err := c.EmitWithAck(ctx, "user:status", map[string]any{"status": "busy"})
	if err != nil || string(reply[0]) != `{"ok":true,"status":"busy"}` {
		t.Fatalf("valid status after errors: %v %v", reply, err)
	}
}

type notificationNew struct {
	Notification struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Title     string         `json:"title"`
		Message   string         `json:"message"`
		Data      map[string]any `json:"data"`
		CreatedAt string         `json:"createdAt"`
	} `json:"notification"`
}

type notificationCount struct {
	Total       int64 `json:"total"`
	Unread      int64 `json:"unread"`
	UnreadCount int64 `json:"unreadCount"`
}

func TestNotificationOnFriendRequest(t *testing.T) {
	e := newEnv(t)
	ann, bob := e.register("ann"), e.register("bob")
	c := e.connect(bob)

	f, err := e.friends.Request(context.Background(), ann.ID, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The welcome notification is stored before it is emitted: its events may still reach the socket
	// that connected in between, so skip them.
	var n notificationNew
	for next(t, c, "notification:new", &n); n.Notification.Type == "welcome"; {
		next(t, c, "notification:new", &n)
	}
	if n.Notification.Type != "friend_request" || n.Notification.Message != "ann sent you a friend request." ||
		n.Notification.Data["friendshipId"] != f.ID.Hex() || n.Notification.Data["requesterId"] != ann.ID ||
		n.Notification.ID == "" || n.Notification.CreatedAt == "" || n.Notification.Title == "" {
		t.Fatalf("notification:new = %+v", n)
	}
	var cnt notificationCount
	for next(t, c, "notification:count", &cnt); cnt.Total == 1; {
		next(t, c, "notification:count", &cnt)
	}
	if cnt != (notificationCount{Total: 2, Unread: 2, UnreadCount: 2}) { // welcome + request
		t.Fatalf("notification:count = %+v", cnt)
	}

	// Reading it sends a fresh count to every socket of bob.
	if _, err := e.notes.MarkRead(context.Background(), bob.ID, n.Notification.ID); err != nil {
		t.Fatal(err)
	}
	next(t, c, "notification:count", &cnt)
	if cnt != (notificationCount{Total: 2, Unread: 1, UnreadCount: 1}) {
		t.Fatalf("count after read = %+v", cnt)
	}
}

func TestTokenExpiryDisconnects(t *testing.T) {
	e := newEnv(t)
	ann, bob := e.register("ann"), e.register("bob")
	e.befriend(ann, bob)
	watcher := e.connect(bob)

	short, _ := auth.NewTokens(testSecret, 2*time.Second, "maoga", nil)
	tok, exp, err := short.Issue(ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.dial(clienttest.Options{Auth: map[string]any{"token": tok}})
	if err != nil {
		t.Fatal(err)
	}
	var m statusMsg
	next(t, watcher, "user:status", &m)
	if m.Status != "online" {
		t.Fatalf("status %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	reason, _ := c.WaitDisconnect(ctx)
	if reason != "transport close" {
		t.Fatalf("disconnect reason %q, want transport close (the client reconnects by itself)", reason)
	}
	if early := time.Until(exp); early > 200*time.Millisecond {
		t.Fatalf("disconnected %v before the token expired", early)
	}
	next(t, watcher, "user:status", &m)
	if m.UserID != ann.ID || m.Status != "offline" {
		t.Fatalf("after expiry bob heard %+v", m)
	}
	// The expired token is refused now; a fresh one connects.
	if _, err := e.dial(clienttest.Options{Auth: map[string]any{"token": tok}}); connectError(t, err) != "Authentication error: Invalid token" {
		t.Fatalf("expired token: %v", err)
	}
	e.connect(ann)
}
