package app_test

// Matchmaking through the whole server (written by the matchmaking helper): REST requests, the
// ticking matcher, the lobby service and Socket.IO clients. These tests run their own server with a
// fast matcher (100 ms tick, 4 s maximum search, 500 ms status interval, relaxation after 1 s), so
// expiry and status updates can be watched in a few seconds.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/services/matchmaking"
)

// mmServer is a server with a fast matcher; stopped when the test ends.
type mmServer struct {
	t    *testing.T
	base string
	app  *app.App
}

func startMatchServer(t *testing.T) *mmServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "maoga-mm-*")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.MatchTick = 100 * time.Millisecond
	cfg.MatchStatusInterval = 500 * time.Millisecond
	cfg.MatchMaxSearch = 4 * time.Second // a round of many matches under -race on a busy machine takes ~2 s
	cfg.MatchLevels = []matchmaking.Level{{After: 0, SkillWindow: 100}, {After: time.Second, SkillWindow: math.Inf(1)}}
	a, err := app.New(context.Background(), cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Start(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return &mmServer{t: t, base: "http://" + ln.Addr().String(), app: a}
}

func (s *mmServer) call(method, path, token string, body any) reply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(s.t, req)
}

func (s *mmServer) register() *testUser {
	s.t.Helper()
	u := &testUser{Username: uniqueName("mm"), Password: "password123"}
	u.Email = u.Username + "@example.com"
	r := s.call("POST", "/api/auth/register", "", map[string]any{"username": u.Username, "email": u.Email, "password": u.Password})
	if r.Status != http.StatusCreated {
		s.t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	d := r.data()
	u.ID = d["user"].(map[string]any)["id"].(string)
	u.Access = d["accessToken"].(string)
	return u
}

// dial connects and waits until the connection's handlers answer (an event sent before they are
// registered would be dropped).
func (s *mmServer) dial(u *testUser) *clienttest.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := clienttest.Dial(ctx, s.base, clienttest.Options{Auth: map[string]any{"token": u.Access}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = c.Close() })
	for i := 0; ; i++ {
		actx, acancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := c.EmitWithAck(actx, "matchmaking:unsubscribe", map[string]any{"requestId": "probe"})
		acancel()
		if err == nil {
			return c
		}
		if i == 10 {
			s.t.Fatalf("handlers of the connection never answered: %v", err)
		}
	}
}

// search posts a request and returns its id.
func (s *mmServer) search(u *testUser, mode, region string, skill float64) string {
	s.t.Helper()
	r := s.call("POST", "/api/matchmaking", u.Access, map[string]any{"gameId": "arena-shooter", "gameMode": mode,
		"region": region, "skill": skill})
	if r.Status != http.StatusCreated {
		s.t.Fatalf("search: %d %s", r.Status, r.Raw)
	}
	d := r.data()
	if d["status"] != "searching" || d["createdAt"] == nil {
		s.t.Fatalf("search answer %s", r.Raw)
	}
	return d["matchRequestId"].(string)
}

func mmWait(t *testing.T, c *clienttest.Client, event string, timeout time.Duration) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args, err := c.Wait(ctx, event)
	if err != nil {
		t.Fatalf("waiting for %s: %v", event, err)
	}
	var m map[string]any
	if err := json.Unmarshal(args[0], &m); err != nil {
		t.Fatalf("%s: %s", event, args[0])
	}
	return m
}

func mmAck(t *testing.T, c *clienttest.Client, event string, payload any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args, err := c.EmitWithAck(ctx, event, payload)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var m map[string]any
	if err := json.Unmarshal(args[0], &m); err != nil {
		t.Fatalf("%s ack: %s", event, args[0])
	}
	return m
}

// mmRefused checks one refused action answers with code on all three channels.
func mmRefused(t *testing.T, c *clienttest.Client, event string, payload any, requestID, code string) {
	t.Helper()
	ack := mmAck(t, c, event, payload)
	e, _ := ack["error"].(map[string]any)
	if ack["ok"] != false || e["code"] != code || e["message"] == "" {
		t.Fatalf("%s %v: ack %v, want %s", event, payload, ack, code)
	}
	if got := mmWait(t, c, "error", 2*time.Second); got["code"] != code {
		t.Fatalf("%s: error event %v, want %s", event, got, code)
	}
	got := mmWait(t, c, "matchmaking:error", 2*time.Second)
	if got["code"] != code || got["requestId"] != requestID || got["message"] != e["message"] {
		t.Fatalf("%s: matchmaking:error %v, want %s for %q", event, got, code, requestID)
	}
}

func TestMatchmakingEndToEnd(t *testing.T) {
	s := startMatchServer(t)

	t.Run("two users matched land in the same lobby", func(t *testing.T) {
		ann, bob := s.register(), s.register()
		annSock, bobSock := s.dial(ann), s.dial(bob)
		annReq := s.search(ann, "1v1", "eu-match", 1500)
		// Subscribe right away, before bob searches: one status at once.
		if ack := mmAck(t, annSock, "matchmaking:subscribe", map[string]any{"requestId": annReq}); ack["ok"] != true {
			t.Fatalf("subscribe ack %v", ack)
		}
		st := mmWait(t, annSock, "matchmaking:status", 2*time.Second)
		if st["requestId"] != annReq || st["status"] != "searching" || st["currentRelaxationLevel"] != 0.0 {
			t.Fatalf("first status %v", st)
		}
		bobReq := s.search(bob, "1v1", "eu-match", 1520)
		ma := mmWait(t, annSock, "matchmaking:matched", 5*time.Second)
		mb := mmWait(t, bobSock, "matchmaking:matched", 5*time.Second)
		lobbyID, _ := ma["lobbyId"].(string)
		if lobbyID == "" || mb["lobbyId"] != lobbyID || ma["requestId"] != annReq || mb["requestId"] != bobReq ||
			ma["gameId"] != "arena-shooter" || ma["gameMode"] != "1v1" || ma["matchedAt"] == nil {
			t.Fatalf("matched %v / %v", ma, mb)
		}
		// Subscribed and in the user room: still exactly one matched event.
		time.Sleep(300 * time.Millisecond)
		if n := annSock.Pending("matchmaking:matched"); n != 0 {
			t.Fatalf("%d extra matched events", n)
		}
		// The lobby has both as members, and its chat is open to them.
		r := s.call("GET", "/api/lobbies/"+lobbyID, bob.Access, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("lobby: %d %s", r.Status, r.Raw)
		}
		members := map[string]bool{}
		for _, m := range r.data()["members"].([]any) {
			mm := m.(map[string]any)
			if mm["status"] == "joined" {
				members[mm["userId"].(string)] = true
			}
		}
		if len(members) != 2 || !members[ann.ID] || !members[bob.ID] {
			t.Fatalf("lobby members %s", r.Raw)
		}
		if ack := mmAck(t, annSock, "chat:join", map[string]any{"chatId": "lobby:" + lobbyID}); ack["ok"] != true {
			t.Fatalf("lobby chat join: %v", ack)
		}
		g := s.call("GET", "/api/matchmaking/"+annReq, ann.Access, nil)
		if g.Status != http.StatusOK || g.data()["status"] != "matched" || g.data()["lobbyId"] != lobbyID {
			t.Fatalf("GET matched request: %d %s", g.Status, g.Raw)
		}
		// Sitting in an open lobby: no new search.
		expect(t, s.call("POST", "/api/matchmaking", ann.Access, map[string]any{"gameId": "arena-shooter",
			"gameMode": "1v1", "region": "eu-match"}), http.StatusConflict, "CONFLICT")
	})

	t.Run("cancel over the socket and over REST", func(t *testing.T) {
		u, other := s.register(), s.register()
		c := s.dial(u)
		id := s.search(u, "2v2", "cancel-1", 1000)
		expect(t, s.call("POST", "/api/matchmaking", u.Access, map[string]any{"gameId": "arena-shooter",
			"gameMode": "1v1", "region": "eu"}), http.StatusConflict, "CONFLICT")
		if ack := mmAck(t, c, "matchmaking:subscribe", map[string]any{"matchRequestId": id}); ack["ok"] != true {
			t.Fatalf("subscribe by matchRequestId: %v", ack)
		}
		mmWait(t, c, "matchmaking:status", 2*time.Second)
		ack := mmAck(t, c, "matchmaking:cancel", map[string]any{"requestId": id})
		if ack["ok"] != true || ack["requestId"] != id || ack["cancelledAt"] == "" {
			t.Fatalf("cancel ack %v", ack)
		}
		ev := mmWait(t, c, "matchmaking:cancelled", 2*time.Second)
		if ev["requestId"] != id || ev["cancelledAt"] != ack["cancelledAt"] {
			t.Fatalf("cancelled %v", ev)
		}
		mmRefused(t, c, "matchmaking:cancel", map[string]any{"requestId": id}, id, "CANCEL_ERROR")
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{"requestId": id}, id, "SUBSCRIPTION_ERROR")

		// REST: DELETE answers the cancelled request; the socket hears it too.
		id2 := s.search(u, "2v2", "cancel-2", 1000)
		expect(t, s.call("DELETE", "/api/matchmaking/"+id2, other.Access, nil), http.StatusNotFound, "NOT_FOUND")
		r := s.call("DELETE", "/api/matchmaking/"+id2, u.Access, nil)
		if r.Status != http.StatusOK || r.data()["status"] != "cancelled" || r.data()["cancelledAt"] == nil {
			t.Fatalf("DELETE: %d %s", r.Status, r.Raw)
		}
		if ev := mmWait(t, c, "matchmaking:cancelled", 2*time.Second); ev["requestId"] != id2 {
			t.Fatalf("cancelled after DELETE %v", ev)
		}
		expect(t, s.call("DELETE", "/api/matchmaking/"+id2, u.Access, nil), http.StatusConflict, "CONFLICT")
	})

	t.Run("status updates and relaxation", func(t *testing.T) {
		u := s.register()
		c := s.dial(u)
		id := s.search(u, "5v5", "status", 1000)
		mmAck(t, c, "matchmaking:subscribe", map[string]any{"requestId": id})
		first := mmWait(t, c, "matchmaking:status", 2*time.Second)
		if first["status"] != "searching" || first["potentialMatchesFound"] != 0.0 || first["estimatedWaitTime"] == nil ||
			first["searchTimeElapsed"] == nil {
			t.Fatalf("first status %v", first)
		}
		// After 1 s the level changes: a status at once, "relaxing_criteria".
		deadline := time.Now().Add(3 * time.Second)
		for {
			st := mmWait(t, c, "matchmaking:status", 2*time.Second)
			if st["status"] == "relaxing_criteria" && st["currentRelaxationLevel"] == 1.0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never relaxed: %v", st)
			}
		}
		g := s.call("GET", "/api/matchmaking/"+id, u.Access, nil)
		if g.Status != http.StatusOK || g.data()["status"] != "relaxing_criteria" || g.data()["currentRelaxationLevel"] != 1.0 {
			t.Fatalf("GET: %d %s", g.Status, g.Raw)
		}
		// Unsubscribed: no more statuses.
		mmAck(t, c, "matchmaking:unsubscribe", map[string]any{"requestId": id})
		time.Sleep(100 * time.Millisecond)
		for c.Pending("matchmaking:status") > 0 {
			mmWait(t, c, "matchmaking:status", time.Second)
		}
		time.Sleep(800 * time.Millisecond) // longer than the status interval
		if n := c.Pending("matchmaking:status"); n != 0 {
			t.Fatalf("%d statuses after unsubscribe", n)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		u := s.register()
		c := s.dial(u)
		id := s.search(u, "5v5", "expiry", 1000)
		ev := mmWait(t, c, "matchmaking:expired", 8*time.Second)
		if ev["requestId"] != id || ev["expiredAt"] == nil {
			t.Fatalf("expired %v", ev)
		}
		g := s.call("GET", "/api/matchmaking/"+id, u.Access, nil)
		if g.Status != http.StatusOK || g.data()["status"] != "expired" || g.data()["searchTimeElapsed"].(float64) < 4 {
			t.Fatalf("GET expired: %d %s", g.Status, g.Raw)
		}
		mmRefused(t, c, "matchmaking:cancel", map[string]any{"requestId": id}, id, "CANCEL_ERROR")
		s.search(u, "5v5", "expiry", 1000) // may search again
	})

	t.Run("error codes", func(t *testing.T) {
		u, other := s.register(), s.register()
		c := s.dial(u)
		theirs := s.search(other, "5v5", "errors", 1000)
		unknown := "64b000000000000000000000"
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{"requestId": unknown}, unknown, "MATCH_NOT_FOUND")
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{"requestId": theirs}, theirs, "MATCH_NOT_FOUND")
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{"requestId": "not-an-id"}, "not-an-id", "MATCH_NOT_FOUND")
		mmRefused(t, c, "matchmaking:cancel", map[string]any{"requestId": theirs}, theirs, "MATCH_NOT_FOUND")
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{}, "", "VALIDATION_ERROR")
		mmRefused(t, c, "matchmaking:subscribe", map[string]any{"requestId": 5}, "", "VALIDATION_ERROR")
		mmRefused(t, c, "matchmaking:cancel", map[string]any{"requestId": theirs, "extra": true}, "", "VALIDATION_ERROR")
		mmRefused(t, c, "matchmaking:unsubscribe", "x", "", "VALIDATION_ERROR")
		if r := s.call("GET", "/api/matchmaking/"+theirs, other.Access, nil); r.Status != http.StatusOK {
			t.Fatalf("owner GET: %d", r.Status)
		}
		expect(t, s.call("GET", "/api/matchmaking/"+theirs, u.Access, nil), http.StatusNotFound, "NOT_FOUND")
		expect(t, s.call("GET", "/api/matchmaking/"+theirs, "", nil), http.StatusUnauthorized, "UNAUTHORIZED")
		for _, body := range []map[string]any{
			{"gameMode": "1v1", "region": "eu"},
			{"gameId": "nope", "gameMode": "1v1", "region": "eu"},
			{"gameId": "arena-shooter", "gameMode": "nope", "region": "eu"},
			{"gameId": "arena-shooter", "gameMode": "1v1"},
			{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": -5},
			{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": "high"},
			{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "rank": 3},
			{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "criteria": map[string]any{"a": []int{1}}},
		} {
			expect(t, s.call("POST", "/api/matchmaking", u.Access, body), http.StatusBadRequest, "VALIDATION_ERROR")
		}
	})

	t.Run("many users at once never share or double lobbies", func(t *testing.T) {
		const n = 10
		users := make([]*testUser, n)
		for i := range users {
			users[i] = s.register()
		}
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range users {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ids[i] = s.search(users[i], "1v1", "crowd", 1000+float64(i))
			}(i)
		}
		wg.Wait()
		lobbies := map[string][]string{}
		deadline := time.Now().Add(10 * time.Second)
		for i, u := range users {
			for {
				g := s.call("GET", "/api/matchmaking/"+ids[i], u.Access, nil)
				if g.data()["status"] == "matched" {
					l := g.data()["lobbyId"].(string)
					lobbies[l] = append(lobbies[l], u.ID)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("request %d not matched: %s", i, g.Raw)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if len(lobbies) != n/2 {
			t.Fatalf("%d users in %d lobbies: %v", n, len(lobbies), lobbies)
		}
		for l, members := range lobbies {
			if len(members) != 2 {
				t.Fatalf("lobby %s: %v", l, members)
			}
			for _, m := range members {
				open, err := s.app.Lobbies.OpenLobbyOf(context.Background(), m)
				if err != nil || open == nil || open.ID.Hex() != l {
					t.Fatalf("user %s: open lobby %v (%v), want %s", m, open, err, l)
				}
			}
		}
	})
}

func TestMatchmakingConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg, err := app.FromEnv(env(map[string]string{"MATCH_TICK": "250ms", "MATCH_STATUS_INTERVAL": "2s",
		"MATCH_MAX_SEARCH": "90s", "MATCH_RELAXATION": "0s:50,5s:*", "MATCH_REGIONS": "EU, na ,"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MatchTick != 250*time.Millisecond || cfg.MatchStatusInterval != 2*time.Second || cfg.MatchMaxSearch != 90*time.Second ||
		len(cfg.MatchLevels) != 2 || cfg.MatchLevels[0].SkillWindow != 50 || !cfg.MatchLevels[1].Unbounded() ||
		len(cfg.MatchRegions) != 2 || cfg.MatchRegions[0] != "eu" || cfg.MatchRegions[1] != "na" {
		t.Fatalf("config %+v", cfg)
	}
	d := app.Defaults()
	if d.MatchTick != time.Second || d.MatchStatusInterval != 5*time.Second || len(d.MatchLevels) == 0 || d.MatchRegions != nil {
		t.Fatalf("defaults %+v", d)
	}
	for k, v := range map[string]string{"MATCH_TICK": "0s", "MATCH_MAX_SEARCH": "soon", "MATCH_RELAXATION": "5s:100",
		"MATCH_REGIONS": "eu west"} {
		if _, err := app.FromEnv(env(map[string]string{k: v})); err == nil {
			t.Fatalf("%s=%q accepted", k, v)
		}
	}
}
