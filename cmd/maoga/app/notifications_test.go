package app_test

// Notifications and presence through the whole server: REST calls on one side, a Socket.IO client
// (clienttest) on the other. (Written by the notifications helper.)

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
)

func notifDial(t *testing.T, token string) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, baseURL, clienttest.Options{Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func notifNext(t *testing.T, c *clienttest.Client, event string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.Wait(ctx, event)
	if err != nil {
		t.Fatalf("waiting for %s: %v", event, err)
	}
	if err := json.Unmarshal(args[0], v); err != nil {
		t.Fatalf("%s: %s: %v", event, args[0], err)
	}
}

// notifList polls GET /api/notifications until it has n items (notifications from events are created
// asynchronously).
func notifList(t *testing.T, token, query string, n int) []any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := call(t, "GET", "/api/notifications"+query, token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		if len(r.list()) == n {
			return r.list()
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d notifications, have %s", n, r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type countMsg struct {
	Total       int `json:"total"`
	Unread      int `json:"unread"`
	UnreadCount int `json:"unreadCount"`
}

func TestNotificationsAndPresenceEndToEnd(t *testing.T) {
	ann, bob := register(t), register(t)
	// Registration publishes user.registered: each gets a welcome notification.
	welcome := notifList(t, bob.Access, "", 1)[0].(map[string]any)
	if welcome["type"] != "welcome" {
		t.Fatalf("welcome notification: %v", welcome)
	}
	notifList(t, ann.Access, "", 1)

	bobSock := notifDial(t, bob.Access)

	r := call(t, "POST", "/api/friends/requests", ann.Access, map[string]any{"userId": bob.ID})
	if r.Status != http.StatusCreated {
		t.Fatalf("friend request: %d %s", r.Status, r.Raw)
	}
	friendshipID := r.data()["id"].(string)

	var n struct {
		Notification struct {
			ID, Type, Title, Message, CreatedAt string
			Data                                map[string]any
		} `json:"notification"`
	}
	// The welcome notification is stored before it is emitted, so its notification:new and
	// notification:count {1,1,1} may still reach the socket that connected in between: skip them.
	for notifNext(t, bobSock, "notification:new", &n); n.Notification.Type == "welcome"; {
		notifNext(t, bobSock, "notification:new", &n)
	}
	if n.Notification.Type != "friend_request" || n.Notification.Data["friendshipId"] != friendshipID ||
		n.Notification.Data["requesterId"] != ann.ID || n.Notification.Message != ann.Username+" sent you a friend request." {
		t.Fatalf("notification:new %+v", n)
	}
	var cnt countMsg
	for notifNext(t, bobSock, "notification:count", &cnt); cnt == (countMsg{1, 1, 1}); {
		notifNext(t, bobSock, "notification:count", &cnt)
	}
	if cnt != (countMsg{2, 2, 2}) {
		t.Fatalf("count %+v", cnt)
	}
	if got := notifList(t, bob.Access, "?status=unread", 2); got[0].(map[string]any)["id"] != n.Notification.ID {
		t.Fatalf("newest first: %v", got)
	}

	// Only bob may read it.
	expect(t, call(t, "PATCH", "/api/notifications/"+n.Notification.ID+"/read", ann.Access, nil), http.StatusNotFound, "NOT_FOUND")
	r = call(t, "PATCH", "/api/notifications/"+n.Notification.ID+"/read", bob.Access, nil)
	if r.Status != http.StatusOK || r.data()["read"] != true {
		t.Fatalf("read: %d %s", r.Status, r.Raw)
	}
	notifNext(t, bobSock, "notification:count", &cnt)
	if cnt != (countMsg{2, 1, 1}) {
		t.Fatalf("count after read %+v", cnt)
	}
	r = call(t, "POST", "/api/notifications/read-all", bob.Access, nil)
	if r.Status != http.StatusOK || r.data()["total"] != 2.0 || r.data()["unread"] != 0.0 {
		t.Fatalf("read-all: %d %s", r.Status, r.Raw)
	}
	notifNext(t, bobSock, "notification:count", &cnt)
	if cnt != (countMsg{2, 0, 0}) {
		t.Fatalf("count after read-all %+v", cnt)
	}

	// Accepting notifies ann; then bob sees ann come online and go offline.
	if r := call(t, "POST", "/api/friends/requests/"+friendshipID+"/accept", bob.Access, nil); r.Status != http.StatusOK {
		t.Fatalf("accept: %d %s", r.Status, r.Raw)
	}
	if got := notifList(t, ann.Access, "", 2)[0].(map[string]any); got["type"] != "friend_accepted" {
		t.Fatalf("ann's newest notification %v", got)
	}
	annSock := notifDial(t, ann.Access)
	var st struct{ UserID, Status, UpdatedAt string }
	notifNext(t, bobSock, "user:status", &st)
	if st.UserID != ann.ID || st.Status != "online" {
		t.Fatalf("user:status %+v", st)
	}
	annSock.Close()
	notifNext(t, bobSock, "user:status", &st)
	if st.UserID != ann.ID || st.Status != "offline" {
		t.Fatalf("user:status %+v", st)
	}
}
