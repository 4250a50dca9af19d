package lobby_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/lobby"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "lobby_test", &store) }

type bus struct {
	mu  sync.Mutex
	evs []events.Event
}

func (b *bus) Publish(_ context.Context, e events.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evs = append(b.evs, e)
	return nil
}

func (b *bus) names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.evs {
		out = append(out, e.Name)
	}
	return out
}

type env struct {
	svc   *lobby.Service
	rec   *realtime.Recorder
	bus   *bus
	clock *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	g := games.New(store)
	if err := g.Seed(context.Background(), games.Defaults); err != nil {
		t.Fatal(err)
	}
	e := &env{rec: &realtime.Recorder{}, bus: &bus{}, clock: &clock{t: time.Now()}}
	e.svc = lobby.New(lobby.Options{Store: store, Games: g, Users: models.NewUsers(store), Emitter: e.rec,
		Events: e.bus, IdleTimeout: time.Hour, Now: e.clock.Now})
	return e
}

var seq atomic.Int64

func newUser(t *testing.T) string {
	t.Helper()
	n := fmt.Sprintf("lob%d_%d", time.Now().UnixNano()%1e7, seq.Add(1))
	u := &models.User{Username: n, Email: n + "@example.com", PasswordHash: "x", DisplayName: "D " + n}
	if err := models.NewUsers(store).Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u.ID.Hex()
}

func code(t *testing.T, err error, want string) {
	t.Helper()
	if errs.CodeOf(err) != want {
		t.Fatalf("want %s, got %v", want, err)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// eventsTo returns the payloads (as JSON maps) of event sent to room.
func (e *env) eventsTo(room, event string) []map[string]any {
	var out []map[string]any
	for _, ev := range e.rec.Events() {
		if ev.Room == room && ev.Event == event {
			raw, _ := json.Marshal(ev.Args[0])
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			out = append(out, m)
		}
	}
	return out
}

func (e *env) create(t *testing.T, host, mode string) *models.Lobby {
	t.Helper()
	gameID := "party-trivia"
	if mode != "casual" {
		gameID = "arena-shooter"
	}
	return must[*models.Lobby](t)(e.svc.Create(context.Background(), host, lobby.CreateInput{GameID: gameID, GameMode: mode}))
}

func TestCreateDefaultsAndValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host := newUser(t)
	l := e.create(t, host, "casual")
	if l.Capacity != (models.Capacity{Min: 2, Max: 8}) || l.Status != models.LobbyForming || l.HostID.Hex() != host ||
		!l.Members[host].IsHost || l.Visibility != "public" {
		t.Fatalf("lobby: %+v", l)
	}
	got := must[*models.Lobby](t)(e.svc.Get(ctx, l.ID.Hex(), host))
	if got.Version != 0 || len(got.ActiveMemberIDs) != 1 {
		t.Fatalf("stored: %+v", got)
	}
	if names := e.bus.names(); len(names) != 1 || names[0] != events.LobbyCreated {
		t.Fatalf("bus: %v", names)
	}
	// A second open lobby for the same user.
	_, err := e.svc.Create(ctx, host, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"})
	code(t, err, errs.CodeConflict)

	other := newUser(t)
	for _, in := range []lobby.CreateInput{
		{GameID: "nope", GameMode: "casual"},
		{GameID: "party-trivia", GameMode: "nope"},
		{GameID: "party-trivia", GameMode: "casual", Capacity: &models.Capacity{Min: 1, Max: 8}},
		{GameID: "party-trivia", GameMode: "casual", Capacity: &models.Capacity{Min: 2, Max: 9}},
		{GameID: "party-trivia", GameMode: "casual", Capacity: &models.Capacity{Min: 5, Max: 4}},
		{GameID: "party-trivia", GameMode: "casual", Visibility: "secret"},
		{GameID: "party-trivia", GameMode: "casual", Settings: map[string]any{"a.b": 1}},
		{GameID: "party-trivia", GameMode: "casual", Settings: map[string]any{"$x": 1}},
		{GameID: "party-trivia", GameMode: "casual", Settings: map[string]any{"nested": map[string]any{}}},
	} {
		_, err := e.svc.Create(ctx, other, in)
		code(t, err, errs.CodeValidation)
	}
	// The refused attempts left no seat: the user can still create.
	l2 := must[*models.Lobby](t)(e.svc.Create(ctx, other, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual",
		Capacity: &models.Capacity{Min: 3, Max: 4}, Settings: map[string]any{"map": "dust", "rounds": 3.0}, Visibility: "private"}))
	if l2.Capacity.Max != 4 || l2.Settings["map"] != "dust" || l2.Visibility != "private" {
		t.Fatalf("custom lobby: %+v", l2)
	}
	_, err = e.svc.Get(ctx, l2.ID.Hex(), host)
	code(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Get(ctx, bson.NewObjectID().Hex(), host)
	code(t, err, errs.CodeLobbyNotFound)
	_, err = e.svc.Get(ctx, "not-an-id", host)
	code(t, err, errs.CodeLobbyNotFound)
}

func TestJoinReadyStartFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, bob := newUser(t), newUser(t)
	l := e.create(t, host, "casual")
	id := l.ID.Hex()
	room := lobby.Room(id)

	// Alone the host cannot make the lobby ready (capacity.min 2).
	l = must[*models.Lobby](t)(e.svc.SetReady(ctx, id, host, true))
	if l.Status != models.LobbyForming || len(e.eventsTo(room, lobby.EventReady)) != 0 {
		t.Fatalf("ready alone: %s", l.Status)
	}
	l = must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	if len(l.ActiveMemberIDs) != 2 {
		t.Fatalf("after join: %+v", l.ActiveMemberIDs)
	}
	mj := e.eventsTo(room, lobby.EventMemberJoined)
	if len(mj) != 1 || mj[0]["user"].(map[string]any)["id"] != bob || mj[0]["user"].(map[string]any)["displayName"] == "" {
		t.Fatalf("member joined: %v", mj)
	}
	// Joining again changes nothing.
	v := l.Version
	l = must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	if l.Version != v || len(e.eventsTo(room, lobby.EventMemberJoined)) != 1 {
		t.Fatal("second join changed the lobby")
	}
	_, err := e.svc.Start(ctx, id, host)
	code(t, err, errs.CodeLobbyError)

	l = must[*models.Lobby](t)(e.svc.SetReady(ctx, id, bob, true))
	if l.Status != models.LobbyReady || l.ReadyAt == nil {
		t.Fatalf("all ready: %+v", l)
	}
	rd := e.eventsTo(room, lobby.EventReady)
	if len(rd) != 1 || rd[0]["lobbyId"] != id || rd[0]["readyAt"] != realtime.ISOTime(*l.ReadyAt) {
		t.Fatalf("lobby:ready: %v", rd)
	}
	mr := e.eventsTo(room, lobby.EventMemberReady)
	if len(mr) != 2 || mr[1]["isReady"] != true || mr[1]["user"].(map[string]any)["id"] != bob {
		t.Fatalf("member ready: %v", mr)
	}
	// Un-ready: back to forming; ready again: a second lobby:ready.
	l = must[*models.Lobby](t)(e.svc.SetReady(ctx, id, bob, false))
	if l.Status != models.LobbyForming || l.ReadyAt != nil {
		t.Fatalf("unready: %+v", l)
	}
	must[*models.Lobby](t)(e.svc.SetReady(ctx, id, bob, true))
	if n := len(e.eventsTo(room, lobby.EventReady)); n != 2 {
		t.Fatalf("lobby:ready count %d", n)
	}
	outsider := newUser(t)
	_, err = e.svc.SetReady(ctx, id, outsider, true)
	code(t, err, errs.CodeLobbyError)
	_, err = e.svc.Start(ctx, id, bob)
	code(t, err, errs.CodeNotHost)
	l = must[*models.Lobby](t)(e.svc.Start(ctx, id, host))
	if l.Status != models.LobbyActive || l.StartedAt == nil {
		t.Fatalf("start: %+v", l)
	}
	_, err = e.svc.SetReady(ctx, id, bob, false)
	code(t, err, errs.CodeReadyError)
	_, err = e.svc.SetReady(ctx, bson.NewObjectID().Hex(), bob, false)
	code(t, err, errs.CodeLobbyNotFound)
	carol := newUser(t)
	_, err = e.svc.Join(ctx, id, carol)
	code(t, err, errs.CodeJoinError)
	ups := e.eventsTo(room, lobby.EventUpdate)
	last := ups[len(ups)-1]["update"].(map[string]any)
	if last["status"] != "active" || last["hostId"] != host || len(last["members"].([]any)) != 2 || last["capacity"] == nil || last["updatedAt"] == nil || last["settings"] == nil {
		t.Fatalf("last update: %v", last)
	}
}

func TestLeaveHostChangeAndClose(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, bob, carol := newUser(t), newUser(t), newUser(t)
	l := e.create(t, host, "casual")
	id := l.ID.Hex()
	room := lobby.Room(id)
	must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	e.clock.Add(time.Second)
	must[*models.Lobby](t)(e.svc.Join(ctx, id, carol))
	// bob and carol ready; host leaves: bob (longest present) is host and the rest is all ready → ready.
	must[*models.Lobby](t)(e.svc.SetReady(ctx, id, bob, true))
	must[*models.Lobby](t)(e.svc.SetReady(ctx, id, carol, true))
	if err := e.svc.Leave(ctx, id, host); err != nil {
		t.Fatal(err)
	}
	l = must[*models.Lobby](t)(e.svc.Get(ctx, id, bob))
	if l.HostID.Hex() != bob || !l.Members[bob].IsHost || l.Members[host].Status != models.MemberLeft || l.Members[host].LeftAt == nil || l.Status != models.LobbyReady {
		t.Fatalf("after host left: %+v", l)
	}
	hc := e.eventsTo(room, lobby.EventHostChanged)
	if len(hc) != 1 || hc[0]["hostId"] != bob {
		t.Fatalf("host changed: %v", hc)
	}
	ml := e.eventsTo(room, lobby.EventMemberLeft)
	if len(ml) != 1 || ml[0]["user"].(map[string]any)["id"] != host {
		t.Fatalf("member left: %v", ml)
	}
	leaves := e.rec.Leaves()
	if len(leaves) == 0 || leaves[0].Room != realtime.UserRoom(host) || leaves[0].Rooms[0] != room || leaves[0].Rooms[1] != "chat:lobby:"+id {
		t.Fatalf("leaver's sockets: %+v", leaves)
	}
	// Leaving again / outsiders.
	code(t, e.svc.Leave(ctx, id, host), errs.CodeAccessDenied)
	// The host who left can sit in a new lobby now (seat released).
	other := e.create(t, host, "casual")
	if err := e.svc.Leave(ctx, other.ID.Hex(), host); err != nil {
		t.Fatal(err)
	}

	if err := e.svc.Leave(ctx, id, carol); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Leave(ctx, id, bob); err != nil {
		t.Fatal(err)
	}
	cl := e.eventsTo(room, lobby.EventClosed)
	if len(cl) != 1 || cl[0]["reason"] != lobby.ReasonEmpty {
		t.Fatalf("closed: %v", cl)
	}
	l = must[*models.Lobby](t)(e.svc.Find(ctx, id))
	if l.Status != models.LobbyClosed || l.ClosedAt == nil || len(l.ActiveMemberIDs) != 0 {
		t.Fatalf("closed lobby: %+v", l)
	}
	if open, err := e.svc.OpenLobbyOf(ctx, bob); err != nil || open != nil {
		t.Fatalf("open lobby of bob: %v %v", open, err)
	}
	names := e.bus.names()
	if names[len(names)-1] != events.LobbyMemberLeft || !contains(names, events.LobbyClosed) || !contains(names, events.LobbyMemberJoined) {
		t.Fatalf("bus: %v", names)
	}
	_, err := e.svc.Join(ctx, id, carol)
	code(t, err, errs.CodeJoinError)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestKick(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, bob, carol, outsider := newUser(t), newUser(t), newUser(t), newUser(t)
	l := e.create(t, host, "casual")
	id := l.ID.Hex()
	must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	must[*models.Lobby](t)(e.svc.Join(ctx, id, carol))

	_, err := e.svc.Kick(ctx, id, bob, carol)
	code(t, err, errs.CodeNotHost)
	_, err = e.svc.Kick(ctx, id, outsider, carol)
	code(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Kick(ctx, id, host, host)
	code(t, err, errs.CodeKickError)
	_, err = e.svc.Kick(ctx, id, host, outsider)
	code(t, err, errs.CodeKickError)
	_, err = e.svc.Kick(ctx, bson.NewObjectID().Hex(), host, bob)
	code(t, err, errs.CodeLobbyNotFound)

	e.rec.Reset()
	l = must[*models.Lobby](t)(e.svc.Kick(ctx, id, host, bob))
	if l.Members[bob].Status != models.MemberKicked || len(l.ActiveMemberIDs) != 2 {
		t.Fatalf("after kick: %+v", l)
	}
	k := e.eventsTo(realtime.UserRoom(bob), lobby.EventKicked)
	if len(k) != 1 || k[0]["reason"] != "You have been kicked from the lobby" || k[0]["lobbyId"] != id {
		t.Fatalf("lobby:kicked: %v", k)
	}
	mk := e.eventsTo(lobby.Room(id), lobby.EventMemberKicked)
	if len(mk) != 1 || mk[0]["userId"] != bob {
		t.Fatalf("member kicked: %v", mk)
	}
	if lv := e.rec.Leaves(); len(lv) != 1 || lv[0].Room != realtime.UserRoom(bob) || len(lv[0].Rooms) != 2 {
		t.Fatalf("kicked sockets: %+v", lv)
	}
	// Kicked members stay kicked.
	_, err = e.svc.Join(ctx, id, bob)
	code(t, err, errs.CodeJoinError)
	_, err = e.svc.Subscribe(ctx, id, bob)
	code(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Kick(ctx, id, host, bob)
	code(t, err, errs.CodeKickError)
	// But bob is free to sit elsewhere.
	e.create(t, bob, "casual")
}

func TestUpdateSettingsAndCapacity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, bob, carol := newUser(t), newUser(t), newUser(t)
	l := must[*models.Lobby](t)(e.svc.Create(ctx, host, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual",
		Settings: map[string]any{"map": "a", "drop": true}}))
	id := l.ID.Hex()
	must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	must[*models.Lobby](t)(e.svc.Join(ctx, id, carol))

	_, err := e.svc.Update(ctx, id, bob, lobby.UpdateInput{Settings: map[string]any{"map": "b"}})
	code(t, err, errs.CodeNotHost)
	_, err = e.svc.Update(ctx, id, host, lobby.UpdateInput{})
	code(t, err, errs.CodeValidation)
	_, err = e.svc.Update(ctx, id, host, lobby.UpdateInput{Capacity: &models.Capacity{Min: 2, Max: 2}})
	code(t, err, errs.CodeLobbyError) // 3 members already
	_, err = e.svc.Update(ctx, id, host, lobby.UpdateInput{Capacity: &models.Capacity{Min: 2, Max: 99}})
	code(t, err, errs.CodeValidation)
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	_, err = e.svc.Update(ctx, id, host, lobby.UpdateInput{Settings: map[string]any{"map": string(long)}})
	code(t, err, errs.CodeValidation)
	many := map[string]any{}
	for i := 0; i < lobby.MaxSettings+1; i++ {
		many[fmt.Sprint("k", i)] = i
	}
	_, err = e.svc.Update(ctx, id, host, lobby.UpdateInput{Settings: many})
	code(t, err, errs.CodeValidation)

	e.rec.Reset()
	l = must[*models.Lobby](t)(e.svc.Update(ctx, id, host, lobby.UpdateInput{Settings: map[string]any{"map": "b", "drop": nil, "rounds": 5.0},
		Capacity: &models.Capacity{Min: 3, Max: 4}}))
	if l.Settings["map"] != "b" || l.Settings["drop"] != nil || l.Capacity.Max != 4 {
		t.Fatalf("updated: %+v", l)
	}
	up := e.eventsTo(lobby.Room(id), lobby.EventUpdate)
	if len(up) != 1 || up[0]["update"].(map[string]any)["settings"].(map[string]any)["map"] != "b" {
		t.Fatalf("update event: %v", up)
	}
	// Lowering min to what the ready members are makes the lobby ready.
	must[*models.Lobby](t)(e.svc.SetReady(ctx, id, host, true))
	must[*models.Lobby](t)(e.svc.SetReady(ctx, id, bob, true))
	if err := e.svc.Leave(ctx, id, carol); err != nil {
		t.Fatal(err)
	}
	l = must[*models.Lobby](t)(e.svc.Get(ctx, id, host))
	if l.Status != models.LobbyForming { // 2 ready < min 3
		t.Fatalf("status %s", l.Status)
	}
	l = must[*models.Lobby](t)(e.svc.Update(ctx, id, host, lobby.UpdateInput{Capacity: &models.Capacity{Min: 2, Max: 4}}))
	if l.Status != models.LobbyReady {
		t.Fatalf("status after min lowered: %s", l.Status)
	}
}

func TestCloseByHostAndIdle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, bob := newUser(t), newUser(t)
	l := e.create(t, host, "casual")
	id := l.ID.Hex()
	must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
	_, err := e.svc.Close(ctx, id, bob)
	code(t, err, errs.CodeNotHost)
	l = must[*models.Lobby](t)(e.svc.Close(ctx, id, host))
	if l.Status != models.LobbyClosed {
		t.Fatalf("close: %s", l.Status)
	}
	cl := e.eventsTo(lobby.Room(id), lobby.EventClosed)
	if len(cl) != 1 || cl[0]["reason"] != lobby.ReasonHostClosed {
		t.Fatalf("closed: %v", cl)
	}
	_, err = e.svc.Close(ctx, id, host)
	code(t, err, errs.CodeLobbyError)
	_, err = e.svc.Kick(ctx, id, host, bob)
	code(t, err, errs.CodeLobbyError)
	_, err = e.svc.Subscribe(ctx, id, host)
	code(t, err, errs.CodeJoinError)
	// Seats released: both can open lobbies again.
	idle := e.create(t, host, "casual")
	busy := e.create(t, bob, "casual")

	e.clock.Add(30 * time.Minute)
	must[*models.Lobby](t)(e.svc.SetReady(ctx, busy.ID.Hex(), bob, true)) // a change: not idle
	e.clock.Add(31 * time.Minute)
	n, err := e.svc.CloseIdle(ctx)
	if err != nil || n < 1 {
		t.Fatalf("idle sweep: %d %v", n, err)
	}
	if got := must[*models.Lobby](t)(e.svc.Find(ctx, idle.ID.Hex())); got.Status != models.LobbyClosed {
		t.Fatalf("idle lobby: %s", got.Status)
	}
	if got := must[*models.Lobby](t)(e.svc.Find(ctx, busy.ID.Hex())); got.Status == models.LobbyClosed {
		t.Fatal("a lobby changed 31 minutes ago was closed with a 60 minute timeout")
	}
	cl = e.eventsTo(lobby.Room(idle.ID.Hex()), lobby.EventClosed)
	if len(cl) != 1 || cl[0]["reason"] != lobby.ReasonIdleTimeout {
		t.Fatalf("idle closed: %v", cl)
	}
}

// A lobby whose members only chat is not idle; a started lobby has its own, longer timeout.
func TestIdleCountsChatAndSparesStartedGames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	talker, starter, quiet := newUser(t), newUser(t), newUser(t)
	chatty := e.create(t, talker, "casual")
	started := e.create(t, starter, "casual")
	silent := e.create(t, quiet, "casual")
	// Start one (forced to active in the store: the start rules are tested elsewhere).
	if _, err := store.Collection(models.LobbiesCollection).UpdateOne(ctx, bson.M{"_id": started.ID},
		bson.M{"$set": bson.M{"status": models.LobbyActive}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(50 * time.Minute) // the env's IdleTimeout is 1h
	// A message in the chatty lobby's chat 50 minutes in (the chat service sets lastMessageAt).
	msgAt := e.clock.Now().UTC().Truncate(time.Millisecond)
	if _, err := store.Collection(models.ChatsCollection).UpdateOne(ctx,
		bson.M{"_id": models.LobbyChatID(chatty.ID.Hex())},
		bson.M{"$set": bson.M{"lastMessageAt": msgAt, "type": models.ChatLobby, "key": models.LobbyChatID(chatty.ID.Hex())}},
		options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(15 * time.Minute) // 65 minutes without a lobby change
	if _, err := e.svc.CloseIdle(ctx); err != nil {
		t.Fatal(err)
	}
	status := func(l *models.Lobby) string {
		return must[*models.Lobby](t)(e.svc.Find(ctx, l.ID.Hex())).Status
	}
	if got := status(silent); got != models.LobbyClosed {
		t.Fatalf("silent lobby after 65m: %s", got)
	}
	if got := status(chatty); got == models.LobbyClosed {
		t.Fatal("a lobby with a chat message 15 minutes ago was closed as idle")
	}
	if got := status(started); got != models.LobbyActive {
		t.Fatalf("a started game was closed after 65 minutes: %s", got)
	}
	e.clock.Add(6 * time.Hour)
	if _, err := e.svc.CloseIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(started); got != models.LobbyClosed {
		t.Fatalf("an abandoned started game after 6h: %s", got)
	}
	if got := status(chatty); got != models.LobbyClosed {
		t.Fatalf("chatty lobby after 6h of silence: %s", got)
	}
}

func TestSweeperTicks(t *testing.T) {
	g := games.New(store)
	if err := g.Seed(context.Background(), games.Defaults); err != nil {
		t.Fatal(err)
	}
	rec := &realtime.Recorder{}
	svc := lobby.New(lobby.Options{Store: store, Games: g, Users: models.NewUsers(store), Emitter: rec,
		IdleTimeout: 50 * time.Millisecond, SweepInterval: 20 * time.Millisecond})
	host := newUser(t)
	l := must[*models.Lobby](t)(svc.Create(context.Background(), host, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"}))
	stop := svc.StartSweeper()
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := must[*models.Lobby](t)(svc.Find(context.Background(), l.ID.Hex()))
		if got.Status == models.LobbyClosed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not close the idle lobby")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
}

func TestCreateForMatchAndOpenLobbyOf(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b, c := newUser(t), newUser(t), newUser(t)
	req := bson.NewObjectID().Hex()
	l := must[*models.Lobby](t)(e.svc.CreateForMatch(ctx, "arena-shooter", "1v1", []string{a, b}, []string{req}))
	if l.HostID.Hex() != a || len(l.ActiveMemberIDs) != 2 || l.Capacity.Max != 2 || len(l.MatchRequestIDs) != 1 {
		t.Fatalf("match lobby: %+v", l)
	}
	open := must[*models.Lobby](t)(e.svc.OpenLobbyOf(ctx, b))
	if open == nil || open.ID != l.ID {
		t.Fatalf("open lobby of b: %v", open)
	}
	if ok, err := e.svc.IsActiveMember(ctx, l.ID.Hex(), b); !ok || err != nil {
		t.Fatal("b is a member")
	}
	if ok, err := e.svc.IsActiveMember(ctx, l.ID.Hex(), c); ok || err != nil {
		t.Fatal("c is no member")
	}
	_, err := e.svc.IsActiveMember(ctx, bson.NewObjectID().Hex(), b)
	code(t, err, errs.CodeLobbyNotFound)
	if ids, err := e.svc.ActiveMemberIDs(ctx, l.ID.Hex()); err != nil || len(ids) != 2 || ids[0] != a || ids[1] != b {
		t.Fatalf("active members: %v %v", ids, err)
	}
	_, err = e.svc.ActiveMemberIDs(ctx, "nope")
	code(t, err, errs.CodeLobbyNotFound)
	// b is seated: a match with b and c seats nobody.
	_, err = e.svc.CreateForMatch(ctx, "arena-shooter", "1v1", []string{c, b}, nil)
	code(t, err, errs.CodeConflict)
	if ce, _ := errs.As(err); fmt.Sprint(ce.Details["userIds"]) != fmt.Sprint([]string{b}) {
		t.Fatalf("details: %v", ce.Details)
	}
	e.create(t, c, "casual") // c was not left seated
	_, err = e.svc.CreateForMatch(ctx, "arena-shooter", "1v1", []string{newUser(t), newUser(t), newUser(t)}, nil)
	code(t, err, errs.CodeValidation)
	var ev lobby.EventData
	for _, x := range e.bus.evs {
		if x.Name == events.LobbyCreated {
			_ = x.Decode(&ev)
			if ev.LobbyID == l.ID.Hex() {
				break
			}
		}
	}
	if ev.LobbyID != l.ID.Hex() || len(ev.MemberIDs) != 2 || len(ev.MatchRequestIDs) != 1 {
		t.Fatalf("lobby.created: %+v", ev)
	}
}

func TestStaleSeatIsTakenOver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := newUser(t)
	uid, _ := models.ParseID(u)
	// A seat whose lobby never got stored (a crash between the two writes), two minutes old.
	_, err := store.Collection(models.LobbySeatsCollection).InsertOne(ctx,
		models.LobbySeat{UserID: uid, LobbyID: bson.NewObjectID(), CreatedAt: time.Now().Add(-2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, u, "casual")
}

// The races: each runs many rounds with goroutines against the real store. LOBBY_RACE_ROUNDS=n
// multiplies the rounds for a longer stress run.

func rounds(n int) int {
	if k, err := strconv.Atoi(os.Getenv("LOBBY_RACE_ROUNDS")); err == nil && k > 0 {
		return n * k
	}
	return n
}

func TestRaceJoinsForLastSeat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := 0; round < rounds(8); round++ {
		host := newUser(t)
		l := must[*models.Lobby](t)(e.svc.Create(ctx, host, lobby.CreateInput{GameID: "battle-royale", GameMode: "squad"})) // max 4
		id := l.ID.Hex()
		must[*models.Lobby](t)(e.svc.Join(ctx, id, newUser(t)))
		must[*models.Lobby](t)(e.svc.Join(ctx, id, newUser(t))) // 3 of 4
		const racers = 5
		var wg sync.WaitGroup
		var won, full atomic.Int32
		users := make([]string, racers)
		for i := range users {
			users[i] = newUser(t)
		}
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				_, err := e.svc.Join(ctx, id, u)
				switch {
				case err == nil:
					won.Add(1)
				case errs.Is(err, errs.CodeJoinError):
					full.Add(1)
				default:
					t.Errorf("join: %v", err)
				}
			}(users[i])
		}
		wg.Wait()
		got := must[*models.Lobby](t)(e.svc.Find(ctx, id))
		if won.Load() != 1 || full.Load() != racers-1 || len(got.ActiveMemberIDs) != 4 || countJoined(got) != 4 {
			t.Fatalf("round %d: won %d full %d, active %d joined %d", round, won.Load(), full.Load(), len(got.ActiveMemberIDs), countJoined(got))
		}
		// The losers hold no seat.
		for _, u := range users {
			if got.Members[u] == nil {
				e.create(t, u, "casual")
			}
		}
	}
}

func countJoined(l *models.Lobby) int {
	n := 0
	for _, m := range l.Members {
		if m.Status == models.MemberJoined {
			n++
		}
	}
	return n
}

func TestRaceReadyAtTheSameInstant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := 0; round < rounds(8); round++ {
		host := newUser(t)
		l := must[*models.Lobby](t)(e.svc.Create(ctx, host, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"}))
		id := l.ID.Hex()
		members := []string{host}
		for i := 0; i < 3; i++ {
			u := newUser(t)
			must[*models.Lobby](t)(e.svc.Join(ctx, id, u))
			members = append(members, u)
		}
		e.rec.Reset()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, u := range members {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				<-start
				if _, err := e.svc.SetReady(ctx, id, u, true); err != nil {
					t.Errorf("ready: %v", err)
				}
			}(u)
		}
		close(start)
		wg.Wait()
		got := must[*models.Lobby](t)(e.svc.Find(ctx, id))
		for _, u := range members {
			if !got.Members[u].ReadyStatus {
				t.Fatalf("round %d: lost ready of %s", round, u)
			}
		}
		if got.Status != models.LobbyReady || len(e.eventsTo(lobby.Room(id), lobby.EventReady)) != 1 ||
			len(e.eventsTo(lobby.Room(id), lobby.EventMemberReady)) != len(members) {
			t.Fatalf("round %d: status %s, lobby:ready %d", round, got.Status, len(e.eventsTo(lobby.Room(id), lobby.EventReady)))
		}
	}
}

func TestRaceKickAgainstLeave(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kicks, leaves := 0, 0
	for round := 0; round < rounds(10); round++ {
		host, bob, carol := newUser(t), newUser(t), newUser(t)
		l := e.create(t, host, "casual")
		id := l.ID.Hex()
		must[*models.Lobby](t)(e.svc.Join(ctx, id, bob))
		must[*models.Lobby](t)(e.svc.Join(ctx, id, carol))
		start := make(chan struct{})
		var kickErr, leaveErr, readyErr error
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); <-start; _, kickErr = e.svc.Kick(ctx, id, host, bob) }()
		go func() { defer wg.Done(); <-start; leaveErr = e.svc.Leave(ctx, id, bob) }()
		go func() { defer wg.Done(); <-start; _, readyErr = e.svc.SetReady(ctx, id, carol, true) }()
		close(start)
		wg.Wait()
		if readyErr != nil {
			t.Fatal(readyErr)
		}
		if (kickErr == nil) == (leaveErr == nil) {
			t.Fatalf("round %d: kick %v, leave %v: exactly one must win", round, kickErr, leaveErr)
		}
		got := must[*models.Lobby](t)(e.svc.Find(ctx, id))
		st := got.Members[bob].Status
		if kickErr == nil {
			kicks++
			code(t, leaveErr, errs.CodeAccessDenied)
			if st != models.MemberKicked {
				t.Fatalf("kick won but bob is %s", st)
			}
		} else {
			leaves++
			code(t, kickErr, errs.CodeKickError)
			if st != models.MemberLeft {
				t.Fatalf("leave won but bob is %s", st)
			}
		}
		if !got.Members[carol].ReadyStatus || len(got.ActiveMemberIDs) != 2 {
			t.Fatalf("round %d: lost update: %+v", round, got)
		}
		if open, _ := e.svc.OpenLobbyOf(ctx, bob); open != nil {
			t.Fatal("bob still sits in the lobby")
		}
	}
	t.Logf("kick won %d, leave won %d", kicks, leaves)
}

func TestRaceOneOpenLobbyPerUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := 0; round < rounds(8); round++ {
		u := newUser(t)
		lobbies := make([]string, 3)
		for i := range lobbies {
			lobbies[i] = e.create(t, newUser(t), "casual").ID.Hex()
		}
		var wg sync.WaitGroup
		var ok atomic.Int32
		for _, id := range lobbies {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if _, err := e.svc.Join(ctx, id, u); err == nil {
					ok.Add(1)
				} else if !errs.Is(err, errs.CodeJoinError) {
					t.Errorf("join: %v", err)
				}
			}(id)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Create(ctx, u, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"}); err == nil {
				ok.Add(1)
			} else if !errs.Is(err, errs.CodeConflict) {
				t.Errorf("create: %v", err)
			}
		}()
		wg.Wait()
		n, err := store.Collection(models.LobbiesCollection).CountDocuments(ctx, bson.M{"activeMemberIds": bson.M{"$in": []any{mustID(u)}}})
		if err != nil {
			t.Fatal(err)
		}
		if ok.Load() != 1 || n != 1 {
			t.Fatalf("round %d: %d successes, user in %d lobbies", round, ok.Load(), n)
		}
	}
}

func mustID(s string) bson.ObjectID { id, _ := models.ParseID(s); return id }

// Seats a killed process left (claimed for a lobby never stored, or kept after the user left) are
// released at start-up; seats of joined members stay; minAge spares seats that may be in flight.
func TestReleaseStaleSeats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host, ghost, leaver := newUser(t), newUser(t), newUser(t)
	l, err := e.svc.Create(ctx, host, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Join(ctx, l.ID.Hex(), leaver); err != nil {
		t.Fatal(err)
	}
	seats := store.Collection(models.LobbySeatsCollection)
	gid, _ := models.ParseID(ghost)
	if _, err := seats.InsertOne(ctx, models.LobbySeat{UserID: gid, LobbyID: bson.NewObjectID(), CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	// The leaver's lobby no longer lists them, but the seat stayed (killed before the release).
	lid, _ := models.ParseID(leaver)
	if _, err := store.Collection(models.LobbiesCollection).UpdateOne(ctx, bson.M{"_id": l.ID},
		bson.M{"$set": bson.M{"members." + leaver + ".status": models.MemberLeft}, "$pull": bson.M{"activeMemberIds": lid}}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.ReleaseStaleSeats(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("young seats released: %d %v", n, err)
	}
	n, err := e.svc.ReleaseStaleSeats(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Other tests' seats share the collection: count only this test's users.
	left := func(uid string) int64 {
		id, _ := models.ParseID(uid)
		c, _ := seats.CountDocuments(ctx, bson.M{"_id": id})
		return c
	}
	if n < 2 || left(ghost) != 0 || left(leaver) != 0 || left(host) != 1 {
		t.Fatalf("released %d; seats left: ghost %d leaver %d host %d", n, left(ghost), left(leaver), left(host))
	}
	// The ghost can create a lobby at once.
	if _, err := e.svc.Create(ctx, ghost, lobby.CreateInput{GameID: "party-trivia", GameMode: "casual"}); err != nil {
		t.Fatal(err)
	}
}

// A join whose answer was lost (timeout, store gone, caller gone) may still have been applied: its
// seat is released only once a read of the lobby, after UncertainDelay, shows the user is not a joined
// member. Releasing it at once let a user sit in two open lobbies (soak test under overload).
func TestUncertainJoinKeepsTheSeatOfAStoredMember(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seats := store.Collection(models.LobbySeatsCollection)
	l1 := e.create(t, newUser(t), "casual")
	l2 := e.create(t, newUser(t), "casual")
	lost := errs.Internal(context.DeadlineExceeded)

	// landed: the write was applied, only its answer was lost.
	landed := newUser(t)
	must[*models.Lobby](t)(e.svc.Join(ctx, l1.ID.Hex(), landed))
	lid, _ := models.ParseID(landed)
	e.svc.ReleaseSeatAfter(lost, lid, l1.ID)
	// notLanded: the seat was claimed, the lobby write never happened.
	notLanded := newUser(t)
	nid, _ := models.ParseID(notLanded)
	if _, err := seats.InsertOne(ctx, models.LobbySeat{UserID: nid, LobbyID: l1.ID, CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.svc.ReleaseSeatAfter(lost, nid, l1.ID)
	if n := e.svc.PendingReleases(); n != 2 {
		t.Fatalf("%d pending releases, want 2", n)
	}

	// Before the delay nothing is released: the write might still land.
	e.svc.RetryReleases(ctx)
	if n, _ := seats.CountDocuments(ctx, bson.M{"_id": bson.M{"$in": bson.A{lid, nid}}}); n != 2 {
		t.Fatalf("%d seats before the delay, want 2", n)
	}
	_, err := e.svc.Join(ctx, l2.ID.Hex(), notLanded)
	code(t, err, errs.CodeJoinError)

	e.clock.Add(4 * time.Second) // past the default UncertainDelay (3s)
	e.svc.RetryReleases(ctx)
	if n := e.svc.PendingReleases(); n != 0 {
		t.Fatalf("%d pending releases after the delay", n)
	}
	// The stored member keeps its seat, so it cannot sit in a second lobby.
	_, err = e.svc.Join(ctx, l2.ID.Hex(), landed)
	code(t, err, errs.CodeJoinError)
	// The other one's seat is gone: it may join.
	must[*models.Lobby](t)(e.svc.Join(ctx, l2.ID.Hex(), notLanded))

	// A refusal wrote nothing: its seat goes at once.
	refused := newUser(t)
	rid, _ := models.ParseID(refused)
	if _, err := seats.InsertOne(ctx, models.LobbySeat{UserID: rid, LobbyID: l1.ID, CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.svc.ReleaseSeatAfter(errs.New(errs.CodeJoinError, "lobby is full"), rid, l1.ID)
	if n, _ := seats.CountDocuments(ctx, bson.M{"_id": rid}); n != 0 || e.svc.PendingReleases() != 0 {
		t.Fatalf("refused join: %d seats, %d pending", n, e.svc.PendingReleases())
	}
}
