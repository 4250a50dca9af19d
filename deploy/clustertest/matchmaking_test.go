package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
)

type mmUser struct {
	id, tok string
	home    *node // where the user registered and queues
	req     string
	sock    *sock
}

// registerMany registers n users, spread over nodes, a few at a time.
func registerMany(t *testing.T, nodes []*node, n int) []*mmUser {
	t.Helper()
	users := make([]*mmUser, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := range users {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			nd := nodes[i%len(nodes)]
			u := &mmUser{home: nd}
			u.id, u.tok = nd.registerNoFatal(t)
			users[i] = u
		}(i)
	}
	wg.Wait()
	for _, u := range users {
		if u.id == "" {
			t.FailNow()
		}
	}
	return users
}

// registerNoFatal is register for helper goroutines (Errorf instead of Fatal).
func (nd *node) registerNoFatal(t *testing.T) (id, token string) {
	name := fmt.Sprintf("mm%d_%d", time.Now().UnixNano()%1e6, seq.Add(1))
	code, out := nd.doNoFatal("POST", "/api/auth/register", "", map[string]any{"username": name,
		"email": name + "@example.com", "password": "password123"})
	if code != http.StatusCreated {
		t.Errorf("node %d register: %d %v", nd.n, code, out)
		return "", ""
	}
	d := out["data"].(map[string]any)
	return d["user"].(map[string]any)["id"].(string), d["accessToken"].(string)
}

// queueAll posts every user's request through its home node at the same moment.
func queueAll(t *testing.T, users []*mmUser, gameMode, region string) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func(u *mmUser) {
			defer wg.Done()
			<-start
			code, out := u.home.doNoFatal("POST", "/api/matchmaking", u.tok, map[string]any{
				"gameId": "arena-shooter", "gameMode": gameMode, "region": region, "skill": 1000})
			if code != http.StatusCreated {
				t.Errorf("queue through node %d: %d %v", u.home.n, code, out)
				return
			}
			u.req = out["data"].(map[string]any)["matchRequestId"].(string)
		}(u)
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// TestMatchmakingAcrossProcesses: three maoga processes tick the same queues every 100 ms.
//
//  1. 20 rounds: 6 (1v1) or 4 (2v2) fresh users queue at the same moment through the three nodes,
//     each listening on another node than the one it queued through. Every user hears exactly one
//     matchmaking:matched, the users of one lobby all hear the same lobby, and the store agrees.
//  2. The node holding a queue's lease is frozen (SIGSTOP) mid-round for longer than the lease, the
//     others take over the queue, then it resumes its stale round: still nobody matched twice.
//  3. The node holding the lease is killed (SIGKILL): another node takes the queue over within the
//     lease TTL and matches the waiting users (measured).
//
// At the end the store is checked as a whole: every user sits in exactly one lobby, every lobby holds
// one group of its mode, every request points at the lobby that lists its user.
func TestMatchmakingAcrossProcesses(t *testing.T) {
	c := startCluster(t, 3, "MATCH_TICK=100ms")
	nodes := c.nodes
	var everyone []*mmUser

	const rounds = 20
	for round := 0; round < rounds; round++ {
		mode, n, group := "1v1", 6, 2
		if round%2 == 1 {
			mode, n, group = "2v2", 4, 4
		}
		t0 := time.Now()
		users := registerMany(t, nodes, n)
		t1 := time.Now()
		for i, u := range users {
			listen := nodes[(i+1)%len(nodes)]
			u.sock = dial(t, listen, u.tok, fmt.Sprintf("r%d/u%d@%d", round, i, listen.n))
		}
		t2 := time.Now()
		queueAll(t, users, mode, "eu")
		t3 := time.Now()
		lobbies := map[string][]string{}
		for _, u := range users {
			m := u.sock.next("matchmaking:matched", nil)
			if m["requestId"] != u.req || m["gameMode"] != mode {
				t.Fatalf("round %d: %s matched %v, want request %s", round, u.sock.name, m, u.req)
			}
			lid := m["lobbyId"].(string)
			lobbies[lid] = append(lobbies[lid], u.id)
		}
		t.Logf("round %d: register %v dial %v queue %v match %v", round, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
		if len(lobbies) != n/group {
			t.Fatalf("round %d: %d users in %d lobbies, want %d: %v", round, n, len(lobbies), n/group, lobbies)
		}
		for lid, members := range lobbies {
			if len(members) != group {
				t.Fatalf("round %d: lobby %s holds %v", round, lid, members)
			}
		}
		for _, u := range users {
			u.sock.none("matchmaking:matched", 0)
		}
		everyone = append(everyone, users...)
		for _, u := range users[:len(users)-2] { // keep a few sockets: late duplicates would land there
			_ = u.sock.Close()
		}
	}
	for _, u := range everyone {
		u.sock.none("matchmaking:matched", 0) // closed sockets keep what they got before closing
	}

	q := models.MatchQueue{GameID: "arena-shooter", GameMode: "1v1", Region: "na"}
	leaseKey := "mm:lease:" + q.String()
	rdb := c.redis.Client()

	// holder freezes the node holding q's lease while it holds it (a round in progress) and returns it.
	holder := func() (*node, string) {
		t.Helper()
		ctx := context.Background()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			v, err := rdb.Get(ctx, leaseKey).Result()
			if err != nil { // no round of q running right now
				time.Sleep(500 * time.Microsecond)
				continue
			}
			nd := nodeOfLease(nodes, v)
			if nd == nil || !nd.alive() {
				continue
			}
			_ = nd.cmd.Process.Signal(syscall.SIGSTOP)
			if now, _ := rdb.Get(ctx, leaseKey).Result(); now == v {
				return nd, v // frozen with the lease in hand
			}
			_ = nd.cmd.Process.Signal(syscall.SIGCONT) // the round ended meanwhile: try the next one
		}
		t.Fatalf("never caught a round of %s holding its lease", q)
		return nil, ""
	}
	// A lone searcher keeps rounds of q running without matching anyone.
	lone := registerMany(t, nodes, 1)
	queueAll(t, lone, q.GameMode, q.Region)

	// 2. Freeze the holder past its lease, let the others match a pair, resume it.
	frozen, lease := holder()
	t.Logf("froze node %d holding %s", frozen.n, lease)
	pair := registerMany(t, others(nodes, frozen), 2)
	queueAll(t, pair, q.GameMode, q.Region)
	took := waitMatched(t, others(nodes, frozen)[0], append(pair, lone...), 2, 15*time.Second)
	t.Logf("while node %d was frozen, the others matched 2 of 3 searchers after %v", frozen.n, took)
	_ = frozen.cmd.Process.Signal(syscall.SIGCONT)
	frozen.waitReady(t, 10*time.Second)
	everyone = append(everyone, pair...)
	everyone = append(everyone, lone...)

	// 3. Kill the holder of the lease while a searcher waits; the next one is queued right after.
	var alone *mmUser
	for _, u := range append(pair, lone...) {
		if st := requestStatus(t, nodes, u); st == "searching" {
			alone = u
		}
	}
	if alone == nil {
		t.Fatal("no searcher left for the kill phase")
	}
	victim, lease := holder()
	victim.kill(t)
	killed := time.Now()
	t.Logf("killed node %d (pid %d) holding %s", victim.n, victim.cmd.Process.Pid, lease)
	survivors := others(nodes, victim)
	late := registerMany(t, survivors, 1)
	queueAll(t, late, q.GameMode, q.Region)
	var replacedAfter time.Duration
	for {
		v, err := rdb.Get(context.Background(), leaseKey).Result()
		if err == nil && v != lease {
			replacedAfter = time.Since(killed)
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("lease %s not replaced 10s after its holder was killed (now %q, %v)", lease, v, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitMatched(t, survivors[0], []*mmUser{alone, late[0]}, 2, 15*time.Second)
	matchedAfter := time.Since(killed)
	t.Logf("leader killed: lease taken over after %v, waiting users matched %v after the kill", replacedAfter, matchedAfter)
	// Lease TTL 3s plus a survivor's next tick; the bound leaves room for a loaded machine.
	if replacedAfter > 8*time.Second {
		t.Fatalf("lease taken over %v after the kill, want < 8s (lease TTL 3s)", replacedAfter)
	}
	everyone = append(everyone, late...)

	checkStore(t, c, everyone)
}

// nodeOfLease finds the node whose pid is in a lease value "<host>-<pid>-<random>:<fence>".
func nodeOfLease(nodes []*node, v string) *node {
	owner, _, _ := strings.Cut(v, ":")
	parts := strings.Split(owner, "-")
	if len(parts) < 3 {
		return nil
	}
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		return nil
	}
	for _, nd := range nodes {
		if nd.cmd.Process.Pid == pid {
			return nd
		}
	}
	return nil
}

func others(nodes []*node, not *node) []*node {
	var out []*node
	for _, nd := range nodes {
		if nd != not {
			out = append(out, nd)
		}
	}
	return out
}

func requestStatus(t *testing.T, nodes []*node, u *mmUser) string {
	t.Helper()
	for _, nd := range nodes {
		if !nd.alive() {
			continue
		}
		code, out := nd.doNoFatal("GET", "/api/matchmaking/"+u.req, u.tok, nil)
		if code == http.StatusOK {
			return out["data"].(map[string]any)["status"].(string)
		}
	}
	t.Fatalf("no node answers about request %s", u.req)
	return ""
}

// waitMatched polls nd until want of users are matched and returns how long it took.
func waitMatched(t *testing.T, nd *node, users []*mmUser, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := 0
		for _, u := range users {
			code, out := nd.doNoFatal("GET", "/api/matchmaking/"+u.req, u.tok, nil)
			if code == http.StatusOK && out["data"].(map[string]any)["status"] == "matched" {
				got++
			}
		}
		if got >= want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%d of %d users matched after %v, want %d", got, len(users), limit, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkStore reads the shared store: every user of users sits in exactly one arena-shooter lobby,
// which their matched request names; no lobby holds anyone twice or a partial group.
func checkStore(t *testing.T, c *cluster, users []*mmUser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(c.storeURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	db := client.Database("clustertest")
	cur, err := db.Collection(models.LobbiesCollection).Find(ctx, bson.M{"gameId": "arena-shooter"})
	if err != nil {
		t.Fatal(err)
	}
	var lobbies []models.Lobby
	if err := cur.All(ctx, &lobbies); err != nil {
		t.Fatal(err)
	}
	lobbyOf := map[string]string{}
	for _, l := range lobbies {
		size := 2
		if l.GameMode == "2v2" {
			size = 4
		}
		if len(l.Members) != size || len(l.ActiveMemberIDs) != size || len(l.MatchRequestIDs) != size {
			t.Errorf("lobby %s (%s): %d members, %d active, %d requests", l.ID.Hex(), l.GameMode,
				len(l.Members), len(l.ActiveMemberIDs), len(l.MatchRequestIDs))
		}
		for uid := range l.Members {
			if prev, dup := lobbyOf[uid]; dup {
				t.Errorf("user %s sits in lobbies %s and %s", uid, prev, l.ID.Hex())
			}
			lobbyOf[uid] = l.ID.Hex()
		}
	}
	var reqs []models.MatchRequest
	cur, err = db.Collection(models.MatchRequestsCollection).Find(ctx, bson.M{"gameId": "arena-shooter"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &reqs); err != nil {
		t.Fatal(err)
	}
	reqOf := map[string]models.MatchRequest{}
	for _, r := range reqs {
		if _, dup := reqOf[r.UserID.Hex()]; dup {
			t.Errorf("user %s has two requests", r.UserID.Hex())
		}
		reqOf[r.UserID.Hex()] = r
	}
	for _, u := range users {
		r, ok := reqOf[u.id]
		switch {
		case !ok:
			t.Errorf("user %s has no request", u.id)
		case r.Status != models.MatchMatched || r.LobbyID == nil:
			t.Errorf("user %s request %s is %s", u.id, r.ID.Hex(), r.Status)
		case lobbyOf[u.id] != r.LobbyID.Hex():
			t.Errorf("user %s: request names lobby %s, user sits in %q", u.id, r.LobbyID.Hex(), lobbyOf[u.id])
		}
	}
	if len(lobbyOf) != len(users) {
		t.Errorf("%d users sit in lobbies, %d were matched", len(lobbyOf), len(users))
	}
	t.Logf("store: %d lobbies, %d users, each in exactly one lobby", len(lobbies), len(lobbyOf))
}
