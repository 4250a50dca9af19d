package app_test

// Faults (issue 8): the database becomes unreachable while the server runs. The server talks to its
// store (the embedded FerretDB run on its own address, as in a shared-store cluster) through a TCP
// proxy the test controls (internal/faultproxy): Cut closes every connection and refuses new ones,
// Restore lets them through again, CutBefore cuts the link just before one chosen command so that a
// multi-document write is interrupted between its writes.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
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

	"github.com/maoga/maoga/cmd/maoga/app"
	"github.com/maoga/maoga/internal/consistency"
	"github.com/maoga/maoga/internal/faultproxy"
	"github.com/maoga/maoga/internal/sharedstore"
	"github.com/maoga/maoga/models"
)

// faultOpTimeout is MONGODB_TIMEOUT of the fault servers: a request against a cut link fails after
// about this long. The bound asserted on each failing call leaves room for a loaded machine.
const (
	faultOpTimeout = time.Second
	failFastBound  = 4 * time.Second
)

// logCapture keeps what the server logged (text handler lines), for counting lines.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), substr)
}

func (l *logCapture) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// faultEnv is a server whose store sits behind a proxy.
type faultEnv struct {
	t     *testing.T
	app   *app.App
	base  string
	proxy *faultproxy.Proxy
	log   *logCapture
	db    *mongo.Database // direct to the store, not through the proxy: for counting documents
}

func startFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	ctx := context.Background()
	store, err := sharedstore.Start(ctx, t.TempDir(), "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Stop) // cleanups run last-in first-out: the store stops after the server
	storeAddr := strings.TrimSuffix(strings.TrimPrefix(store.URI(), "mongodb://"), "/")
	proxy, err := faultproxy.Start(storeAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	direct, err := mongo.Connect(options.Client().ApplyURI(store.URI()).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Disconnect(context.Background()) })

	capture := &logCapture{}
	var w io.Writer = capture
	if os.Getenv("MAOGA_TEST_LOG") != "" {
		w = io.MultiWriter(capture, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))

	cfg := testConfig(t.TempDir())
	cfg.MongoURI = "mongodb://" + proxy.Addr() + "/"
	cfg.MongoDatabase = "faults"
	cfg.MongoTimeout = faultOpTimeout
	a, err := app.New(ctx, cfg, log)
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
		proxy.Restore() // a clean shutdown saves presence through the store
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	e := &faultEnv{t: t, app: a, base: "http://" + ln.Addr().String(), proxy: proxy, log: capture,
		db: direct.Database(cfg.MongoDatabase)}
	e.waitReady(10 * time.Second)
	return e
}

var faultHTTP = &http.Client{Timeout: 20 * time.Second}

// call sends a request to this env's server; took is how long the answer took.
// on is e reporting to t (a subtest).
func (e *faultEnv) on(t *testing.T) *faultEnv {
	c := *e
	c.t = t
	return &c
}

func (e *faultEnv) call(method, path, token string, body any) (r reply, took time.Duration) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := faultHTTP.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r = reply{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			e.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	return r, time.Since(start)
}

// unavailable asserts a fast 503 SERVICE_UNAVAILABLE with Retry-After.
func (e *faultEnv) unavailable(method, path, token string, body any) {
	e.t.Helper()
	r, took := e.call(method, path, token, body)
	if r.Status != http.StatusServiceUnavailable || r.errCode() != "SERVICE_UNAVAILABLE" || !r.restCodeOK() {
		e.t.Fatalf("%s %s with the store cut: %d %s, want 503 SERVICE_UNAVAILABLE", method, path, r.Status, r.Raw)
	}
	if r.Header.Get("Retry-After") != "5" {
		e.t.Fatalf("%s %s: Retry-After %q", method, path, r.Header.Get("Retry-After"))
	}
	if took > failFastBound {
		e.t.Fatalf("%s %s took %v with the store cut (MONGODB_TIMEOUT %v)", method, path, took, faultOpTimeout)
	}
	e.t.Logf("%s %s with the store cut: 503 in %v", method, path, took.Round(time.Millisecond))
}

func (e *faultEnv) register(name string) *testUser {
	e.t.Helper()
	u := &testUser{Username: uniqueName(name), Password: "password123"}
	u.Email = u.Username + "@example.com"
	r, _ := e.call("POST", "/api/auth/register", "", map[string]any{"username": u.Username, "email": u.Email, "password": u.Password})
	if r.Status != http.StatusCreated {
		e.t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	d := r.data()
	u.ID = d["user"].(map[string]any)["id"].(string)
	u.Access, u.Refresh = d["accessToken"].(string), d["refreshToken"].(string)
	return u
}

func (e *faultEnv) waitReady(within time.Duration) {
	e.t.Helper()
	e.eventually(within, "GET /readyz 200", func() bool {
		r, _ := e.call("GET", "/readyz", "", nil)
		return r.Status == http.StatusOK
	})
}

func (e *faultEnv) eventually(within time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *faultEnv) count(coll string, filter bson.M) int64 {
	e.t.Helper()
	n, err := e.db.Collection(coll).CountDocuments(context.Background(), filter)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *faultEnv) consistent() *consistency.Report {
	e.t.Helper()
	r, err := consistency.Check(context.Background(), e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	if !r.OK() {
		e.t.Fatal(r.Err())
	}
	return r
}

func oid(t *testing.T, hex string) bson.ObjectID {
	t.Helper()
	id, ok := models.ParseID(hex)
	if !ok {
		t.Fatalf("not an id: %q", hex)
	}
	return id
}

var trivia = map[string]any{"gameId": "party-trivia", "gameMode": "casual"}

// The database is unreachable for a while: every REST call and socket event that needs it answers
// SERVICE_UNAVAILABLE within a bounded time, sockets stay connected, /readyz says 503, the outage is
// logged once when it starts and once when it ends; afterwards the same calls succeed and nothing
// was half-written.
func TestStoreOutage(t *testing.T) {
	e := startFaultEnv(t)
	ann, bob := e.register("ann"), e.register("bob")
	r, _ := e.call("POST", "/api/lobbies", ann.Access, trivia)
	if r.Status != http.StatusCreated {
		t.Fatalf("create lobby: %d %s", r.Status, r.Raw)
	}
	lobbyID := r.data()["id"].(string)
	chatID := "lobby:" + lobbyID
	as := chatDialAt(t, e.base, ann.Access)
	if a := as.ack("chat:join", map[string]any{"chatId": chatID}); a["ok"] != true {
		t.Fatalf("chat:join: %v", a)
	}
	e.eventually(5*time.Second, "welcome notifications stored", func() bool {
		return e.count(models.NotificationsCollection, bson.M{}) == 2
	})

	e.proxy.Cut()
	e.unavailable("POST", "/api/auth/login", "", map[string]any{"login": ann.Username, "password": ann.Password})
	e.unavailable("POST", "/api/lobbies", bob.Access, trivia)
	e.unavailable("POST", "/api/friends/requests", ann.Access, map[string]any{"userId": bob.ID})
	start := time.Now()
	as.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "during the outage"}, "SERVICE_UNAVAILABLE")
	as.failsWith("lobby:ready", map[string]any{"lobbyId": lobbyID, "isReady": true}, "SERVICE_UNAVAILABLE")
	if took := time.Since(start); took > 2*failFastBound {
		t.Fatalf("two socket events took %v with the store cut", took)
	} else {
		t.Logf("chat:message and lobby:ready with the store cut: SERVICE_UNAVAILABLE in %v together", took.Round(time.Millisecond))
	}
	if r, _ := e.call("GET", "/readyz", "", nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the store cut: %d %s", r.Status, r.Raw)
	}
	e.eventually(10*time.Second, "outage start logged", func() bool { return e.log.count("outage started") == 1 })
	// Known to be down: the next calls are refused at once (admission's gate), not after
	// MONGODB_TIMEOUT each.
	start = time.Now()
	as.failsWith("chat:message", map[string]any{"chatId": chatID, "content": "during the outage"}, "SERVICE_UNAVAILABLE")
	r, took := e.call("POST", "/api/lobbies", bob.Access, trivia)
	if r.Status != http.StatusServiceUnavailable || r.errCode() != "SERVICE_UNAVAILABLE" || r.Header.Get("Retry-After") != "5" {
		t.Fatalf("create lobby during the known outage: %d %s (Retry-After %q)", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if both := time.Since(start); both > faultOpTimeout/2 {
		t.Fatalf("a socket event and a REST call took %v during the known outage; want them refused at once (MONGODB_TIMEOUT %v)", both, faultOpTimeout)
	} else {
		t.Logf("during the known outage: chat:message and a REST call refused in %v together (REST %v)", both.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	select {
	case <-as.Done():
		t.Fatal("the socket was disconnected by the outage")
	default:
	}

	e.proxy.Restore()
	restored := time.Now()
	e.waitReady(20 * time.Second)
	e.eventually(10*time.Second, "outage end logged", func() bool { return e.log.count("outage ended") == 1 })
	t.Logf("ready again %v after the link came back", time.Since(restored).Round(time.Millisecond))

	// The same calls now succeed; the socket is the one that lived through the outage.
	if r, _ := e.call("POST", "/api/auth/login", "", map[string]any{"login": ann.Username, "password": ann.Password}); r.Status != http.StatusOK {
		t.Fatalf("login after the outage: %d %s", r.Status, r.Raw)
	}
	if r, _ := e.call("POST", "/api/lobbies", bob.Access, trivia); r.Status != http.StatusCreated {
		t.Fatalf("create lobby after the outage: %d %s", r.Status, r.Raw)
	}
	if r, _ := e.call("POST", "/api/friends/requests", ann.Access, map[string]any{"userId": bob.ID}); r.Status != http.StatusCreated {
		t.Fatalf("friend request after the outage: %d %s", r.Status, r.Raw)
	}
	if a := as.ack("chat:message", map[string]any{"chatId": chatID, "content": "after the outage"}); a["ok"] != true {
		t.Fatalf("chat:message after the outage: %v", a)
	}
	if a := as.ack("lobby:ready", map[string]any{"lobbyId": lobbyID, "isReady": true}); a["ok"] != true {
		t.Fatalf("lobby:ready after the outage: %v", a)
	}

	// Nothing of the failed calls was stored; everything of the later ones once.
	e.eventually(5*time.Second, "friend request notification stored", func() bool {
		return e.count(models.NotificationsCollection, bson.M{"type": "friend_request"}) == 1
	})
	for coll, want := range map[string]int64{
		models.UsersCollection: 2, models.LobbiesCollection: 2, models.LobbySeatsCollection: 2,
		models.FriendshipsCollection: 1, models.MessagesCollection: 1, models.NotificationsCollection: 3,
		models.RefreshTokensCollection: 3, // two registrations and the login after the outage
	} {
		if n := e.count(coll, bson.M{}); n != want {
			t.Errorf("%s: %d documents, want %d", coll, n, want)
		}
	}
	if n := e.count(models.MessagesCollection, bson.M{"content": "during the outage"}); n != 0 {
		t.Errorf("the message sent during the outage was stored")
	}
	rep := e.consistent()
	t.Log(rep.Summary())

	// Logged once each, not per request: the only error line is the outage's start.
	if s, end := e.log.count("outage started"), e.log.count("outage ended"); s != 1 || end != 1 {
		t.Fatalf("outage logged %d times at start, %d at end", s, end)
	}
	if errLines := e.log.lines("level=ERROR"); len(errLines) != 1 {
		t.Fatalf("%d error lines, want only the outage start:\n%s", len(errLines), strings.Join(errLines, "\n"))
	}
}

// Multi-document writes interrupted between their writes (the link is cut right before the second
// write's command) leave states the application handles, and the same call works once the store is
// back.
func TestInterruptedWrites(t *testing.T) {
	e := startFaultEnv(t)
	isInsert := func(coll string) func(faultproxy.Command) bool {
		return func(c faultproxy.Command) bool { return c.Name == "insert" && c.Collection == coll }
	}
	cutBefore := func(match func(faultproxy.Command) bool, what string) <-chan faultproxy.Command {
		fired := e.proxy.CutBefore(match)
		t.Cleanup(func() {
			select {
			case <-fired:
			default:
				t.Errorf("%s: the cut never happened", what)
			}
		})
		return fired
	}
	restore := func(e *faultEnv) {
		e.t.Helper()
		e.proxy.Restore()
		e.waitReady(20 * time.Second)
	}

	t.Run("register: user stored, refresh token not", func(t *testing.T) {
		e := e.on(t)
		u := &testUser{Username: uniqueName("reg"), Password: "password123"}
		u.Email = u.Username + "@example.com"
		body := map[string]any{"username": u.Username, "email": u.Email, "password": u.Password}
		cutBefore(isInsert(models.RefreshTokensCollection), "register")
		e.unavailable("POST", "/api/auth/register", "", body)
		restore(e)
		// The account exists (registering again is a conflict) and works: logging in gives a session.
		if r, _ := e.call("POST", "/api/auth/register", "", body); r.Status != http.StatusConflict {
			t.Fatalf("register again: %d %s", r.Status, r.Raw)
		}
		r, _ := e.call("POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": u.Password})
		if r.Status != http.StatusOK {
			t.Fatalf("login of the half-registered user: %d %s", r.Status, r.Raw)
		}
		if n := e.count(models.UsersCollection, bson.M{"username": u.Username}); n != 1 {
			t.Fatalf("%d users", n)
		}
	})

	t.Run("lobby create: seat claimed, lobby not stored", func(t *testing.T) {
		e := e.on(t)
		host := e.register("host")
		cutBefore(isInsert(models.LobbiesCollection), "lobby create")
		e.unavailable("POST", "/api/lobbies", host.Access, trivia)
		if n := e.app.Lobbies.PendingReleases(); n != 1 {
			t.Fatalf("%d seat releases waiting for the store, want 1", n)
		}
		restore(e)
		// The seat is released once the store is back (the lobby service retries), so the same
		// call soon succeeds; until then the only answer is "already in an open lobby".
		var created reply
		e.eventually(10*time.Second, "lobby create succeeds after the outage", func() bool {
			r, _ := e.call("POST", "/api/lobbies", host.Access, trivia)
			if r.Status != http.StatusCreated && r.Status != http.StatusConflict {
				t.Fatalf("lobby create after the outage: %d %s", r.Status, r.Raw)
			}
			created = r
			return r.Status == http.StatusCreated
		})
		if n := e.app.Lobbies.PendingReleases(); n != 0 {
			t.Fatalf("%d releases still pending", n)
		}
		hid := oid(t, host.ID)
		if n := e.count(models.LobbiesCollection, bson.M{"activeMemberIds": hid}); n != 1 {
			t.Fatalf("host is in %d lobbies", n)
		}
		var seat models.LobbySeat
		if err := e.db.Collection(models.LobbySeatsCollection).FindOne(context.Background(), bson.M{"_id": hid}).Decode(&seat); err != nil ||
			seat.LobbyID.Hex() != created.data()["id"] {
			t.Fatalf("seat %+v (%v), want lobby %v", seat, err, created.data()["id"])
		}
	})

	t.Run("friend request: friendship stored, notification retried", func(t *testing.T) {
		e := e.on(t)
		cat, dan := e.register("cat"), e.register("dan")
		e.eventually(5*time.Second, "welcome notifications stored", func() bool {
			return e.count(models.NotificationsCollection, bson.M{"userId": bson.M{"$in": bson.A{oid(t, cat.ID), oid(t, dan.ID)}}}) == 2
		})
		cutBefore(isInsert(models.NotificationsCollection), "friend request")
		// The request itself is stored before the link is cut: the notification follows asynchronously.
		if r, _ := e.call("POST", "/api/friends/requests", cat.Access, map[string]any{"userId": dan.ID}); r.Status != http.StatusCreated {
			t.Fatalf("friend request: %d %s", r.Status, r.Raw)
		}
		e.eventually(5*time.Second, "link cut by the notification insert", e.proxy.IsCut)
		restore(e)
		// The notifications service retries while the store is unreachable: the addressee gets the
		// notification once.
		filter := bson.M{"userId": oid(t, dan.ID), "type": "friend_request"}
		e.eventually(15*time.Second, "friend request notification after the outage", func() bool { return e.count(models.NotificationsCollection, filter) >= 1 })
		time.Sleep(500 * time.Millisecond)
		if n := e.count(models.NotificationsCollection, filter); n != 1 {
			t.Fatalf("%d friend request notifications", n)
		}
	})

	t.Run("chat message: message stored, chat update not", func(t *testing.T) {
		e := e.on(t)
		eve, fay := e.register("eve"), e.register("fay")
		r, _ := e.call("POST", "/api/lobbies", eve.Access, trivia)
		if r.Status != http.StatusCreated {
			t.Fatalf("create lobby: %d %s", r.Status, r.Raw)
		}
		lobbyID := r.data()["id"].(string)
		if r, _ := e.call("POST", "/api/lobbies/"+lobbyID+"/join", fay.Access, nil); r.Status != http.StatusOK {
			t.Fatalf("join: %d %s", r.Status, r.Raw)
		}
		chatID := "lobby:" + lobbyID
		es := chatDialAt(t, e.base, eve.Access)
		if a := es.ack("chat:join", map[string]any{"chatId": chatID}); a["ok"] != true {
			t.Fatalf("chat:join: %v", a)
		}
		// fay is a member too (the first message adds her to the participants): her chat is updated
		// after the message is stored.
		cutBefore(func(c faultproxy.Command) bool { return c.Name == "update" && c.Collection == models.ChatsCollection }, "chat message")
		a := es.ack("chat:message", map[string]any{"chatId": chatID, "content": "first"})
		// The message is stored and broadcast before the chat update: the sender is told it went out.
		if a["ok"] != true {
			t.Fatalf("chat:message whose chat update was cut: %v", a)
		}
		restore(e)
		rep := e.consistent()
		if len(rep.Tolerated[consistency.LaggingLastMessage]) != 1 {
			t.Fatalf("want the chat's lastMessage behind its message: %v", rep.Tolerated)
		}
		// Readers go by the messages: history and unread count are right; the next message catches the
		// chat up.
		if r, _ := e.call("GET", "/api/chats/"+chatID+"/messages", fay.Access, nil); r.Status != http.StatusOK || len(r.list()) != 1 {
			t.Fatalf("history after the cut: %d %s", r.Status, r.Raw)
		}
		if a := es.ack("chat:message", map[string]any{"chatId": chatID, "content": "second"}); a["ok"] != true {
			t.Fatalf("chat:message after the outage: %v", a)
		}
		r, _ = e.call("GET", "/api/chats", fay.Access, nil)
		var unread float64 = -1
		for _, c := range r.list() {
			if m, _ := c.(map[string]any); m["id"] == chatID {
				unread, _ = m["unreadCount"].(float64)
			}
		}
		if unread != 2 {
			t.Fatalf("fay's unread count %v, want 2: %s", unread, r.Raw)
		}
		if rep := e.consistent(); len(rep.Tolerated[consistency.LaggingLastMessage]) != 0 {
			t.Fatalf("chat still behind after the next message: %v", rep.Tolerated)
		}
	})

	rep := e.consistent()
	t.Log(rep.Summary())
}
