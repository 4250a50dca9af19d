package app_test

// Hostile REST bodies and other users' ids (issue 8, Application): a table over every route with a
// body; each mutation answers the documented error envelope, writes nothing and leaks nothing.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
)

type restField struct {
	name     string
	kind     fieldKind // kString, kBool, or kNumber/kObject below
	required bool
	// longCodes: acceptable codes for a 3000-character string (default VALIDATION_ERROR).
	longCodes []string
}

const (
	kNumber fieldKind = iota + 10
	kObject
)

type restRoute struct {
	method, path string
	token        string
	base         map[string]any
	fields       []restField
}

type restCase struct {
	name   string
	body   any // string: sent raw
	status []int
	codes  []string
}

func restCases(r restRoute) []restCase {
	v, c400 := []string{"VALIDATION_ERROR"}, []int{400}
	long := strings.Repeat("x", 3000)
	cs := []restCase{
		{"not JSON", `{"a":`, c400, v},
		{"empty body", ``, c400, v},
		{"null", `null`, c400, v},
		{"number", `42`, c400, v},
		{"string", `"x"`, c400, v},
		{"array", `[{}]`, c400, v},
		{"two objects", `{} {}`, c400, v},
		{"extra field", with(r.base, "role", "admin"), c400, v},
		{"mass assignment", with(r.base, "accountStatus", "active"), c400, v},
		{"operator key", with(r.base, "$where", "1 == 1"), c400, v},
		{"huge body (1 MB)", `{"x":"` + strings.Repeat("A", 1<<20) + `"}`, []int{413}, []string{"PAYLOAD_TOO_LARGE"}},
	}
	for _, f := range r.fields {
		var wrong any = 42
		switch f.kind {
		case kBool:
			wrong = "true"
		case kNumber:
			wrong = "1000"
		case kObject:
			wrong = "x"
		}
		cs = append(cs,
			restCase{f.name + " wrong type", with(r.base, f.name, wrong), c400, v},
			restCase{f.name + " array", with(r.base, f.name, []any{1}), c400, v},
		)
		if f.kind == kString {
			lc := f.longCodes
			if lc == nil {
				lc = v
			}
			cs = append(cs,
				restCase{f.name + " $ne", with(r.base, f.name, map[string]any{"$ne": ""}), c400, v},
				restCase{f.name + " $gt", with(r.base, f.name, map[string]any{"$gt": ""}), c400, v},
				restCase{f.name + " 3000 chars", with(r.base, f.name, long), []int{400, 401, 404, 409}, lc},
			)
		}
		if f.kind == kObject {
			cs = append(cs, restCase{f.name + " operator inside", with(r.base, f.name, map[string]any{"$set": map[string]any{"a": 1}}), c400, v},
				restCase{f.name + " nested operator", with(r.base, f.name, map[string]any{"a": map[string]any{"$ne": 1}}), c400, v})
		}
		if f.required {
			cs = append(cs, restCase{f.name + " missing", without(r.base, f.name), c400, v})
		}
	}
	return cs
}

func intIn(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// checkREST checks one hostile answer: status and code, no secret, no hash.
func checkREST(t *testing.T, what string, r reply, status []int, codes []string, secrets ...string) {
	t.Helper()
	if !intIn(status, r.Status) || !containsStr(codes, r.errCode()) || r.errMessage() == "" || !r.restCodeOK() {
		t.Errorf("%s: got %d %.300s, want %v %v", what, r.Status, r.Raw, status, codes)
	}
	checkNoLeak(t, what, strings.ReplaceAll(strings.ToLower(r.errMessage()), "password", "pw"), secrets...)
	noHashIn(t, what, r.Raw, true)
}

// noHash fails when an answer carries a password hash or a password field.
func noHash(t *testing.T, what string, raw []byte) { t.Helper(); noHashIn(t, what, raw, false) }

// noHashIn: an error answer may name the field "password" in its details (never its value).
func noHashIn(t *testing.T, what string, raw []byte, isError bool) {
	t.Helper()
	s := string(raw)
	if strings.Contains(s, "$2a$") || strings.Contains(s, "$2b$") || (!isError && strings.Contains(s, `"password`)) ||
		strings.Contains(strings.ToLower(s), "passwordhash") || strings.Contains(s, "password123") {
		t.Errorf("%s: answer carries a password or hash: %.300s", what, s)
	}
}

func TestHostileRESTBodies(t *testing.T) {
	alice, bob, mallory := register(t), register(t), register(t)
	secrets := []string{alice.Email, bob.Email}
	al := createLobby(t, alice, nil)["id"].(string)
	ml := createLobby(t, mallory, nil)["id"].(string)
	before := settledCounts(t)

	routes := []restRoute{
		{"POST", "/api/auth/register", "", map[string]any{"username": "newname", "email": "n@example.com", "password": "password123", "displayName": "N"},
			[]restField{{name: "username", kind: kString, required: true}, {name: "email", kind: kString, required: true},
				{name: "password", kind: kString, required: true}, {name: "displayName", kind: kString}}},
		{"POST", "/api/auth/login", "", map[string]any{"login": alice.Username, "password": "wrong-password"},
			[]restField{{name: "login", kind: kString, required: true, longCodes: []string{"VALIDATION_ERROR", "UNAUTHORIZED"}},
				{name: "password", kind: kString, required: true, longCodes: []string{"VALIDATION_ERROR", "UNAUTHORIZED"}}}},
		{"POST", "/api/auth/refresh", "", map[string]any{"refreshToken": "nope"},
			[]restField{{name: "refreshToken", kind: kString, required: true, longCodes: []string{"VALIDATION_ERROR", "UNAUTHORIZED"}}}},
		{"PATCH", "/api/users/me", mallory.Access, map[string]any{"displayName": "M"},
			[]restField{{name: "displayName", kind: kString}, {name: "bio", kind: kString}, {name: "avatarUrl", kind: kString}}},
		{"POST", "/api/friends/requests", mallory.Access, map[string]any{"userId": mallory.ID},
			[]restField{{name: "userId", kind: kString, required: true, longCodes: []string{"VALIDATION_ERROR", "NOT_FOUND"}}}},
		{"POST", "/api/chats/direct", mallory.Access, map[string]any{"userId": mallory.ID},
			[]restField{{name: "userId", kind: kString, required: true, longCodes: []string{"VALIDATION_ERROR", "NOT_FOUND"}}}},
		{"POST", "/api/matchmaking", mallory.Access, map[string]any{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": 1000, "criteria": map[string]any{"map": "x"}},
			[]restField{{name: "gameId", kind: kString, required: true}, {name: "gameMode", kind: kString, required: true},
				{name: "region", kind: kString, required: true}, {name: "skill", kind: kNumber}, {name: "criteria", kind: kObject}}},
		{"POST", "/api/lobbies", mallory.Access, map[string]any{"gameId": "party-trivia", "gameMode": "casual", "capacity": map[string]any{"min": 2, "max": 4},
			"settings": map[string]any{"map": "x"}, "visibility": "private"},
			[]restField{{name: "gameId", kind: kString, required: true}, {name: "gameMode", kind: kString, required: true},
				{name: "capacity", kind: kObject}, {name: "settings", kind: kObject}, {name: "visibility", kind: kString}}},
		{"PATCH", "/api/lobbies/" + ml, mallory.Access, map[string]any{"settings": map[string]any{"map": "y"}, "capacity": map[string]any{"min": 2, "max": 5}},
			[]restField{{name: "settings", kind: kObject}, {name: "capacity", kind: kObject}}},
		{"POST", "/api/lobbies/" + ml + "/ready", mallory.Access, map[string]any{"isReady": true},
			[]restField{{name: "isReady", kind: kBool, required: true}}},
	}
	n := 0
	for _, rt := range routes {
		for _, tc := range restCases(rt) {
			what := rt.method + " " + rt.path + " / " + tc.name
			r := call(t, rt.method, rt.path, rt.token, tc.body)
			checkREST(t, what, r, tc.status, tc.codes, secrets...)
			n++
		}
	}
	sameCounts(t, before, "hostile REST bodies")
	if r := call(t, "GET", "/api/lobbies/"+ml, mallory.Access, nil); r.Status != 200 ||
		len(r.data()["settings"].(map[string]any)) != 0 || r.data()["capacity"].(map[string]any)["max"] != 8.0 {
		t.Errorf("mallory's lobby changed by refused PATCHes: %s", r.Raw)
	}
	_ = al
	t.Logf("%d hostile REST bodies answered with the documented error", n)
}

// No user reads or writes another user's lobby, chat, match request, notification or friendship.
func TestHostileRESTForeignIDs(t *testing.T) {
	alice, bob, carol, mallory := register(t), register(t), register(t), register(t)
	secrets := []string{alice.Email, bob.Email, carol.Email}
	al := createLobby(t, alice, nil)["id"].(string)
	joinLobby(t, bob, al)
	dc := directChat(t, alice, bob)
	fr := friendRequest(t, carol, alice)
	r := call(t, "POST", "/api/matchmaking", carol.Access, map[string]any{"gameId": "arena-shooter", "gameMode": "5v5", "region": "hostile-rest", "skill": 1000})
	if r.Status != http.StatusCreated {
		t.Fatalf("search: %d %s", r.Status, r.Raw)
	}
	cr := r.data()["matchRequestId"].(string)
	t.Cleanup(func() { call(t, "DELETE", "/api/matchmaking/"+cr, carol.Access, nil) })
	var note models.Notification
	aid, _ := models.ParseID(alice.ID)
	waitFor(t, func() bool {
		return srv.Store.Collection(models.NotificationsCollection).FindOne(context.Background(), bson.M{"userId": aid}).Decode(&note) == nil
	})
	before := settledCounts(t)

	forbidden := []int{403, 404}
	cases := []struct {
		method, path string
		body         any
		status       []int
		codes        []string
	}{
		{"GET", "/api/lobbies/" + al, nil, forbidden, []string{"ACCESS_DENIED"}},
		{"POST", "/api/lobbies/" + al + "/leave", nil, forbidden, []string{"ACCESS_DENIED"}},
		{"PATCH", "/api/lobbies/" + al, map[string]any{"settings": map[string]any{"map": "pwned"}}, forbidden, []string{"NOT_HOST", "ACCESS_DENIED"}},
		{"POST", "/api/lobbies/" + al + "/ready", map[string]any{"isReady": true}, []int{403, 409}, []string{"ACCESS_DENIED", "LOBBY_ERROR"}},
		{"POST", "/api/lobbies/" + al + "/start", nil, forbidden, []string{"NOT_HOST", "ACCESS_DENIED"}},
		{"POST", "/api/lobbies/" + al + "/close", nil, forbidden, []string{"NOT_HOST", "ACCESS_DENIED"}},
		{"GET", "/api/chats/" + dc + "/messages", nil, forbidden, []string{"ACCESS_DENIED", "FORBIDDEN", "CHAT_NOT_FOUND"}},
		{"GET", "/api/chats/lobby:" + al + "/messages", nil, forbidden, []string{"ACCESS_DENIED", "FORBIDDEN", "CHAT_NOT_FOUND"}},
		{"GET", "/api/matchmaking/" + cr, nil, []int{404}, []string{"MATCH_NOT_FOUND", "NOT_FOUND"}},
		{"DELETE", "/api/matchmaking/" + cr, nil, []int{404}, []string{"MATCH_NOT_FOUND", "NOT_FOUND"}},
		{"PATCH", "/api/notifications/" + note.ID.Hex() + "/read", nil, []int{404}, []string{"NOT_FOUND"}},
		{"POST", "/api/friends/requests/" + fr + "/accept", nil, forbidden, []string{"FORBIDDEN", "NOT_FOUND"}},
		{"POST", "/api/friends/requests/" + fr + "/reject", nil, forbidden, []string{"FORBIDDEN", "NOT_FOUND"}},
		{"DELETE", "/api/friends/" + alice.ID, nil, []int{404}, []string{"NOT_FOUND"}},
	}
	for _, tc := range cases {
		what := tc.method + " " + tc.path
		checkREST(t, what, call(t, tc.method, tc.path, mallory.Access, tc.body), tc.status, tc.codes, secrets...)
	}
	sameCounts(t, before, "foreign ids")

	// Nothing changed for the owners.
	if r := call(t, "GET", "/api/lobbies/"+al, alice.Access, nil); r.Status != 200 || len(r.data()["members"].([]any)) != 2 || len(r.data()["settings"].(map[string]any)) != 0 {
		t.Errorf("alice's lobby: %s", r.Raw)
	}
	if r := call(t, "GET", "/api/matchmaking/"+cr, carol.Access, nil); r.Status != 200 || r.data()["status"] == "cancelled" {
		t.Errorf("carol's request: %s", r.Raw)
	}
	var after models.Notification
	if err := srv.Store.Collection(models.NotificationsCollection).FindOne(context.Background(), bson.M{"_id": note.ID}).Decode(&after); err != nil ||
		after.Status != note.Status {
		t.Errorf("alice's notification: %v %v → %v", err, note.Status, after.Status)
	}
	// Listings never include other users' objects.
	for _, path := range []string{"/api/chats", "/api/notifications", "/api/friends"} {
		r := call(t, "GET", path, mallory.Access, nil)
		if r.Status != 200 || strings.Contains(string(r.Raw), dc) || strings.Contains(string(r.Raw), note.ID.Hex()) ||
			strings.Contains(string(r.Raw), alice.ID) {
			t.Errorf("GET %s shows other users' objects: %.300s", path, r.Raw)
		}
		noHash(t, path, r.Raw)
	}
	// A public profile carries no email, password or hash.
	r = call(t, "GET", "/api/users/"+alice.ID, mallory.Access, nil)
	if r.Status != 200 || strings.Contains(string(r.Raw), alice.Email) {
		t.Errorf("public profile: %s", r.Raw)
	}
	noHash(t, "public profile", r.Raw)
	for _, u := range []*testUser{alice, bob} {
		noHash(t, "users/me", call(t, "GET", "/api/users/me", u.Access, nil).Raw)
	}
	noHash(t, "login", call(t, "POST", "/api/auth/login", "", map[string]any{"login": alice.Username, "password": alice.Password}).Raw)
}
