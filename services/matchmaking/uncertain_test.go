package matchmaking_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/internal/faultproxy"
	"github.com/maoga/maoga/internal/sharedstore"
	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/realtime"
)

// TestRetryAfterStartAnsweredUnavailableButStored: a start whose request was stored but whose
// update to searching never reached the store (the link cut just before it, as a store timeout
// would) is answered SERVICE_UNAVAILABLE and leaves a pending request holding the user's active
// key. The user's retry — same criteria or others — succeeds at once (it used to be CONFLICT until
// the matcher removed the pending request after ClaimTimeout), and replaces the pending request:
// the user has exactly one request, searching.
func TestRetryAfterStartAnsweredUnavailableButStored(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	shared, err := sharedstore.Start(ctx, t.TempDir(), "127.0.0.1:0", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shared.Stop)
	proxy, err := faultproxy.Start(strings.TrimSuffix(strings.TrimPrefix(shared.URI(), "mongodb://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	st, err := models.Open(ctx, models.Config{URI: "mongodb://" + proxy.Addr() + "/", Database: "uncertain",
		Timeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	svc, err := matchmaking.New(matchmaking.Options{Store: st, Games: catalogue{}, Lobbies: newLobbies(),
		Emitter: &realtime.Recorder{}, Config: testConfig(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reqs := models.NewMatchRequests(st)
	ofUser := func(t *testing.T, uid bson.ObjectID) []models.MatchRequest {
		t.Helper()
		cur, err := reqs.Collection().Find(ctx, bson.M{"userId": uid})
		if err != nil {
			t.Fatal(err)
		}
		var out []models.MatchRequest
		if err := cur.All(ctx, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// failStart runs a start whose update to searching is cut off: answered 503, stored pending.
	failStart := func(t *testing.T, user string, in matchmaking.StartInput) *models.MatchRequest {
		t.Helper()
		fired := proxy.CutBefore(func(c faultproxy.Command) bool {
			return c.Name == "findAndModify" && c.Collection == models.MatchRequestsCollection
		})
		start := time.Now()
		_, err := svc.Start(ctx, user, in)
		wantCode(t, err, errs.CodeServiceUnavailable)
		select {
		case <-fired:
		default:
			t.Fatal("the link was not cut before the update to searching")
		}
		t.Logf("start answered SERVICE_UNAVAILABLE after %v", time.Since(start).Round(time.Millisecond))
		proxy.Restore()
		for i := 0; st.Ping(ctx) != nil; i++ {
			if i == 100 {
				t.Fatal("store not reachable again")
			}
			time.Sleep(50 * time.Millisecond)
		}
		uid, _ := models.ParseID(user)
		left := ofUser(t, uid)
		if len(left) != 1 || left[0].Status != models.MatchPending || left[0].ActiveKey != user {
			t.Fatalf("after the failed start: %+v, want one pending request holding the active key", left)
		}
		return &left[0]
	}
	duel := matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu", Skill: skill(1200)}

	for _, c := range []struct {
		name  string
		retry matchmaking.StartInput
	}{
		{"same criteria", duel},
		{"other criteria", matchmaking.StartInput{GameID: "chess", GameMode: "quad", Region: "na"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			user := newUser()
			uid, _ := models.ParseID(user)
			pending := failStart(t, user, duel)
			m, err := svc.Start(ctx, user, c.retry)
			if err != nil {
				t.Fatalf("retry after the failed start: %v", err)
			}
			if m.Status != models.MatchSearching || m.ID == pending.ID || m.GameMode != c.retry.GameMode {
				t.Fatalf("retry answered %+v", m)
			}
			if got := ofUser(t, uid); len(got) != 1 || got[0].ID != m.ID || got[0].Status != models.MatchSearching {
				t.Fatalf("requests of the user after the retry: %+v, want only the searching one", got)
			}
			// Searching for real: a further start is CONFLICT naming it, and nothing is replaced.
			_, err = svc.Start(ctx, user, c.retry)
			if ce := wantCode(t, err, errs.CodeConflict); ce.Details["matchRequestId"] != m.ID.Hex() || ce.Details["status"] != models.MatchSearching {
				t.Fatalf("conflict details %v", ce.Details)
			}
			if got := ofUser(t, uid); len(got) != 1 || got[0].Status != models.MatchSearching {
				t.Fatalf("requests after the refused start: %+v", got)
			}
		})
	}
}

// TestNewerStartReplacesAPendingOne: two starts of one user at once. The second arrives while the
// first is between its insert and its update to searching: it takes the pending request's place and
// searches; the first answers CONFLICT. Never two active requests.
func TestNewerStartReplacesAPendingOne(t *testing.T) {
	e := newEnv(t, testConfig())
	u := newUser()
	var second *models.MatchRequest
	var secondErr error
	e.lb.mu.Lock()
	e.lb.onCheck = func() {
		second, secondErr = e.svc.Start(e.ctx, u, matchmaking.StartInput{GameID: "chess", GameMode: "quad", Region: "eu"})
	}
	e.lb.mu.Unlock()
	_, err := e.svc.Start(e.ctx, u, matchmaking.StartInput{GameID: "chess", GameMode: "duel", Region: "eu"})
	ce := wantCode(t, err, errs.CodeConflict)
	if secondErr != nil || second == nil || second.Status != models.MatchSearching || second.GameMode != "quad" {
		t.Fatalf("second start: %+v %v", second, secondErr)
	}
	if !strings.Contains(ce.Message, "replaced") {
		t.Fatalf("first start: %v", err)
	}
	active, err := e.svc.ActiveRequest(e.ctx, u)
	if err != nil || active.ID != second.ID {
		t.Fatalf("active request %+v %v, want the second", active, err)
	}
	uid, _ := models.ParseID(u)
	if n, _ := store.Collection(models.MatchRequestsCollection).CountDocuments(e.ctx, bson.M{"userId": uid}); n != 1 {
		t.Fatalf("%d requests of the user, want 1", n)
	}
}
