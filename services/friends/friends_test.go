package friends

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
	"github.com/maoga/maoga/services/users"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "friends_test", &store) }

type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	return nil
}

func newUser(t *testing.T, name string) *models.User {
	t.Helper()
	u := &models.User{Username: name, Email: name + "@example.com", PasswordHash: "x", DisplayName: "Display " + name}
	if err := models.NewUsers(store).Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConcurrentAnswersOneWins(t *testing.T) {
	ctx := context.Background()
	pub := &recorder{}
	svc := New(store, users.New(users.Options{Store: store}), pub, nil)
	a, b := newUser(t, "conc_a"), newUser(t, "conc_b")
	f, err := svc.Request(ctx, a.ID.Hex(), b.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = svc.Accept(ctx, b.ID.Hex(), f.ID.Hex())
			} else {
				_, err = svc.Reject(ctx, b.ID.Hex(), f.ID.Hex())
			}
			results <- err
		}(i)
	}
	wg.Wait()
	close(results)
	wins := 0
	for err := range results {
		switch {
		case err == nil:
			wins++
		case !errs.Is(err, errs.CodeConflict):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d answers won, want exactly 1", wins)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.evs) != 2 || pub.evs[0].Name != events.FriendshipRequested {
		t.Fatalf("events %+v", pub.evs)
	}
	var d events.FriendshipData
	if err := pub.evs[0].Decode(&d); err != nil || d.RequesterID != a.ID.Hex() || d.AddresseeID != b.ID.Hex() ||
		d.RequesterName != "Display conc_a" || d.FriendshipID != f.ID.Hex() {
		t.Fatalf("requested payload %+v %v", d, err)
	}
}

func TestFriendIDs(t *testing.T) {
	ctx := context.Background()
	svc := New(store, users.New(users.Options{Store: store}), nil, nil)
	a, b, c := newUser(t, "ids_a"), newUser(t, "ids_b"), newUser(t, "ids_c")
	for _, other := range []*models.User{b, c} {
		f, err := svc.Request(ctx, a.ID.Hex(), other.ID.Hex())
		if err != nil {
			t.Fatal(err)
		}
		if other == b {
			if _, err := svc.Accept(ctx, b.ID.Hex(), f.ID.Hex()); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids, err := svc.FriendIDs(ctx, a.ID.Hex())
	if err != nil || len(ids) != 1 || ids[0] != b.ID.Hex() {
		t.Fatalf("pending requests count as friends? %v %v", ids, err)
	}
}

type unsavedAt map[string]time.Time

func (m unsavedAt) Unsaved(id string) (string, time.Time, bool) {
	at, ok := m[id]
	return models.StatusOffline, at, ok
}

// The friends list shows a friend's lastActive still queued behind presence (users.ApplyUnsaved),
// as the profile does.
func TestListShowsPresenceNotYetStored(t *testing.T) {
	ctx := context.Background()
	us := users.New(users.Options{Store: store})
	svc := New(store, us, nil, nil)
	a, b := newUser(t, "unsaved_fa"), newUser(t, "unsaved_fb")
	f, err := svc.Request(ctx, a.ID.Hex(), b.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Accept(ctx, b.ID.Hex(), f.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	us.SetUnsaved(unsavedAt{b.ID.Hex(): at})
	list, err := svc.List(ctx, a.ID.Hex())
	if err != nil || len(list) != 1 || list[0].User.LastActive == nil || *list[0].User.LastActive != realtime.ISOTime(at) {
		t.Fatalf("friends of a: %+v %v", list, err)
	}
}
