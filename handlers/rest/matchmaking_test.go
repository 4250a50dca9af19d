package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/maoga/maoga/handlers/rest"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/metrics"
	"github.com/maoga/maoga/services/realtime"
)

type mmUser struct{ token string }

type mmEnv struct {
	t   *testing.T
	url string
}

type mmReply struct {
	status int
	raw    []byte
	body   struct {
		Data  map[string]any `json:"data"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
}

func (r mmReply) data() map[string]any { return r.body.Data }
func (r mmReply) code() string         { return r.body.Error.Code }

// do sends body (a string as is, anything else as JSON) and decodes the envelope.
func (e *mmEnv) do(method, path, token string, body any) mmReply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := mmReply{status: resp.StatusCode}
	r.raw, _ = io.ReadAll(resp.Body)
	if err := json.Unmarshal(r.raw, &r.body); err != nil {
		e.t.Fatalf("%s %s: body %q: %v", method, path, r.raw, err)
	}
	return r
}

// matchLobbies hands out lobby ids and seats nobody (the REST layer is under test here).
type matchLobbies struct{}

func (matchLobbies) CreateForMatch(context.Context, string, string, []string, []string) (string, error) {
	return bson.NewObjectID().Hex(), nil
}
func (matchLobbies) InOpenLobby(context.Context, string) (bool, error) { return false, nil }

func TestMatchmakingRoutes(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := models.Open(ctx, models.Config{DataDir: t.TempDir(), Database: "rest_matchmaking", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	authSvc, err := auth.New(store, auth.Config{Secret: []byte("rest-matchmaking-secret"), BcryptCost: bcrypt.MinCost}, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	cat := games.New(store)
	if err := cat.Seed(ctx, games.Defaults); err != nil {
		t.Fatal(err)
	}
	svc, err := matchmaking.New(matchmaking.Options{Store: store, Games: cat, Lobbies: matchLobbies{},
		Emitter: &realtime.Recorder{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	api := rest.New(rest.Options{Auth: authSvc, Store: store, Metrics: metrics.NewApp(), Logger: log})
	rest.RegisterMatchmaking(api, svc)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &mmEnv{t: t, url: srv.URL}
	newUser := func(name string) mmUser {
		s, err := authSvc.Register(ctx, auth.RegisterInput{Username: name, Email: name + "@example.com", Password: "password123"})
		if err != nil {
			t.Fatal(err)
		}
		return mmUser{token: s.AccessToken}
	}
	ann, bob := newUser("ann"), newUser("bob")

	body := map[string]any{"gameId": "arena-shooter", "gameMode": "1v1", "region": "EU", "skill": 1200}
	r := e.do("POST", "/api/matchmaking", ann.token, body)
	if r.status != http.StatusCreated || r.data()["status"] != "searching" || r.data()["createdAt"] == nil || len(r.data()) != 3 {
		t.Fatalf("POST: %d %s", r.status, r.raw)
	}
	annReq := r.data()["matchRequestId"].(string)
	if r := e.do("POST", "/api/matchmaking", ann.token, body); r.status != http.StatusConflict || r.code() != "CONFLICT" {
		t.Fatalf("second POST: %d %s", r.status, r.raw)
	}
	for _, bad := range []any{
		map[string]any{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "mmr": 1},
		map[string]any{"gameId": "arena-shooter", "gameMode": "9v9", "region": "eu"},
		map[string]any{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": 1e9},
		"not json",
	} {
		if r := e.do("POST", "/api/matchmaking", bob.token, bad); r.status != http.StatusBadRequest || r.code() != "VALIDATION_ERROR" {
			t.Fatalf("POST %v: %d %s", bad, r.status, r.raw)
		}
	}
	r = e.do("GET", "/api/matchmaking/"+annReq, ann.token, nil)
	if r.status != http.StatusOK || r.data()["status"] != "searching" || r.data()["region"] != "eu" ||
		r.data()["currentRelaxationLevel"] != 0.0 || r.data()["searchTimeElapsed"] == nil {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/api/matchmaking/"+annReq, bob.token, nil); r.status != http.StatusNotFound || r.code() != "NOT_FOUND" {
		t.Fatalf("GET by another user: %d %s", r.status, r.raw)
	}
	if r := e.do("GET", "/api/matchmaking/"+annReq, "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("GET without token: %d", r.status)
	}

	// Bob searches too; a round matches them; GET shows the lobby; DELETE is too late.
	r = e.do("POST", "/api/matchmaking", bob.token, map[string]any{"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": 1210})
	bobReq := r.data()["matchRequestId"].(string)
	if err := svc.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/api/matchmaking/"+bobReq, bob.token, nil)
	if r.data()["status"] != "matched" || r.data()["lobbyId"] == nil || r.data()["matchedAt"] == nil {
		t.Fatalf("GET matched: %s", r.raw)
	}
	if r := e.do("DELETE", "/api/matchmaking/"+bobReq, bob.token, nil); r.status != http.StatusConflict || r.code() != "CONFLICT" {
		t.Fatalf("DELETE matched: %d %s", r.status, r.raw)
	}

	// DELETE of a searching request answers it cancelled.
	r = e.do("POST", "/api/matchmaking", ann.token, body)
	again := r.data()["matchRequestId"].(string)
	if r := e.do("DELETE", "/api/matchmaking/"+again, bob.token, nil); r.status != http.StatusNotFound {
		t.Fatalf("DELETE by another user: %d %s", r.status, r.raw)
	}
	r = e.do("DELETE", "/api/matchmaking/"+again, ann.token, nil)
	if r.status != http.StatusOK || r.data()["status"] != "cancelled" || r.data()["cancelledAt"] == nil {
		t.Fatalf("DELETE: %d %s", r.status, r.raw)
	}
}
