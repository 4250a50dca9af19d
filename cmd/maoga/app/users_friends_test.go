package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/models"
)

func TestUsersMe(t *testing.T) {
	u := register(t)
	r := call(t, "GET", "/api/users/me", u.Access, nil)
	if r.Status != 200 || r.data()["id"] != u.ID || r.data()["email"] != u.Email {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if strings.Contains(string(r.Raw), "assword") {
		t.Fatalf("me leaks password data: %s", r.Raw)
	}

	r = call(t, "PATCH", "/api/users/me", u.Access, map[string]any{
		"displayName": "  New Name ", "bio": "hello", "avatarUrl": "https://img.example.com/a.png"})
	d := r.data()
	if r.Status != 200 || d["displayName"] != "New Name" || d["bio"] != "hello" || d["avatarUrl"] != "https://img.example.com/a.png" {
		t.Fatalf("patch: %d %s", r.Status, r.Raw)
	}
	// Partial patch leaves the rest alone; empty avatarUrl clears it.
	r = call(t, "PATCH", "/api/users/me", u.Access, map[string]any{"avatarUrl": ""})
	if r.data()["displayName"] != "New Name" || r.data()["avatarUrl"] != "" {
		t.Fatalf("partial patch: %s", r.Raw)
	}

	bad := []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"empty displayName", map[string]any{"displayName": "   "}, "VALIDATION_ERROR", "displayName"},
		{"long displayName", map[string]any{"displayName": strings.Repeat("x", 51)}, "VALIDATION_ERROR", "displayName"},
		{"long bio", map[string]any{"bio": strings.Repeat("b", 501)}, "VALIDATION_ERROR", "bio"},
		{"avatar not http", map[string]any{"avatarUrl": "javascript:alert(1)"}, "VALIDATION_ERROR", "avatarUrl"},
		{"unknown field", map[string]any{"email": "new@example.com"}, "VALIDATION_ERROR", "email"},
		{"unknown field accountStatus", map[string]any{"accountStatus": "active"}, "VALIDATION_ERROR", "accountStatus"},
		{"wrong type", map[string]any{"displayName": 42}, "VALIDATION_ERROR", "displayName"},
		{"operator object", map[string]any{"displayName": map[string]any{"$set": "x"}}, "VALIDATION_ERROR", "displayName"},
		{"one bad field spoils the patch", map[string]any{"displayName": "Fine", "bio": strings.Repeat("b", 501)}, "VALIDATION_ERROR", "bio"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "PATCH", "/api/users/me", u.Access, tc.body)
			expect(t, r, 400, tc.code)
			if r.errField(tc.field) == "" {
				t.Fatalf("details do not name %s: %s", tc.field, r.Raw)
			}
		})
	}
	t.Run("oversized", func(t *testing.T) {
		expect(t, call(t, "PATCH", "/api/users/me", u.Access, `{"bio":"`+strings.Repeat("b", bodyLimit)+`"}`), 413, "PAYLOAD_TOO_LARGE")
	})
	// Nothing of the refused patches was written.
	r = call(t, "GET", "/api/users/me", u.Access, nil)
	if r.data()["displayName"] != "New Name" || r.data()["bio"] != "hello" {
		t.Fatalf("refused patch changed the user: %s", r.Raw)
	}
}

func TestUserProfile(t *testing.T) {
	a, b := register(t), register(t)
	r := call(t, "GET", "/api/users/"+b.ID, a.Access, nil)
	d := r.data()
	if r.Status != 200 || d["id"] != b.ID || d["username"] != b.Username || d["status"] != "offline" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if _, ok := d["email"]; ok {
		t.Fatalf("public profile shows the email: %s", r.Raw)
	}
	expect(t, call(t, "GET", "/api/users/"+bson.NewObjectID().Hex(), a.Access, nil), 404, "NOT_FOUND")
	expect(t, call(t, "GET", "/api/users/not-an-id", a.Access, nil), 404, "NOT_FOUND")

	// With a socket connected, the profile shows the live status.
	c := dial(t, b.Access)
	defer c.Close()
	waitFor(t, func() bool { return call(t, "GET", "/api/users/"+b.ID, a.Access, nil).data()["status"] == "online" })
}

func dial(t *testing.T, token string) *clienttest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, baseURL, clienttest.Options{Auth: map[string]any{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func friendRequest(t *testing.T, from, to *testUser) string {
	t.Helper()
	r := call(t, "POST", "/api/friends/requests", from.Access, map[string]any{"userId": to.ID})
	if r.Status != 201 || r.data()["status"] != "pending" {
		t.Fatalf("request: %d %s", r.Status, r.Raw)
	}
	return r.data()["id"].(string)
}

func TestFriends(t *testing.T) {
	a, b, c := register(t), register(t), register(t)
	id := friendRequest(t, a, b)

	t.Run("bad requests", func(t *testing.T) {
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": b.ID}), 409, "CONFLICT")
		expect(t, call(t, "POST", "/api/friends/requests", b.Access, map[string]any{"userId": a.ID}), 409, "CONFLICT")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": a.ID}), 400, "VALIDATION_ERROR")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": bson.NewObjectID().Hex()}), 404, "NOT_FOUND")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": "nope"}), 400, "VALIDATION_ERROR")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{}), 400, "VALIDATION_ERROR")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": map[string]any{"$gt": ""}}), 400, "VALIDATION_ERROR")
		expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": c.ID, "note": "hi"}), 400, "VALIDATION_ERROR")
		// None of that created a friendship with c.
		n, _ := srv.Store.Collection(models.FriendshipsCollection).CountDocuments(context.Background(),
			bson.M{"pairKey": models.PairKey(mustID(a.ID), mustID(c.ID))})
		if n != 0 {
			t.Fatal("a refused request was written")
		}
	})

	t.Run("addressee is notified", func(t *testing.T) {
		waitFor(t, func() bool {
			r := call(t, "GET", "/api/notifications", b.Access, nil)
			if r.Status == http.StatusNotFound { // notifications routes not mounted: check the collection
				n, _ := srv.Store.Collection(models.NotificationsCollection).CountDocuments(context.Background(),
					bson.M{"userId": mustID(b.ID)})
				return n >= 2 // welcome + friend request
			}
			return len(r.list()) >= 2
		})
	})

	t.Run("pending lists", func(t *testing.T) {
		in := call(t, "GET", "/api/friends/requests", b.Access, nil)
		out := call(t, "GET", "/api/friends/requests?direction=outgoing", a.Access, nil)
		if len(in.list()) != 1 || len(out.list()) != 1 || in.list()[0].(map[string]any)["id"] != id {
			t.Fatalf("in %s out %s", in.Raw, out.Raw)
		}
		expect(t, call(t, "GET", "/api/friends/requests?direction=sideways", a.Access, nil), 400, "VALIDATION_ERROR")
	})

	t.Run("only the addressee answers", func(t *testing.T) {
		expect(t, call(t, "POST", "/api/friends/requests/"+id+"/accept", a.Access, nil), 403, "FORBIDDEN")
		expect(t, call(t, "POST", "/api/friends/requests/"+id+"/accept", c.Access, nil), 404, "NOT_FOUND")
		expect(t, call(t, "POST", "/api/friends/requests/"+bson.NewObjectID().Hex()+"/accept", b.Access, nil), 404, "NOT_FOUND")
		expect(t, call(t, "POST", "/api/friends/requests/garbage/reject", b.Access, nil), 404, "NOT_FOUND")
	})

	r := call(t, "POST", "/api/friends/requests/"+id+"/accept", b.Access, nil)
	if r.Status != 200 || r.data()["status"] != "accepted" || r.data()["acceptedAt"] == nil {
		t.Fatalf("accept: %d %s", r.Status, r.Raw)
	}
	expect(t, call(t, "POST", "/api/friends/requests/"+id+"/accept", b.Access, nil), 409, "CONFLICT")
	expect(t, call(t, "POST", "/api/friends/requests/"+id+"/reject", b.Access, nil), 409, "CONFLICT")
	expect(t, call(t, "POST", "/api/friends/requests", a.Access, map[string]any{"userId": b.ID}), 409, "CONFLICT")

	for _, pair := range [][2]*testUser{{a, b}, {b, a}} {
		l := call(t, "GET", "/api/friends", pair[0].Access, nil)
		items := l.list()
		if l.Status != 200 || len(items) != 1 {
			t.Fatalf("list of %s: %s", pair[0].Username, l.Raw)
		}
		f := items[0].(map[string]any)
		if f["user"].(map[string]any)["id"] != pair[1].ID || f["status"] != "offline" || f["since"] == "" {
			t.Fatalf("friend entry %v", f)
		}
		if _, ok := l.Body["nextCursor"]; !ok {
			t.Fatalf("list without nextCursor: %s", l.Raw)
		}
	}

	// A friend's live status shows in the list.
	sock := dial(t, b.Access)
	waitFor(t, func() bool {
		items := call(t, "GET", "/api/friends", a.Access, nil).list()
		return len(items) == 1 && items[0].(map[string]any)["status"] == "online"
	})
	sock.Close()

	// Reject, then ask again.
	id2 := friendRequest(t, c, a)
	r = call(t, "POST", "/api/friends/requests/"+id2+"/reject", a.Access, nil)
	if r.Status != 200 || r.data()["status"] != "rejected" {
		t.Fatalf("reject: %d %s", r.Status, r.Raw)
	}
	if again := friendRequest(t, c, a); again != id2 {
		t.Fatalf("re-request after reject made a new document %s (was %s)", again, id2)
	}

	// Remove.
	if r := call(t, "DELETE", "/api/friends/"+b.ID, a.Access, nil); r.Status != 204 || len(r.Raw) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	expect(t, call(t, "DELETE", "/api/friends/"+b.ID, a.Access, nil), 404, "NOT_FOUND")
	expect(t, call(t, "DELETE", "/api/friends/zzz", a.Access, nil), 404, "NOT_FOUND")
	if l := call(t, "GET", "/api/friends", b.Access, nil); len(l.list()) != 0 {
		t.Fatalf("still friends: %s", l.Raw)
	}
}

func mustID(s string) bson.ObjectID {
	id, ok := models.ParseID(s)
	if !ok {
		panic("bad id " + s)
	}
	return id
}

// Login marks the user online for friends (REST.md, last line).
func TestLoginAnnouncesOnlineToFriends(t *testing.T) {
	a, b := register(t), register(t)
	id := friendRequest(t, a, b)
	if r := call(t, "POST", "/api/friends/requests/"+id+"/accept", b.Access, nil); r.Status != 200 {
		t.Fatalf("accept: %s", r.Raw)
	}
	sock := dial(t, b.Access)
	defer sock.Close()
	r := call(t, "POST", "/api/auth/login", "", map[string]any{"login": a.Username, "password": a.Password})
	if r.Status != 200 {
		t.Fatalf("login %s", r.Raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		args, err := sock.Wait(ctx, "user:status")
		if err != nil {
			t.Fatalf("no user:status for the login: %v", err)
		}
		var p struct{ UserID, Status, UpdatedAt string }
		if err := json.Unmarshal(args[0], &p); err != nil {
			t.Fatal(err)
		}
		if p.UserID == a.ID {
			if p.Status != "online" || p.UpdatedAt == "" {
				t.Fatalf("payload %s", args[0])
			}
			break
		}
	}
}
