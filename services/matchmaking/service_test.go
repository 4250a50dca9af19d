package matchmaking_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/matchmaking/coordtest"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "matchmaking_test", &store) }

// catalogue: game "chess" with "duel" (2 players) and "quad" (2 teams of 2).
type catalogue struct{}

func (catalogue) Mode(gameID, modeID string) (games.Mode, error) {
	if gameID != "chess" {
		return games.Mode{}, errs.Validation("unknown game", map[string]string{"gameId": "is not in the games catalogue"})
	}
	switch modeID {
	case "duel":
		return games.Mode{ID: "duel", TeamSize: 1, Capacity: models.Capacity{Min: 2, Max: 2}}, nil
	case "quad":
		return games.Mode{ID: "quad", TeamSize: 2, Capacity: models.Capacity{Min: 4, Max: 4}}, nil
	}
	return games.Mode{}, errs.Validation("unknown game mode", map[string]string{"gameMode": "is not a mode of chess"})
}

// lobbies records every lobby the matcher creates. It does NOT refuse a user who already has a
// lobby (unless protect is set), so the tests see any double placement instead of it being hidden.
type lobbies struct {
	mu      sync.Mutex
	members map[string][]string // lobby id → user ids
	reqs    map[string][]string // lobby id → request ids
	seats   map[string][]string // user id → lobby ids
	protect bool
	fail    error
	// onCheck, when set, runs (once, then cleared) at the start of the next InOpenLobby: between a
	// start's insert and its update to searching.
	onCheck func()
}

func newLobbies() *lobbies {
	return &lobbies{members: map[string][]string{}, reqs: map[string][]string{}, seats: map[string][]string{}}
}

func (l *lobbies) CreateForMatch(_ context.Context, gameID, gameMode string, userIDs, reqIDs []string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return "", l.fail
	}
	if l.protect {
		var busy []string
		for _, u := range userIDs {
			if len(l.seats[u]) > 0 {
				busy = append(busy, u)
			}
		}
		if len(busy) > 0 {
			return "", errs.Conflict("already in an open lobby").WithDetails(map[string]any{"userIds": busy})
		}
	}
	id := bson.NewObjectID().Hex()
	l.members[id] = append([]string(nil), userIDs...)
	l.reqs[id] = append([]string(nil), reqIDs...)
	for _, u := range userIDs {
		l.seats[u] = append(l.seats[u], id)
	}
	return id, nil
}

func (l *lobbies) InOpenLobby(_ context.Context, userID string) (bool, error) {
	l.mu.Lock()
	hook := l.onCheck
	l.onCheck = nil
	l.mu.Unlock()
	if hook != nil {
		hook()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seats[userID]) > 0, nil
}

func (l *lobbies) seat(userID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seats[userID] = append(l.seats[userID], "pre-existing")
}

func (l *lobbies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.members)
}

// checkNoDoublePlacement fails when a user sits in two lobbies.
func (l *lobbies) checkNoDoublePlacement(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for u, ls := range l.seats {
		if len(ls) > 1 {
			t.Fatalf("user %s placed in %d lobbies: %v", u, len(ls), ls)
		}
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

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

func (b *bus) named(name string) []events.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []events.Event
	for _, e := range b.evs {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

type env struct {
	t   *testing.T
	svc *matchmaking.Service
	lb  *lobbies
	rec *realtime.Recorder
	clk *clock
	bus *bus
	ctx context.Context
}

func testConfig() matchmaking.Config {
	c := matchmaking.DefaultConfig()
	c.Levels = []matchmaking.Level{{After: 0, SkillWindow: 100}, {After: 10 * time.Second, SkillWindow: 200},
		{After: 20 * time.Second, SkillWindow: 400}, {After: 40 * time.Second, SkillWindow: math.Inf(1)}}
	c.MaxSearchTime = 2 * time.Minute
	c.StatusInterval = 5 * time.Second
	return c
}

func newEnv(t *testing.T, cfg matchmaking.Config) *env {
	t.Helper()
	t.Cleanup(func() {
		if _, err := store.Collection(models.MatchRequestsCollection).DeleteMany(context.Background(), bson.M{}); err != nil {
			t.Error(err)
		}
	})
	e := &env{t: t, lb: newLobbies(), rec: &realtime.Recorder{}, clk: &clock{t: time.Now().UTC()}, bus: &bus{}, ctx: context.Background()}
	e.svc = e.service(cfg, nil)
	return e
}

// service builds another service (another "node") on the same store, lobbies, recorder and clock.
func (e *env) service(cfg matchmaking.Config, coord matchmaking.Coordinator) *matchmaking.Service {
	e.t.Helper()
	svc, err := matchmaking.New(matchmaking.Options{Store: store, Games: catalogue{}, Lobbies: e.lb, Emitter: e.rec,
		Events: e.bus, Coordinator: coord, Config: cfg, Now: e.clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

func newUser() string { return bson.NewObjectID().Hex() }

func skill(v float64) *float64 { return &v }

func (e *env) start(user, mode, region string, sk float64) *models.MatchRequest {
	e.t.Helper()
	m, err := e.svc.Start(e.ctx, user, matchmaking.StartInput{GameID: "chess", GameMode: mode, Region: region, Skill: skill(sk)})
	if err != nil {
		e.t.Fatalf("start: %v", err)
	}
	return m
}

func (e *env) runOnce() {
	e.t.Helper()
	if err := e.svc.RunOnce(e.ctx); err != nil {
		e.t.Fatalf("round: %v", err)
	}
}

func (e *env) load(id bson.ObjectID) *models.MatchRequest {
	e.t.Helper()
	m, err := models.NewMatchRequests(store).ByID(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// emitted returns the events named event sent to room, payloads re-decoded from JSON into maps.
func (e *env) emitted(room, event string) []map[string]any {
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

func wantCode(t *testing.T, err error, code string) *errs.Error {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	return e
}

func TestStartValidation(t *testing.T) {
	e := newEnv(t, testConfig())
	u := newUser()
	for _, tc := range []struct {
		in    matchmaking.StartInput
		field string
	}{
		{matchmaking.StartInput{GameMode: "duel", Region: "eu"}, "gameId"},
		{matchmaking.StartInput{GameID: "chess", Region: "eu"}, "gameMode"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel"}, "region"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu west"}, "region"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Skill: skill(-1)}, "skill"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Skill: skill(10000.5)}, "skill"},
		{matchmaking.StartInput{GameID: "go", GameMode: "duel", Region: "eu"}, "gameId"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "blitz", Region: "eu"}, "gameMode"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Criteria: map[string]any{"x": map[string]any{}}}, "criteria"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Criteria: map[string]any{"$where": "1"}}, "criteria"},
		{matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Criteria: map[string]any{
			"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0, "f": 1.0, "g": 1.0, "h": 1.0, "i": 1.0}}, "criteria"},
	} {
		_, err := e.svc.Start(e.ctx, u, tc.in)
		ve := wantCode(t, err, errs.CodeValidation)
		if f, _ := ve.Details["fields"].(map[string]any); f[tc.field] == nil {
			t.Fatalf("%+v: details %v do not name %s", tc.in, ve.Details, tc.field)
		}
	}
	// Skill bounds are inclusive; the region is normalised; skill defaults.
	m := e.start(u, "duel", " EU ", 10000)
	if m.Region != "eu" || m.Status != models.MatchSearching || *m.Skill != 10000 {
		t.Fatalf("stored %+v", m)
	}
	if _, err := e.svc.Cancel(e.ctx, u, m.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	m, err := e.svc.Start(e.ctx, u, matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu"})
	if err != nil || *m.Skill != e.svc.Config().DefaultSkill {
		t.Fatalf("default skill: %+v %v", m, err)
	}
	if got := e.bus.named(events.MatchmakingStarted); len(got) != 2 {
		t.Fatalf("matchmaking.started events: %d", len(got))
	}
}

func TestRegionsFromAFixedList(t *testing.T) {
	cfg := testConfig()
	cfg.Regions = []string{"eu", "na"}
	e := newEnv(t, cfg)
	_, err := e.svc.Start(e.ctx, newUser(), matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "asia"})
	wantCode(t, err, errs.CodeValidation)
	e.start(newUser(), "duel", "na", 1000)
}

func TestStartConflicts(t *testing.T) {
	e := newEnv(t, testConfig())
	u := newUser()
	first := e.start(u, "duel", "eu", 1000)
	_, err := e.svc.Start(e.ctx, u, matchmaking.StartInput{GameID: "chess", GameMode: "quad", Region: "na"})
	ce := wantCode(t, err, errs.CodeConflict)
	if ce.Details["matchRequestId"] != first.ID.Hex() {
		t.Fatalf("conflict details %v", ce.Details)
	}
	// A user in an open lobby cannot search, and nothing stays stored.
	seated := newUser()
	e.lb.seat(seated)
	_, err = e.svc.Start(e.ctx, seated, matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu"})
	wantCode(t, err, errs.CodeConflict)
	if _, err := e.svc.ActiveRequest(e.ctx, seated); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("refused request left active: %v", err)
	}
}

func TestTwoUsersMatched(t *testing.T) {
	e := newEnv(t, testConfig())
	a, b := newUser(), newUser()
	ra, rb := e.start(a, "duel", "eu", 1000), e.start(b, "duel", "eu", 1050)
	e.clk.Add(3 * time.Second)
	e.runOnce()
	ma, mb := e.load(ra.ID), e.load(rb.ID)
	if ma.Status != models.MatchMatched || mb.Status != models.MatchMatched || ma.LobbyID == nil || *ma.LobbyID != *mb.LobbyID {
		t.Fatalf("not matched together: %+v %+v", ma, mb)
	}
	if ma.ActiveKey != ma.ID.Hex() || ma.WaitMillis != 3000 || ma.ClaimToken != "" {
		t.Fatalf("finished request %+v", ma)
	}
	lobbyID := ma.LobbyID.Hex()
	if got := e.lb.members[lobbyID]; len(got) != 2 {
		t.Fatalf("lobby members %v", got)
	}
	if got := e.lb.reqs[lobbyID]; len(got) != 2 {
		t.Fatalf("lobby requests %v", got)
	}
	for _, p := range []struct {
		user string
		req  *models.MatchRequest
	}{{a, ra}, {b, rb}} {
		got := e.emitted(realtime.UserRoom(p.user), matchmaking.EventMatched)
		if len(got) != 1 || got[0]["requestId"] != p.req.ID.Hex() || got[0]["lobbyId"] != lobbyID ||
			got[0]["gameId"] != "chess" || got[0]["gameMode"] != "duel" || got[0]["matchedAt"] == "" {
			t.Fatalf("matched events of %s: %v", p.user, got)
		}
	}
	ev := e.bus.named(events.MatchmakingMatched)
	if len(ev) != 1 {
		t.Fatalf("matchmaking.matched events: %d", len(ev))
	}
	var md matchmaking.MatchedData
	if err := ev[0].Decode(&md); err != nil || md.LobbyID != lobbyID || len(md.Players) != 2 {
		t.Fatalf("matched data %+v %v", md, err)
	}
	// Matched: the user may search again (the lobby check is the lobby service's, here the fake
	// seats them, so it refuses).
	_, err := e.svc.Start(e.ctx, a, matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu"})
	wantCode(t, err, errs.CodeConflict)
	// The wait feeds the queue's estimate.
	c := e.start(newUser(), "duel", "eu", 1000)
	st, err := e.svc.Status(e.ctx, c.UserID.Hex(), c.ID.Hex())
	if err != nil || st.EstimatedWaitTime != 3 || st.Status != "searching" || st.PotentialMatchesFound != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestQueuesAreSeparate(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start(newUser(), "duel", "eu", 1000)
	e.start(newUser(), "duel", "na", 1000)
	e.start(newUser(), "quad", "eu", 1000)
	e.runOnce()
	if n := e.lb.count(); n != 0 {
		t.Fatalf("%d lobbies across queues", n)
	}
	e.start(newUser(), "quad", "eu", 1000)
	e.start(newUser(), "quad", "eu", 1000)
	e.runOnce()
	if n := e.lb.count(); n != 0 {
		t.Fatalf("quad formed with 3 players")
	}
	e.start(newUser(), "quad", "eu", 1000)
	e.runOnce()
	if n := e.lb.count(); n != 1 {
		t.Fatalf("quad of 4 not formed: %d lobbies", n)
	}
}

func TestRelaxationOverTime(t *testing.T) {
	e := newEnv(t, testConfig())
	a, b := newUser(), newUser()
	ra := e.start(a, "duel", "eu", 1000)
	e.start(b, "duel", "eu", 1250)
	room := matchmaking.MatchRoom(ra.ID.Hex())
	e.runOnce()
	st := e.emitted(room, matchmaking.EventStatus)
	if len(st) != 1 || st[0]["status"] != "searching" || st[0]["currentRelaxationLevel"] != 0.0 ||
		st[0]["potentialMatchesFound"] != 0.0 || st[0]["requestId"] != ra.ID.Hex() || st[0]["estimatedWaitTime"] != 30.0 {
		t.Fatalf("first status %v", st)
	}
	e.clk.Add(10 * time.Second)
	e.runOnce()
	st = e.emitted(room, matchmaking.EventStatus)
	if len(st) != 2 || st[1]["status"] != "relaxing_criteria" || st[1]["currentRelaxationLevel"] != 1.0 ||
		st[1]["searchTimeElapsed"] != 10.0 {
		t.Fatalf("relaxed status %v", st)
	}
	if e.lb.count() != 0 {
		t.Fatal("matched 250 apart at window 200")
	}
	v, err := e.svc.Get(e.ctx, a, ra.ID.Hex())
	if err != nil || v.Status != "relaxing_criteria" || v.CurrentRelaxationLevel != 1 || v.SearchTimeElapsed != 10 {
		t.Fatalf("view %+v %v", v, err)
	}
	e.clk.Add(10 * time.Second)
	e.runOnce()
	if e.lb.count() != 1 || e.load(ra.ID).RelaxationLevel != 2 {
		t.Fatalf("not matched at level 2: %d lobbies, %+v", e.lb.count(), e.load(ra.ID))
	}
}

func TestStatusEveryIntervalAndOnChange(t *testing.T) {
	e := newEnv(t, testConfig())
	a := newUser()
	ra := e.start(a, "duel", "eu", 1000)
	room := matchmaking.MatchRoom(ra.ID.Hex())
	count := func() int { return len(e.emitted(room, matchmaking.EventStatus)) }
	e.runOnce()
	e.clk.Add(time.Second)
	e.runOnce()
	if n := count(); n != 1 {
		t.Fatalf("%d statuses within the interval, want 1", n)
	}
	e.clk.Add(4 * time.Second)
	e.runOnce()
	if n := count(); n != 2 {
		t.Fatalf("%d statuses after the interval, want 2", n)
	}
	// A player 150 away: outside a's level-0 window (no change in a's status), inside level 1.
	e.start(newUser(), "duel", "eu", 1150)
	e.clk.Add(time.Second)
	e.runOnce()
	if n := count(); n != 2 {
		t.Fatalf("%d statuses without a change, want 2", n)
	}
	e.clk.Add(4 * time.Second) // a: 10 s → level 1: window 200 takes the newcomer: matched
	e.runOnce()
	if e.lb.count() != 1 {
		t.Fatal("not matched at level 1")
	}
	// Potential matches change → a status at once.
	c := newUser()
	rc := e.start(c, "duel", "eu", 3000)
	e.runOnce()
	e.start(newUser(), "duel", "eu", 8000)
	e.start(newUser(), "duel", "eu", 3050)
	e.clk.Add(time.Second)
	// Before matching, c's status sees one potential match; c is matched in the same round.
	st, err := e.svc.Status(e.ctx, c, rc.ID.Hex())
	if err != nil || st.PotentialMatchesFound != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSearchTime = 30 * time.Second
	e := newEnv(t, cfg)
	a := newUser()
	ra := e.start(a, "duel", "eu", 1000)
	e.clk.Add(29 * time.Second)
	e.runOnce()
	if e.load(ra.ID).Status != models.MatchSearching {
		t.Fatal("expired early")
	}
	e.clk.Add(time.Second)
	e.runOnce()
	m := e.load(ra.ID)
	if m.Status != models.MatchExpired || m.ExpiredAt == nil || m.ActiveKey != m.ID.Hex() {
		t.Fatalf("not expired: %+v", m)
	}
	got := e.emitted(realtime.UserRoom(a), matchmaking.EventExpired)
	if len(got) != 1 || got[0]["requestId"] != ra.ID.Hex() || got[0]["expiredAt"] != realtime.ISOTime(*m.ExpiredAt) {
		t.Fatalf("expired events %v", got)
	}
	_, err := e.svc.Status(e.ctx, a, ra.ID.Hex())
	wantCode(t, err, errs.CodeConflict)
	_, err = e.svc.Cancel(e.ctx, a, ra.ID.Hex())
	wantCode(t, err, errs.CodeConflict)
	e.start(a, "duel", "eu", 1000) // may search again
}

func TestCancel(t *testing.T) {
	e := newEnv(t, testConfig())
	a, other := newUser(), newUser()
	ra := e.start(a, "duel", "eu", 1000)
	_, err := e.svc.Cancel(e.ctx, other, ra.ID.Hex())
	wantCode(t, err, errs.CodeNotFound)
	_, err = e.svc.Cancel(e.ctx, a, "nope")
	wantCode(t, err, errs.CodeNotFound)
	_, err = e.svc.Get(e.ctx, other, ra.ID.Hex())
	wantCode(t, err, errs.CodeNotFound)
	m, err := e.svc.Cancel(e.ctx, a, ra.ID.Hex())
	if err != nil || m.Status != models.MatchCancelled || m.CancelledAt == nil || m.ActiveKey != m.ID.Hex() {
		t.Fatalf("cancel: %+v %v", m, err)
	}
	got := e.emitted(realtime.UserRoom(a), matchmaking.EventCancelled)
	if len(got) != 1 || got[0]["requestId"] != ra.ID.Hex() || got[0]["cancelledAt"] != realtime.ISOTime(*m.CancelledAt) {
		t.Fatalf("cancelled events %v", got)
	}
	if len(e.bus.named(events.MatchmakingCanceled)) != 1 {
		t.Fatal("no matchmaking.cancelled event")
	}
	_, err = e.svc.Cancel(e.ctx, a, ra.ID.Hex())
	if ce := wantCode(t, err, errs.CodeConflict); ce.Details["status"] != models.MatchCancelled {
		t.Fatalf("details %v", ce.Details)
	}
	v, err := e.svc.Get(e.ctx, a, ra.ID.Hex())
	if err != nil || v.Status != "cancelled" || v.CancelledAt == nil {
		t.Fatalf("view %+v %v", v, err)
	}
}

// A cancel racing a match ends as exactly one of the two, never both, run many times.
func TestCancelRacingMatch(t *testing.T) {
	e := newEnv(t, testConfig())
	const rounds = 30
	cancelled, matched := 0, 0
	for i := 0; i < rounds; i++ {
		a, b := newUser(), newUser()
		region := fmt.Sprintf("race%d", i)
		ra, rb := e.start(a, "duel", region, 1000), e.start(b, "duel", region, 1000)
		var wg sync.WaitGroup
		var cancelErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, cancelErr = e.svc.Cancel(e.ctx, a, ra.ID.Hex())
		}()
		go func() {
			defer wg.Done()
			if err := e.svc.RunQueue(e.ctx, ra.Queue()); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		ma, mb := e.load(ra.ID), e.load(rb.ID)
		switch {
		case cancelErr == nil:
			cancelled++
			if ma.Status != models.MatchCancelled || ma.LobbyID != nil || mb.Status != models.MatchSearching {
				t.Fatalf("round %d: cancel won but %+v / %+v", i, ma, mb)
			}
			if n, _ := e.lb.InOpenLobby(e.ctx, a); n {
				t.Fatalf("round %d: cancelled user placed in a lobby", i)
			}
			if _, err := e.svc.Cancel(e.ctx, b, rb.ID.Hex()); err != nil {
				t.Fatal(err)
			}
		default:
			matched++
			wantCode(t, cancelErr, errs.CodeConflict)
			if ma.Status != models.MatchMatched || mb.Status != models.MatchMatched || *ma.LobbyID != *mb.LobbyID {
				t.Fatalf("round %d: cancel lost but %+v / %+v", i, ma, mb)
			}
			if len(e.emitted(realtime.UserRoom(a), matchmaking.EventCancelled)) != 0 {
				t.Fatalf("round %d: matched user told cancelled", i)
			}
		}
	}
	e.lb.checkNoDoublePlacement(t)
	t.Logf("%d cancelled first, %d matched first", cancelled, matched)
}

// always grants every round: two rounds of one queue really run at once.
type always struct{}

type noLease struct{}

func (noLease) Token() string { return "always" }
func (noLease) Release()      {}

func (always) Acquire(context.Context, models.MatchQueue) (matchmaking.Lease, bool, error) {
	return noLease{}, true, nil
}

// Two nodes' rounds of the same queue at the same time never place a user twice.
func TestConcurrentRoundsNeverDoubleMatch(t *testing.T) {
	e := newEnv(t, testConfig())
	nodes := []*matchmaking.Service{e.service(testConfig(), always{}), e.service(testConfig(), always{}),
		e.service(testConfig(), always{})}
	var all []*models.MatchRequest
	for iter := 0; iter < 8; iter++ {
		for i := 0; i < 6; i++ {
			all = append(all, e.start(newUser(), "duel", "eu", 1000+float64(i%3)*10))
		}
		q := all[0].Queue()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func(n *matchmaking.Service) {
				defer wg.Done()
				if err := n.RunQueue(e.ctx, q); err != nil {
					t.Error(err)
				}
			}(n)
		}
		wg.Wait()
	}
	// Let one node finish whatever lost claims left searching.
	for i := 0; i < 3; i++ {
		if err := nodes[0].RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.lb.checkNoDoublePlacement(t)
	byLobby := map[string]int{}
	for _, r := range all {
		m := e.load(r.ID)
		if m.Status != models.MatchMatched {
			t.Fatalf("request left %s", m.Status)
		}
		byLobby[m.LobbyID.Hex()]++
	}
	if len(byLobby) != len(all)/2 || e.lb.count() != len(all)/2 {
		t.Fatalf("%d requests in %d lobbies (%d created)", len(all), len(byLobby), e.lb.count())
	}
	for l, n := range byLobby {
		if n != 2 {
			t.Fatalf("lobby %s holds %d requests", l, n)
		}
	}
}

// A user who sits in a lobby by the time the match forms loses their request; the partner searches on.
func TestSeatedUserDroppedFromMatch(t *testing.T) {
	e := newEnv(t, testConfig())
	e.lb.protect = true
	a, b := newUser(), newUser()
	ra, rb := e.start(a, "duel", "eu", 1000), e.start(b, "duel", "eu", 1000)
	e.lb.seat(a) // joined a lobby while searching
	e.runOnce()
	if m := e.load(ra.ID); m.Status != models.MatchCancelled {
		t.Fatalf("seated user's request %s", m.Status)
	}
	if m := e.load(rb.ID); m.Status != models.MatchSearching || m.ClaimToken != "" {
		t.Fatalf("partner %+v", m)
	}
	if len(e.emitted(realtime.UserRoom(a), matchmaking.EventCancelled)) != 1 {
		t.Fatal("seated user not told")
	}
	// A failing lobby service puts everyone back.
	e.lb.fail = errs.Internal(fmt.Errorf("lobby store down"))
	c := newUser()
	rc := e.start(c, "duel", "eu", 1000)
	e.runOnce()
	if e.load(rb.ID).Status != models.MatchSearching || e.load(rc.ID).Status != models.MatchSearching {
		t.Fatal("claims not released after the lobby failed")
	}
	e.lb.fail = nil
	e.runOnce()
	if e.load(rb.ID).Status != models.MatchMatched || e.load(rc.ID).Status != models.MatchMatched {
		t.Fatal("not matched once the lobby service is back")
	}
}

// A claim left behind by a dead round is recovered: matched when its lobby exists, else searching.
func TestStaleClaimRecovered(t *testing.T) {
	e := newEnv(t, testConfig())
	reqs := models.NewMatchRequests(store)
	a, b := newUser(), newUser()
	ra, rb := e.start(a, "duel", "eu", 1000), e.start(b, "duel", "eu", 5000)
	claim := func(m *models.MatchRequest) {
		at := e.clk.Now()
		if _, err := reqs.Transition(e.ctx, m.ID, models.MatchFilter{From: []string{models.MatchSearching}},
			bson.M{"status": models.MatchMatching, "claimToken": "dead", "claimedAt": at}, nil); err != nil {
			t.Fatal(err)
		}
	}
	claim(ra)
	claim(rb)
	lobbyID := bson.NewObjectID()
	if _, err := store.Collection(models.LobbiesCollection).InsertOne(e.ctx, bson.M{"_id": lobbyID,
		"matchRequestIds": []bson.ObjectID{ra.ID}, "status": models.LobbyForming}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = store.Collection(models.LobbiesCollection).DeleteOne(context.Background(), bson.M{"_id": lobbyID})
	})
	e.runOnce()
	if e.load(ra.ID).Status != models.MatchMatching {
		t.Fatal("a live claim was recovered")
	}
	e.clk.Add(e.svc.Config().ClaimTimeout + time.Second)
	e.runOnce()
	ma, mb := e.load(ra.ID), e.load(rb.ID)
	if ma.Status != models.MatchMatched || *ma.LobbyID != lobbyID {
		t.Fatalf("claim with a lobby: %+v", ma)
	}
	if mb.Status != models.MatchSearching || mb.ClaimToken != "" {
		t.Fatalf("claim without a lobby: %+v", mb)
	}
	if len(e.emitted(realtime.UserRoom(a), matchmaking.EventMatched)) != 1 {
		t.Fatal("recovered user not told")
	}
}

func TestRunStopsWithBackground(t *testing.T) {
	cfg := testConfig()
	cfg.Tick = 10 * time.Millisecond
	e := newEnv(t, cfg)
	e.svc = e.service(cfg, nil)
	stop := e.svc.Background()
	ra := e.start(newUser(), "duel", "eu", 1000)
	e.start(newUser(), "duel", "eu", 1000)
	deadline := time.Now().Add(5 * time.Second)
	for e.load(ra.ID).Status != models.MatchMatched {
		if time.Now().After(deadline) {
			t.Fatal("the ticking matcher did not match")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
}

func TestLocalCoordinatorConformance(t *testing.T) {
	shared := matchmaking.NewLocalCoordinator() // "nodes" of one process share it
	coordtest.Run(t, func(*testing.T) matchmaking.Coordinator { return shared })
}

// At start-up on the embedded store (no other writer), what a killed process left is finished at
// once instead of after ClaimTimeout: pending requests go, claims become matched (lobby stored) or
// searching.
func TestRecoverAfterCrash(t *testing.T) {
	e := newEnv(t, testConfig())
	reqs := models.NewMatchRequests(store)
	a, b, c := newUser(), newUser(), newUser()
	ra, rb := e.start(a, "duel", "eu", 1000), e.start(b, "duel", "eu", 5000)
	for _, m := range []*models.MatchRequest{ra, rb} {
		if _, err := reqs.Transition(e.ctx, m.ID, models.MatchFilter{From: []string{models.MatchSearching}},
			bson.M{"status": models.MatchMatching, "claimToken": "dead", "claimedAt": e.clk.Now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	lobbyID := bson.NewObjectID()
	if _, err := store.Collection(models.LobbiesCollection).InsertOne(e.ctx, bson.M{"_id": lobbyID,
		"matchRequestIds": []bson.ObjectID{ra.ID}, "status": models.LobbyForming}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = store.Collection(models.LobbiesCollection).DeleteOne(context.Background(), bson.M{"_id": lobbyID})
	})
	cid, _ := models.ParseID(c)
	pending := &models.MatchRequest{UserID: cid, GameID: "chess", GameMode: "duel", Region: "eu",
		Status: models.MatchPending, ActiveKey: c, CreatedAt: e.clk.Now(), UpdatedAt: e.clk.Now()}
	if err := reqs.Insert(e.ctx, pending); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.RecoverAfterCrash(e.ctx)
	if err != nil || n != 3 {
		t.Fatalf("recovered %d (%v), want 3", n, err)
	}
	if m := e.load(ra.ID); m.Status != models.MatchMatched || *m.LobbyID != lobbyID {
		t.Fatalf("claim with a lobby: %+v", m)
	}
	if m := e.load(rb.ID); m.Status != models.MatchSearching || m.ClaimToken != "" {
		t.Fatalf("claim without a lobby: %+v", m)
	}
	if _, err := reqs.ByID(e.ctx, pending.ID); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("pending request still there: %v", err)
	}
}
