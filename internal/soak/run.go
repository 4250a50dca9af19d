// Package soak is the soak test of the Maoga server (issue 8, hardening): a real cmd/maoga process
// with the embedded store, thousands of Socket.IO clients (clienttest) that connect, drop and
// recover, chat in lobbies and directly, create, join and leave lobbies, queue for matchmaking and
// cancel, and set their status, at random, for minutes. Afterwards:
//
//   - the server's goroutines, live heap and open file descriptors, read after a full GC once every
//     client disconnected and a settle period, are back at the baseline read the same way after a
//     warm-up run of the same scenario (Bounds);
//   - the stored state passes internal/consistency and agrees with what the clients know (Compare):
//     every user in the open lobby its client believes, no match request left active, every
//     acknowledged chat message stored and no refused one;
//   - no operation failed with an error the scenario does not provoke (IsExpected) or timed out,
//     and the server logged no ERROR line and no panic and stopped cleanly on SIGTERM.
//
// cmd/soak is the driver (`make soak`, `make soak-short`).
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/internal/consistency"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/events/storejournal"
)

// Config is one soak run.
type Config struct {
	ServerBin string // the cmd/maoga binary
	Clients   int
	Duration  time.Duration // the measured load phase
	WarmUp    time.Duration // the same scenario before the baseline
	// Settle is the wait after every client disconnected, before reading resources (must exceed the
	// server's RECOVERY_MAX_DISCONNECTION, 5s in ServerEnv).
	Settle    time.Duration
	OpTimeout time.Duration // an ack or REST answer slower than this is a failure
	Leave     time.Duration // at the end of a phase clients close over this long, at random moments
	ThinkMin  time.Duration // pause between one client's steps
	ThinkMax  time.Duration
	Seed      uint64
	WorkDir   string   // data dir and server log go here
	ServerEnv []string // extra server settings (KEY=VALUE)
	Bounds    Bounds
	Log       io.Writer // progress lines; nil = discard
}

// Bounds are how far the after-load resources may stay above the baseline.
type Bounds struct {
	Goroutines int     `json:"goroutines"`
	OpenFDs    int     `json:"openFds"`
	HeapBytes  float64 `json:"heapBytes"`
}

// Report is the outcome; Failures empty means the run passed.
type Report struct {
	Clients        int             `json:"clients"`
	DurationS      float64         `json:"durationSeconds"` // the measured phase
	WarmUpS        float64         `json:"warmUpSeconds"`
	WallS          float64         `json:"wallSeconds"` // the whole run, build excluded
	ThinkMs        [2]int64        `json:"thinkMs"`
	LeaveS         float64         `json:"leaveSeconds"`
	OpTimeoutMs    int64           `json:"opTimeoutMs"`
	Seed           uint64          `json:"seed"`
	ServerEnv      []string        `json:"serverEnv"`
	Ops            []OpSummary     `json:"ops"`
	Totals         Totals          `json:"totals"`
	OpsPerSecond   float64         `json:"opsPerSecond"` // during the measured phase
	ErrorSamples   []string        `json:"errorSamples,omitempty"`
	Recovered      int             `json:"recoveredSessions"`
	NotRecovered   int             `json:"freshSessionsAfterDrop"`
	PeakSockets    float64         `json:"peakSocketsConnected"`
	Baseline       Resources       `json:"baseline"`
	After          Resources       `json:"after"`
	Bounds         Bounds          `json:"bounds"`
	Consistency    *ConsResult     `json:"consistency,omitempty"`
	ModelMismatch  []string        `json:"modelMismatches,omitempty"`
	StoreCounts    *StoreCounts    `json:"store,omitempty"`
	JournalRestart *JournalRestart `json:"journalRestart,omitempty"`
	LogWarnings    int             `json:"serverLogWarnings"`
	LogErrors      int             `json:"serverLogErrors"`
	LogPanics      int             `json:"serverLogPanics"`
	LogLines       []string        `json:"serverLogErrorLines,omitempty"`
	ServerLog      string          `json:"serverLog"`
	GoroutineDump  string          `json:"goroutineDump,omitempty"`
	FDDump         string          `json:"fdDump,omitempty"` // open fds by kind, baseline and after, when over the bound
	LoadAvgStart   string          `json:"loadAvgStart"`
	LoadAvgEnd     string          `json:"loadAvgEnd"`
	StartedAt      string          `json:"startedAt"`
	Failures       []string        `json:"failures"`
	UncertainUsers int             `json:"uncertainUsers"`
	// DrainS: seconds until the server counted no connected socket after the last client closed
	// (its disconnect handlers write presence to the store).
	DrainS float64 `json:"drainSeconds"`
}

// ConsResult is the internal/consistency outcome.
type ConsResult struct {
	OK        bool           `json:"ok"`
	Problems  []string       `json:"problems,omitempty"`
	Tolerated map[string]int `json:"tolerated,omitempty"`
	Counts    map[string]int `json:"documents"`
	// UnreadCountsChecked: users whose unread-count query was compared with their documents.
	UnreadCountsChecked int `json:"unreadCountsChecked"`
}

// StoreCounts summarise the stored state at the end.
type StoreCounts struct {
	Lobbies          map[string]int `json:"lobbiesByStatus"`
	JoinedSeats      int            `json:"joinedMembersOfOpenLobbies"`
	Messages         int            `json:"messages"`
	AckedMessages    int            `json:"ackedMessages"`
	UnsureMessages   int            `json:"unansweredMessages"`
	UsersInLobbies   int            `json:"usersInOpenLobbiesByClients"`
	ChatsWithTraffic int            `json:"chatsWithMessages"`
	// Every registered user gets one welcome notification (an event handler stores it); deliveries
	// still waiting in the event journal when the server stopped run at its next start.
	Users          int `json:"users"`
	Welcomed       int `json:"usersWithWelcomeNotification"`
	WelcomeTwice   int `json:"usersWithSeveralWelcomeNotifications"`
	JournalWelcome int `json:"welcomeDeliveriesInJournal"`
	JournalEntries int `json:"eventJournalEntries"`
}

// Passed reports whether the run had no failure.
func (r *Report) Passed() bool { return len(r.Failures) == 0 }

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Run plays the soak. An error means the run could not be carried out (server did not start...);
// a run that was carried out returns its Report, failed or not.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s soak: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	began := time.Now()
	rep := &Report{Clients: cfg.Clients, DurationS: cfg.Duration.Seconds(), WarmUpS: cfg.WarmUp.Seconds(),
		ThinkMs: [2]int64{cfg.ThinkMin.Milliseconds(), cfg.ThinkMax.Milliseconds()}, LeaveS: cfg.Leave.Seconds(), OpTimeoutMs: cfg.OpTimeout.Milliseconds(),
		Seed: cfg.Seed, Bounds: cfg.Bounds, LoadAvgStart: loadAvg(), StartedAt: began.UTC().Format(time.RFC3339), Failures: []string{}}
	dataDir := filepath.Join(cfg.WorkDir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	rep.ServerLog = filepath.Join(cfg.WorkDir, "server.log")
	srv, err := StartServer(ctx, cfg.ServerBin, dataDir, rep.ServerLog, cfg.ServerEnv)
	if err != nil {
		return nil, err
	}
	defer srv.Kill()
	rep.ServerEnv = srv.Env
	say("server %s up (data %s)", srv.Base, dataDir)

	api := NewAPI(srv.Base, 256, cfg.OpTimeout)
	rec := NewRecorder()
	users, err := registerUsers(ctx, api, rec, cfg.Clients, cfg.Seed)
	if err != nil {
		return nil, err
	}
	say("%d users registered", len(users))
	w := newWorld(cfg, api, rec, users)
	clients := make([]*vclient, len(users))
	for i, u := range users {
		clients[i] = newClient(w, u, cfg.Seed)
	}

	// Warm-up: the same scenario, so that pools and caches the load fills (store connections,
	// buffers, per-user limiter entries) are in the baseline; then everyone leaves and it settles.
	say("warm-up %v with %d clients", cfg.WarmUp, len(clients))
	runPhase(ctx, cfg, clients, cfg.WarmUp, nil)
	say("warm-up done; filling the store connection pool")
	fillPool(ctx, api, users, 5*time.Second)
	api.HTTP.CloseIdleConnections() // the driver's keep-alive connections are not the server's state
	if err := drain(ctx, srv, say); err != nil {
		return nil, err
	}
	say("settling %v", cfg.Settle)
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if rep.Baseline, err = srv.Measure(ctx); err != nil {
		return nil, err
	}
	say("baseline: %s", rep.Baseline)
	baseFDs := srv.FDSummary()
	baseOps := countOps(rec)

	say("load %v with %d clients", cfg.Duration, len(clients))
	loadStart := time.Now()
	peak := make(chan float64, 1)
	runPhase(ctx, cfg, clients, cfg.Duration, func(pctx context.Context) {
		var max float64
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				peak <- max
				return
			case <-t.C:
				if m, err := srv.Metrics(pctx); err == nil {
					if v := m["maoga_sockets_connected"]; v > max {
						max = v
					}
					shedding := ""
					if limit, on := m["maoga_admission_limit"]; on { // load shedding (LIMIT_INFLIGHT_*)
						shedding = fmt.Sprintf(" limit=%.0f inflight=%.0f queued=%.0f refused=%.0f", limit,
							m["maoga_admission_in_flight"], m["maoga_admission_queued"], m["maoga_admission_refused_total"])
					}
					fmt.Fprintf(logw, "%s soak:   sockets=%.0f goroutines=%.0f heap=%.1fMB fds=%.0f ops=%d%s\n",
						time.Now().UTC().Format("15:04:05"), m["maoga_sockets_connected"], m["go_goroutines"],
						m["go_memstats_heap_alloc_bytes"]/1e6, m["process_open_fds"], countOps(rec), shedding)
				}
			}
		}
	})
	loadTook := time.Since(loadStart)
	rep.PeakSockets = <-peak
	rep.OpsPerSecond = float64(countOps(rec)-baseOps) / loadTook.Seconds()

	// Every client settles its matchmaking (cancel, or follow it to its lobby) and is gone already.
	say("load done (%d ops); settling matchmaking of every client", countOps(rec)-baseOps)
	settleAll(ctx, clients)
	api.HTTP.CloseIdleConnections()
	drainStart := time.Now()
	if err := drain(ctx, srv, say); err != nil {
		rep.fail("%v", err)
	}
	rep.DrainS = time.Since(drainStart).Seconds()
	say("settling %v", cfg.Settle)
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return nil, err
	}
	if rep.After, err = srv.Measure(ctx); err != nil {
		return nil, err
	}
	say("after:    %s", rep.After)
	checkResources(rep)
	if rep.After.OpenFDs-rep.After.StoreFiles > rep.Baseline.OpenFDs-rep.Baseline.StoreFiles+float64(cfg.Bounds.OpenFDs) {
		rep.FDDump = filepath.Join(cfg.WorkDir, "fds-after.txt")
		_ = os.WriteFile(rep.FDDump, []byte("baseline:\n"+baseFDs+"\nafter:\n"+srv.FDSummary()), 0o644)
	}
	if rep.After.Goroutines > rep.Baseline.Goroutines+float64(cfg.Bounds.Goroutines) {
		if dump, err := srv.GoroutineDump(ctx); err == nil {
			rep.GoroutineDump = filepath.Join(cfg.WorkDir, "goroutines-after.txt")
			_ = os.WriteFile(rep.GoroutineDump, dump, 0o644)
		}
	}

	ops, tot, samples := rec.Summary()
	rep.Ops, rep.Totals, rep.ErrorSamples = ops, tot, samples
	w.mu.Lock()
	rep.Recovered, rep.NotRecovered = w.recovered, w.notRecovered
	w.mu.Unlock()
	if tot.Unexpected > 0 {
		rep.fail("%d operations failed with an unexpected error", tot.Unexpected)
	}
	if tot.Timeouts > 0 {
		rep.fail("%d operations timed out (over %v)", tot.Timeouts, cfg.OpTimeout)
	}

	say("stopping the server (SIGTERM)")
	if err := srv.Stop(30 * time.Second); err != nil {
		rep.fail("%v", err)
	}
	rep.LogWarnings, rep.LogErrors, rep.LogPanics, rep.LogLines = srv.LogCounts(MaxLogLines)
	if rep.LogErrors > 0 || rep.LogPanics > 0 {
		rep.fail("the server logged %d ERROR lines and %d panics", rep.LogErrors, rep.LogPanics)
	}

	say("checking the stored state")
	if err := checkStore(ctx, dataDir, clients, w, rep, say); err != nil {
		return nil, err
	}
	if sc := rep.StoreCounts; sc != nil && sc.JournalEntries > 0 {
		if err := runJournal(ctx, cfg, dataDir, rep, say); err != nil {
			return nil, err
		}
	}
	rep.LoadAvgEnd = loadAvg()
	rep.WallS = time.Since(began).Seconds()
	return rep, nil
}

func (r Resources) String() string {
	return fmt.Sprintf("goroutines=%.0f heap=%.1fMB inuse=%.1fMB rss=%.1fMB fds=%.0f threads=%.0f sockets=%.0f",
		r.Goroutines, r.HeapAlloc/1e6, r.HeapInuse/1e6, r.RSS/1e6, r.OpenFDs, r.Threads, r.Sockets)
}

// MaxDrain bounds the wait for the server's disconnect handlers after every client closed.
const MaxDrain = 3 * time.Minute

// drain waits until maoga_sockets_connected is 0: every client closed its connection, and the
// server runs each disconnect's handlers (presence, lastActive) before it stops counting the socket.
func drain(ctx context.Context, srv *Server, say func(string, ...any)) error {
	start := time.Now()
	for {
		m, err := srv.Metrics(ctx)
		if err != nil {
			return err
		}
		n := m["maoga_sockets_connected"]
		if n == 0 {
			if d := time.Since(start); d > time.Second {
				say("sockets drained in %v", d.Round(100*time.Millisecond))
			}
			return nil
		}
		if time.Since(start) > MaxDrain {
			return fmt.Errorf("%.0f sockets still counted connected %v after every client closed", n, MaxDrain)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// StoreFileBound bounds the open fds on the embedded store's files: FerretDB v1.24's SQLite pool
// opens at most 100 connections, each with the database and its WAL file, plus the shared-memory file.
const StoreFileBound = 2*100 + 1

// checkResources compares After with Baseline within Bounds.
func checkResources(rep *Report) {
	b, a, lim := rep.Baseline, rep.After, rep.Bounds
	if a.Sockets != 0 {
		rep.fail("maoga_sockets_connected is %.0f after every client disconnected", a.Sockets)
	}
	if a.Goroutines > b.Goroutines+float64(lim.Goroutines) {
		rep.fail("goroutines %.0f after, baseline %.0f (bound +%d)", a.Goroutines, b.Goroutines, lim.Goroutines)
	}
	// The embedded store's SQLite pool is bounded by itself (StoreFileBound); every other fd must
	// come back to the baseline.
	if other, otherBase := a.OpenFDs-a.StoreFiles, b.OpenFDs-b.StoreFiles; other > otherBase+float64(lim.OpenFDs) {
		rep.fail("open fds other than the store's files %.0f after, baseline %.0f (bound +%d)", other, otherBase, lim.OpenFDs)
	}
	if a.StoreFiles > StoreFileBound {
		rep.fail("%.0f open fds on the store's files (bound %d: FerretDB's pool of 100 SQLite connections)", a.StoreFiles, StoreFileBound)
	}
	if a.HeapAlloc > b.HeapAlloc+lim.HeapBytes {
		rep.fail("live heap %.1f MB after, baseline %.1f MB (bound +%.0f MB)", a.HeapAlloc/1e6, b.HeapAlloc/1e6, lim.HeapBytes/1e6)
	}
}

func countOps(rec *Recorder) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, s := range rec.ops {
		for _, c := range s.counts {
			n += c
		}
	}
	return n
}

// runPhase runs every client for d, and side alongside.
func runPhase(ctx context.Context, cfg Config, clients []*vclient, d time.Duration, side func(context.Context)) {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	if side != nil {
		wg.Add(1)
		go func() { defer wg.Done(); side(pctx) }()
	}
	// Clients start at random moments over the longest pause (at most three quarters of the phase),
	// as they would arrive, not all in the same second: a connect costs the store more than most
	// steps (presence, the notification counts).
	spread := min(cfg.ThinkMax, d*3/4)
	for _, c := range clients {
		wg.Add(1)
		var delay time.Duration
		if spread > 0 {
			delay = time.Duration(c.rng.Int64N(int64(spread)))
		}
		go func(c *vclient) {
			defer wg.Done()
			c.phase = pctx
			c.sleep(ctx, delay)
			c.run(ctx, pctx)
		}(c)
	}
	wg.Wait()
}

// settleAll ends every client's matchmaking, 64 at a time.
func settleAll(ctx context.Context, clients []*vclient) {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func(c *vclient) {
			defer func() { <-sem; wg.Done() }()
			c.settle(ctx)
		}(c)
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fillPool keeps 200 concurrent reads (GET /api/users/me: the bearer check loads the user) going for
// d, so that the server's store connection pool grows to its maximum (maxPoolSize 100) before the
// baseline: a pool that grew during the load is not a leak, and is not counted as one.
func fillPool(ctx context.Context, api *API, users []*User, d time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(u *User) {
			defer wg.Done()
			for pctx.Err() == nil {
				api.Call(ctx, "GET", "/api/users/me", u.Token, nil)
			}
		}(users[i%len(users)])
	}
	wg.Wait()
}

// registerUsers creates n accounts over REST, 8 at a time (the embedded store writes one
// transaction at a time; more in parallel only queue). Registration is set-up, not load: a 503 is
// retried (after a timeout the account may exist: then the user logs in).
func registerUsers(ctx context.Context, api *API, rec *Recorder, n int, seed uint64) ([]*User, error) {
	users := make([]*User, n)
	prefix := fmt.Sprintf("s%x", (uint64(time.Now().UnixNano())^seed)%0xfffff)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("%s_%d", prefix, i)
			u, err := registerOne(ctx, api, rec, name)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			u.Index = i
			users[i] = u
		}(i)
	}
	wg.Wait()
	return users, firstErr
}

func registerOne(ctx context.Context, api *API, rec *Recorder, name string) (*User, error) {
	path, body := "/api/auth/register", map[string]any{"username": name, "email": name + "@soak.example", "password": "password123"}
	var a Answer
	for attempt := 0; attempt < 5; attempt++ {
		a = api.Call(ctx, "POST", path, "", body)
		rec.Record(OpRegister, false, a.Code, a.Message, a.Took)
		switch {
		case a.Code == "":
			var d struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
				AccessToken string `json:"accessToken"`
			}
			if err := decodeJSON(a.Data, &d); err != nil || d.User.ID == "" || d.AccessToken == "" {
				return nil, fmt.Errorf("register %s: answer %.200s", name, a.Data)
			}
			return &User{ID: d.User.ID, Name: name, Token: d.AccessToken}, nil
		case a.Code == "CONFLICT" && attempt > 0: // an earlier attempt went through after all
			path, body = "/api/auth/login", map[string]any{"login": name, "password": "password123"}
			continue
		case a.Code == "SERVICE_UNAVAILABLE" || a.Code == "TIMEOUT":
			if err := sleepCtx(ctx, time.Second); err != nil {
				return nil, err
			}
			continue
		}
		break
	}
	return nil, fmt.Errorf("register %s: %s %s", name, a.Code, a.Message)
}

// UnreadCountUsers is how many users' unread-notification count query internal/consistency compares
// with their documents (all users would take minutes on the embedded store, which scans).
const UnreadCountUsers = 30

// checkStore opens the stopped server's data dir and runs internal/consistency and Compare.
func checkStore(ctx context.Context, dataDir string, clients []*vclient, w *world, rep *Report, say func(string, ...any)) error {
	start := time.Now()
	st, err := models.Open(ctx, models.Config{DataDir: dataDir, Database: "maoga",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("opening the data dir: %w", err)
	}
	defer st.Close(ctx)
	say("store opened in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	cr, err := consistency.CheckWith(ctx, st.DB(), consistency.Options{UnreadCountUsers: UnreadCountUsers})
	if err != nil {
		return err
	}
	say("internal/consistency took %v: %s", time.Since(start).Round(time.Millisecond), cr.Summary())
	res := &ConsResult{OK: cr.OK(), Problems: cr.Problems, Tolerated: map[string]int{}, Counts: cr.Counts,
		UnreadCountsChecked: cr.UnreadCountsChecked}
	for k, v := range cr.Tolerated {
		res.Tolerated[k] = len(v)
	}
	if len(res.Problems) > 50 {
		res.Problems = append(res.Problems[:50], fmt.Sprintf("... and %d more", len(cr.Problems)-50))
	}
	rep.Consistency = res
	if !cr.OK() {
		rep.fail("internal/consistency: %d problems", len(cr.Problems))
	}
	view, err := ReadStore(ctx, st.DB())
	if err != nil {
		return err
	}
	m := &Model{LobbyOf: map[string]string{}, Uncertain: map[string]bool{}, Acked: w.acked, Unsure: w.unsure}
	for _, c := range clients {
		m.LobbyOf[c.u.ID] = c.lobby
		if c.uncertain {
			m.Uncertain[c.u.ID] = true
		}
	}
	rep.UncertainUsers = len(m.Uncertain)
	mism := Compare(m, view)
	if len(mism) > 0 {
		rep.fail("the stored state disagrees with the clients %d times", len(mism))
		if len(mism) > 50 {
			mism = append(mism[:50], fmt.Sprintf("... and %d more", len(mism)-50))
		}
	}
	rep.ModelMismatch = mism
	sc := &StoreCounts{Lobbies: view.Lobbies, JoinedSeats: view.JoinedSeats, ChatsWithTraffic: len(view.Messages)}
	for _, n := range view.Messages {
		sc.Messages += n
	}
	for _, n := range w.acked {
		sc.AckedMessages += n
	}
	for _, n := range w.unsure {
		sc.UnsureMessages += n
	}
	for _, l := range m.LobbyOf {
		if l != "" {
			sc.UsersInLobbies++
		}
	}
	if sc.UsersInLobbies != sc.JoinedSeats && rep.UncertainUsers == 0 {
		rep.fail("%d users in open lobbies by their clients, %d joined members stored", sc.UsersInLobbies, sc.JoinedSeats)
	}
	if err := countWelcomes(ctx, st.DB(), sc); err != nil {
		return err
	}
	if missing := sc.Users - sc.Welcomed - sc.JournalWelcome; missing > 0 {
		rep.fail("%d of %d users have no welcome notification and none is waiting in the event journal", missing, sc.Users)
	}
	if sc.WelcomeTwice > 0 {
		rep.fail("%d users have more than one welcome notification", sc.WelcomeTwice)
	}
	rep.StoreCounts = sc
	return nil
}

// runJournal restarts the server on the same data dir to run the deliveries the first one left in the
// event journal at SIGTERM (a shutdown under load journals what it cannot finish), stops it again, and
// checks that the journal is empty: nothing the first server accepted is lost.
func runJournal(ctx context.Context, cfg Config, dataDir string, rep *Report, say func(string, ...any)) error {
	left := rep.StoreCounts.JournalEntries
	say("restarting the server to run the %d deliveries left in the event journal", left)
	srv, err := StartServer(ctx, cfg.ServerBin, dataDir, rep.ServerLog+".restart", cfg.ServerEnv)
	if err != nil {
		return err
	}
	defer srv.Kill()
	start := time.Now()
	for {
		m, err := srv.Metrics(ctx)
		if err != nil {
			return err
		}
		if m["maoga_events_replayed_total"] >= float64(left) {
			break
		}
		if time.Since(start) > 2*time.Minute {
			rep.fail("the restarted server replayed %.0f of %d journaled deliveries in 2 minutes", m["maoga_events_replayed_total"], left)
			break
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil { // let the last ones finish
		return err
	}
	m, err := srv.Metrics(ctx)
	if err != nil {
		return err
	}
	if err := srv.Stop(30 * time.Second); err != nil {
		rep.fail("restart: %v", err)
	}
	st, err := models.Open(ctx, models.Config{DataDir: dataDir, Database: "maoga",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return fmt.Errorf("opening the data dir: %w", err)
	}
	defer st.Close(ctx)
	n, err := st.Collection(storejournal.Collection).CountDocuments(ctx, bson.M{})
	if err != nil {
		return err
	}
	rep.JournalRestart = &JournalRestart{Left: left, Replayed: int(m["maoga_events_replayed_total"]),
		GaveUp: int(m["maoga_events_gave_up_total"]), LeftAfter: int(n), TookS: time.Since(start).Seconds()}
	say("restart: %d journaled deliveries replayed in %v, %d left", rep.JournalRestart.Replayed,
		time.Since(start).Round(100*time.Millisecond), n)
	if n > 0 || rep.JournalRestart.GaveUp > 0 {
		rep.fail("after the restart %d deliveries are still journaled, %d were given up", n, rep.JournalRestart.GaveUp)
	}
	return nil
}

// JournalRestart is what the restart that ran the journaled deliveries found.
type JournalRestart struct {
	Left      int     `json:"journaledAtStop"`
	Replayed  int     `json:"replayed"`
	GaveUp    int     `json:"gaveUp"`
	LeftAfter int     `json:"journaledAfterRestart"`
	TookS     float64 `json:"seconds"`
}

// countWelcomes fills the welcome-notification and event-journal counts of sc.
func countWelcomes(ctx context.Context, db *mongo.Database, sc *StoreCounts) error {
	n, err := db.Collection(models.UsersCollection).CountDocuments(ctx, bson.M{})
	if err != nil {
		return err
	}
	sc.Users = int(n)
	var welcomes []struct {
		UserID bson.ObjectID `bson:"userId"`
	}
	cur, err := db.Collection(models.NotificationsCollection).Find(ctx, bson.M{"type": "welcome"},
		options.Find().SetProjection(bson.M{"userId": 1}))
	if err != nil {
		return err
	}
	if err := cur.All(ctx, &welcomes); err != nil {
		return err
	}
	per := map[bson.ObjectID]int{}
	for _, w := range welcomes {
		per[w.UserID]++
	}
	sc.Welcomed = len(per)
	for _, c := range per {
		if c > 1 {
			sc.WelcomeTwice++
		}
	}
	j := db.Collection(storejournal.Collection)
	if n, err = j.CountDocuments(ctx, bson.M{}); err != nil {
		return err
	}
	sc.JournalEntries = int(n)
	// The welcome handler's name (services/notifications) is the entries' handler.
	if n, err = j.CountDocuments(ctx, bson.M{"handler": "notifications.welcome"}); err != nil {
		return err
	}
	sc.JournalWelcome = int(n)
	return nil
}

// loadAvg is the first three fields of /proc/loadavg ("" where there is none).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	var a, b1, c string
	if _, err := fmt.Sscan(string(b), &a, &b1, &c); err != nil {
		return ""
	}
	return a + " " + b1 + " " + c
}

// ErrFailed is returned by cmd/soak's run when the report has failures.
var ErrFailed = errors.New("soak failed")
