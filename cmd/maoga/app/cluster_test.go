package app_test

// Two nodes of a cluster in this process (cluster helper): one Redis (its own redis-server), one
// shared store (the embedded FerretDB on a loopback port), two App values with REDIS_URL. Checks the
// wiring: presence and notifications reach a user connected to the other node, and cluster-once
// handlers (stored notifications) run once although both nodes receive the event.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/internal/redisserver"
	"github.com/maoga/maoga/internal/sharedstore"
)

type clusterNode struct {
	app *app.App
	url string
}

func startClusterNode(t *testing.T, cfg app.Config) *clusterNode {
	t.Helper()
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
	})
	n := &clusterNode{app: a, url: "http://" + ln.Addr().String()}
	deadline := time.Now().Add(10 * time.Second)
	for { // ready = store and Redis adapter link up
		res, err := http.Get(n.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (n *clusterNode) call(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %v %v", method, path, res.StatusCode, out, err)
	}
	return out
}

func (n *clusterNode) register(t *testing.T) (id, token string) {
	t.Helper()
	name := uniqueName("cl")
	d := n.call(t, "POST", "/api/auth/register", "", map[string]any{"username": name,
		"email": name + "@example.com", "password": "password123"})["data"].(map[string]any)
	return d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)
}

// clusterConfig starts a Redis and a shared store for the nodes of one test and returns their config
// on database db, and the Redis. The store's cleanup is registered here, before any node's: it runs
// after they stop.
func clusterConfig(t *testing.T, db string) (app.Config, *redisserver.Server) {
	t.Helper()
	r := redisserver.Start(t)
	store, err := sharedstore.Start(context.Background(), t.TempDir(), "127.0.0.1:0", quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Stop)
	cfg := testConfig(t.TempDir())
	cfg.MongoURI, cfg.MongoDatabase, cfg.RedisURL = store.URI(), db, r.URL()
	return cfg, r
}

func TestClusterTwoNodes(t *testing.T) {
	cfg, _ := clusterConfig(t, "cluster")
	n1 := startClusterNode(t, cfg) // first alone: it creates the collections and indexes
	n2 := startClusterNode(t, cfg)

	aID, aTok := n1.register(t)
	bID, bTok := n2.register(t)
	_, cTok := n1.register(t)

	// Friends: requested on node 1, accepted on node 2.
	fr := n1.call(t, "POST", "/api/friends/requests", aTok, map[string]any{"userId": bID})["data"].(map[string]any)
	n2.call(t, "POST", "/api/friends/requests/"+fr["id"].(string)+"/accept", bTok, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b := dialURL(t, n2.url, bTok)
	defer b.Close()
	// A connects on node 1: B, on node 2, hears it once.
	a := dialURL(t, n1.url, aTok)
	for {
		ev, err := b.Wait(ctx, "user:status")
		if err != nil {
			t.Fatalf("B did not hear A come online: %v", err)
		}
		var p struct{ UserID, Status string }
		_ = json.Unmarshal(ev[0], &p)
		if p.UserID == aID && p.Status == "online" {
			break
		}
	}
	if st, err := n2.app.Presence.Status(ctx, aID); err != nil || st != "online" {
		t.Fatalf("node 2 sees A as %q (%v)", st, err)
	}

	// A friend request made on node 1 is stored once and pushed to B on node 2.
	n1.call(t, "POST", "/api/friends/requests", cTok, map[string]any{"userId": bID})
	ev, err := b.Wait(ctx, "notification:new")
	if err != nil {
		t.Fatalf("B did not get the notification: %v", err)
	}
	if !bytes.Contains(ev[0], []byte("friend_request")) {
		t.Fatalf("notification %s", ev[0])
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate from the other node
	list := n1.call(t, "GET", "/api/notifications", bTok, nil)["data"].([]any)
	requests := 0
	for _, x := range list {
		if x.(map[string]any)["type"] == "friend_request" {
			requests++
		}
	}
	if requests != 2 { // A's (accepted) and C's
		t.Fatalf("B has %d friend_request notifications, want 2 (one per request): %v", requests, list)
	}
	if n := b.Pending("notification:new"); n != 0 {
		t.Fatalf("B got %d extra notification:new", n)
	}

	// A leaves: B hears offline.
	_ = a.Close()
	for {
		ev, err := b.Wait(ctx, "user:status")
		if err != nil {
			t.Fatalf("B did not hear A go offline: %v", err)
		}
		var p struct{ UserID, Status string }
		_ = json.Unmarshal(ev[0], &p)
		if p.UserID == aID && p.Status == "offline" {
			break
		}
	}
}

// Two nodes tick the same queues every 20 ms: the Redis lease lets one round per queue run at a time
// and the claims keep any user from being matched twice. Several rounds of users searching through
// both nodes at once: every user ends in exactly one lobby, every lobby has two distinct users.
func TestClusterMatchmakingTwoNodes(t *testing.T) {
	cfg, r := clusterConfig(t, "clustermm")
	cfg.MatchTick = 100 * time.Millisecond
	n1 := startClusterNode(t, cfg)
	n2 := startClusterNode(t, cfg)
	nodes := []*clusterNode{n1, n2}

	const rounds, perRound = 3, 8
	for round := 0; round < rounds; round++ {
		type user struct{ id, tok, req string }
		t.Logf("round %d start at %v", round, time.Now().Format("05.000"))
		users := make([]user, perRound)
		for i := range users {
			users[i].id, users[i].tok = nodes[i%2].register(t)
		}
		var wg sync.WaitGroup
		for i := range users {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				d := nodes[i%2].call(t, "POST", "/api/matchmaking", users[i].tok, map[string]any{
					"gameId": "arena-shooter", "gameMode": "1v1", "region": "eu", "skill": 1000})["data"].(map[string]any)
				users[i].req = d["matchRequestId"].(string)
			}(i)
		}
		wg.Wait()
		t.Logf("round %d searching at %v", round, time.Now().Format("05.000"))
		lobbies := map[string][]string{}
		deadline := time.Now().Add(15 * time.Second)
		for i, u := range users {
			for {
				d := nodes[(i+1)%2].call(t, "GET", "/api/matchmaking/"+u.req, u.tok, nil)["data"].(map[string]any)
				if d["status"] == "matched" {
					lobbies[d["lobbyId"].(string)] = append(lobbies[d["lobbyId"].(string)], u.id)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: request %d still %v", round, i, d["status"])
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		t.Logf("round %d matched at %v", round, time.Now().Format("05.000"))
		if len(lobbies) != perRound/2 {
			t.Fatalf("round %d: %d users in %d lobbies: %v", round, perRound, len(lobbies), lobbies)
		}
		for l, members := range lobbies {
			if len(members) != 2 || members[0] == members[1] {
				t.Fatalf("round %d: lobby %s has %v", round, l, members)
			}
			for _, m := range members {
				open, err := n1.app.Lobbies.OpenLobbyOf(context.Background(), m)
				if err != nil || open == nil || open.ID.Hex() != l {
					t.Fatalf("round %d: user %s is in lobby %v (%v), want %s", round, m, open, err, l)
				}
			}
		}
	}
	// The rounds were coordinated through Redis (fencing counter of the queue advanced).
	keys, err := r.Client().Keys(context.Background(), "mm:fence:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no matchmaking lease was taken in Redis: %v %v", keys, err)
	}
}
