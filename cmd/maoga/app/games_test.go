package app_test

// GET /api/games: the seeded catalogue. (Written by the lobby helper.)

import (
	"net/http"
	"testing"
)

func TestGamesCatalogue(t *testing.T) {
	expect(t, call(t, "GET", "/api/games", "", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	u := register(t)
	r := call(t, "GET", "/api/games", u.Access, nil)
	if r.Status != http.StatusOK || len(r.list()) < 3 {
		t.Fatalf("games: %d %s", r.Status, r.Raw)
	}
	if _, ok := r.Body["nextCursor"]; !ok {
		t.Fatalf("list envelope: %s", r.Raw)
	}
	var duel map[string]any
	for _, g := range r.list() {
		g := g.(map[string]any)
		if g["id"] == nil || g["name"] == nil || len(g["modes"].([]any)) == 0 {
			t.Fatalf("game: %v", g)
		}
		if g["id"] == "arena-shooter" {
			duel = g["modes"].([]any)[0].(map[string]any)
		}
	}
	c, _ := duel["capacity"].(map[string]any)
	if duel["id"] != "1v1" || duel["name"] == nil || duel["teamSize"] != 1.0 || c["min"] != 2.0 || c["max"] != 2.0 {
		t.Fatalf("arena-shooter 1v1: %v", duel)
	}
	// The catalogue drives lobby capacity: a 1v1 lobby takes two players.
	l := createLobby(t, u, map[string]any{"gameId": "arena-shooter", "gameMode": "1v1"})
	if lc := l["capacity"].(map[string]any); lc["min"] != 2.0 || lc["max"] != 2.0 {
		t.Fatalf("lobby capacity: %v", lc)
	}
}
