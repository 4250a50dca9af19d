package users

import (
	"context"
	"os"
	"testing"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "maoga-users-*")
	if err != nil {
		panic(err)
	}
	store, err = models.Open(context.Background(), models.Config{DataDir: dir})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = store.Close(context.Background())
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

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
