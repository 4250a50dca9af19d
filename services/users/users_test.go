package users

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "users_test", &store) }

type fixedStatus map[string]string

func (f fixedStatus) Status(_ context.Context, id string) (string, error) {
	if s, ok := f[id]; ok {
		return s, nil
	}
	return models.StatusOffline, nil
}

func (f fixedStatus) Statuses(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		out[id], _ = f.Status(ctx, id)
	}
	return out, nil
}

type friendList []string

func (l friendList) FriendIDs(context.Context, string) ([]string, error) { return l, nil }

func TestUserLoggedInAnnouncesOnlyWhenOffline(t *testing.T) {
	ctx := context.Background()
	u := &models.User{Username: "login_a", Email: "login_a@example.com", PasswordHash: "x"}
	if err := models.NewUsers(store).Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	rec := &realtime.Recorder{}
	presence := fixedStatus{}
	svc := New(Options{Store: store, Presence: presence, Friends: friendList{"f1", "f2"}, Emitter: rec})
	defer svc.Close()
	if err := svc.UserLoggedIn(ctx, u.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	evs := rec.Events()
	if len(evs) != 2 || evs[0].Room != "user:f1" || evs[1].Room != "user:f2" || evs[0].Event != "user:status" {
		t.Fatalf("emitted %+v", evs)
	}
	p := evs[0].Args[0].(map[string]any)
	if p["userId"] != u.ID.Hex() || p["status"] != "online" || p["updatedAt"] == "" {
		t.Fatalf("payload %v", p)
	}
	got, _ := svc.Me(ctx, u.ID.Hex())
	if got.Status != models.StatusOnline || got.LastActive == nil {
		t.Fatalf("stored %+v", got)
	}

	// Already connected and "busy": a login on another device changes nothing.
	rec.Reset()
	presence[u.ID.Hex()] = models.StatusBusy
	if err := svc.UserLoggedIn(ctx, u.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("announced %d events for a connected user", n)
	}
	if p, err := svc.Profile(ctx, u.ID.Hex()); err != nil || p.Status != models.StatusBusy {
		t.Fatalf("profile %+v %v", p, err)
	}
}

// lockedStatus is a presence view the test changes while the grace timer may read it.
type lockedStatus struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *lockedStatus) set(id, st string) { l.mu.Lock(); l.m[id] = st; l.mu.Unlock() }

func (l *lockedStatus) Status(_ context.Context, id string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.m[id]; ok {
		return s, nil
	}
	return models.StatusOffline, nil
}

func (l *lockedStatus) Statuses(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		out[id], _ = l.Status(ctx, id)
	}
	return out, nil
}

// A REST login without a socket is online for LoginGrace only; a login followed by a socket stays
// with what presence says.
func TestLoginWithoutSocketGoesOfflineAfterGrace(t *testing.T) {
	ctx := context.Background()
	lonely := &models.User{Username: "grace_a", Email: "grace_a@example.com", PasswordHash: "x"}
	social := &models.User{Username: "grace_b", Email: "grace_b@example.com", PasswordHash: "x"}
	for _, u := range []*models.User{lonely, social} {
		if err := models.NewUsers(store).Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	rec := &realtime.Recorder{}
	presence := &lockedStatus{m: map[string]string{}}
	svc := New(Options{Store: store, Presence: presence, Friends: friendList{"f1"}, Emitter: rec,
		LoginGrace: 150 * time.Millisecond})
	defer svc.Close()
	for _, u := range []*models.User{lonely, social} {
		if err := svc.UserLoggedIn(ctx, u.ID.Hex()); err != nil {
			t.Fatal(err)
		}
	}
	presence.set(social.ID.Hex(), models.StatusOnline) // social's socket connected
	statusOf := func(u *models.User) string {
		got, err := svc.Me(ctx, u.ID.Hex())
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	deadline := time.Now().Add(5 * time.Second)
	for statusOf(lonely) != models.StatusOffline {
		if time.Now().After(deadline) {
			t.Fatal("a login without a socket stayed online")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	var offline []string
	for _, e := range rec.Events() {
		if p := e.Args[0].(map[string]any); p["status"] == models.StatusOffline {
			offline = append(offline, p["userId"].(string))
		}
	}
	if len(offline) != 1 || offline[0] != lonely.ID.Hex() {
		t.Fatalf("offline announced for %v, want only %s", offline, lonely.ID.Hex())
	}
	if st := statusOf(social); st != models.StatusOnline {
		t.Fatalf("the connected user was stored %s", st)
	}
}

type unsavedMap map[string]time.Time

func (m unsavedMap) Unsaved(id string) (string, time.Time, bool) {
	at, ok := m[id]
	return models.StatusOffline, at, ok
}

// A presence write still queued behind (presence.SaveQueue) is what Me, Get and Profile show: a
// friend who saw user:status offline and reads the profile at once finds its lastActive.
func TestReadsSeePresenceNotYetStored(t *testing.T) {
	ctx := context.Background()
	u := &models.User{Username: "unsaved_a", Email: "unsaved_a@example.com", PasswordHash: "x", Status: models.StatusOnline}
	if err := models.NewUsers(store).Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	svc := New(Options{Store: store, Presence: fixedStatus{}})
	defer svc.Close()
	if got, err := svc.Profile(ctx, u.ID.Hex()); err != nil || got.LastActive != nil {
		t.Fatalf("without an unsaved change: %+v %v", got, err)
	}
	svc.SetUnsaved(unsavedMap{u.ID.Hex(): at})
	got, err := svc.Me(ctx, u.ID.Hex())
	if err != nil || got.Status != models.StatusOffline || got.LastActive == nil || !got.LastActive.Equal(at) {
		t.Fatalf("Me with the unsaved change: %+v %v", got, err)
	}
	p, err := svc.Profile(ctx, u.ID.Hex())
	if err != nil || p.LastActive == nil || *p.LastActive != realtime.ISOTime(at) {
		t.Fatalf("Profile with the unsaved change: %+v %v", p, err)
	}
	svc.SetUnsaved(unsavedMap{})
	if got, err := svc.Me(ctx, u.ID.Hex()); err != nil || got.Status != models.StatusOnline || got.LastActive != nil {
		t.Fatalf("Me once nothing is unsaved: %+v %v", got, err)
	}
}
