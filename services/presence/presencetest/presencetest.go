// Package presencetest checks that an implementation of presence.Service
// behaves as the handlers rely on. The in-memory service runs it; a cluster
// implementation (Redis) runs the same suite:
//
//	presencetest.Run(t, func(t *testing.T, b *presencetest.Backend) presence.Service {
//		return myredis.New(..., b.Users, b.Friends, b.Emitter)
//	})
package presencetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/realtime"
)

// Users records what a Service saves (presence.UserStore).
type Users struct {
	mu         sync.Mutex
	status     map[string]string
	lastActive map[string]time.Time
	// Err, when set, is returned by every save (the save is still recorded).
	Err error
}

// SavePresence implements presence.UserStore.
func (u *Users) SavePresence(_ context.Context, userID, status string, lastActive time.Time) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.status == nil {
		u.status, u.lastActive = map[string]string{}, map[string]time.Time{}
	}
	u.status[userID] = status
	if !lastActive.IsZero() {
		u.lastActive[userID] = lastActive
	}
	return u.Err
}

// Saved returns the last saved status and lastActive of a user.
func (u *Users) Saved(userID string) (string, time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status[userID], u.lastActive[userID]
}

// Friends is a fixed friend list (presence.FriendLister).
type Friends struct {
	mu sync.Mutex
	m  map[string][]string
}

// Set makes the users friends of each other.
func (f *Friends) Set(a string, others ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string][]string{}
	}
	f.m[a] = append(f.m[a], others...)
	for _, o := range others {
		f.m[o] = append(f.m[o], a)
	}
}

// FriendIDs implements presence.FriendLister.
func (f *Friends) FriendIDs(_ context.Context, userID string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.m[userID]...), nil
}

// Backend is what a Service under test is built on.
type Backend struct {
	Users   *Users
	Friends *Friends
	Emitter *realtime.Recorder
}

// Factory builds a fresh, empty Service on b. Several services built in one
// test (with the same b) must share their state, as nodes of a cluster do;
// an implementation without shared state returns the same one each time.
type Factory func(t *testing.T, b *Backend) presence.Service

// Run runs the suite.
func Run(t *testing.T, newService Factory) {
	t.Run("OnlineOnceOfflineAfterLast", func(t *testing.T) { testSockets(t, newService) })
	t.Run("SetStatus", func(t *testing.T) { testSetStatus(t, newService) })
	t.Run("Statuses", func(t *testing.T) { testStatuses(t, newService) })
	t.Run("SocketsOnTwoServices", func(t *testing.T) { testTwoNodes(t, newService) })
}

func setup(t *testing.T, newService Factory) (*Backend, presence.Service, string, string) {
	b := &Backend{Users: &Users{}, Friends: &Friends{}, Emitter: &realtime.Recorder{}}
	id := fmt.Sprintf("u%d", time.Now().UnixNano())
	friend := id + "-friend"
	b.Friends.Set(id, friend)
	return b, newService(t, b), id, friend
}

// statuses returns the statuses friend's room heard about id, in order.
func statuses(b *Backend, id, friend string) []string {
	var out []string
	for _, e := range b.Emitter.Events() {
		if e.Room != realtime.UserRoom(friend) || e.Event != presence.StatusEvent || len(e.Args) != 1 {
			continue
		}
		if p, ok := e.Args[0].(presence.StatusPayload); ok && p.UserID == id {
			out = append(out, p.Status)
		}
	}
	return out
}

func want(t *testing.T, got []string, w ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(w) {
		t.Fatalf("friend heard %v, want %v", got, w)
	}
}

func testSockets(t *testing.T, newService Factory) {
	ctx := context.Background()
	b, s, id, friend := setup(t, newService)
	if on, err := s.Connect(ctx, id, "s1"); err != nil || !on {
		t.Fatalf("first Connect = %v, %v", on, err)
	}
	if on, err := s.Connect(ctx, id, "s2"); err != nil || on {
		t.Fatalf("second Connect = %v, %v", on, err)
	}
	want(t, statuses(b, id, friend), presence.Online)
	if st, _ := b.Users.Saved(id); st != presence.Online {
		t.Fatalf("saved status %q", st)
	}
	if off, err := s.Disconnect(ctx, id, "s1"); err != nil || off {
		t.Fatalf("Disconnect of one of two = %v, %v", off, err)
	}
	if st, _ := s.Status(ctx, id); st != presence.Online {
		t.Fatalf("Status with a socket left = %s", st)
	}
	if off, err := s.Disconnect(ctx, id, "s2"); err != nil || !off {
		t.Fatalf("Disconnect of the last = %v, %v", off, err)
	}
	want(t, statuses(b, id, friend), presence.Online, presence.Offline)
	if st, at := b.Users.Saved(id); st != presence.Offline || at.IsZero() {
		t.Fatalf("saved %q %v after the last socket", st, at)
	}
	if st, _ := s.Status(ctx, id); st != presence.Offline {
		t.Fatalf("Status = %s", st)
	}
	if off, err := s.Disconnect(ctx, id, "s2"); err != nil || off {
		t.Fatalf("repeated Disconnect = %v, %v", off, err)
	}
	want(t, statuses(b, id, friend), presence.Online, presence.Offline)
}

func testSetStatus(t *testing.T, newService Factory) {
	ctx := context.Background()
	b, s, id, friend := setup(t, newService)
	if err := s.SetStatus(ctx, id, presence.Away); !errors.Is(err, presence.ErrNotConnected) {
		t.Fatalf("SetStatus without sockets: %v", err)
	}
	if _, err := s.Connect(ctx, id, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, id, "sleeping"); !errors.Is(err, presence.ErrInvalidStatus) {
		t.Fatalf("invalid status: %v", err)
	}
	for _, st := range []string{presence.Away, presence.Away, presence.Busy, presence.InGame} {
		if err := s.SetStatus(ctx, id, st); err != nil {
			t.Fatal(err)
		}
	}
	want(t, statuses(b, id, friend), presence.Online, presence.Away, presence.Busy, presence.InGame)
	if st, _ := s.Status(ctx, id); st != presence.InGame {
		t.Fatalf("Status = %s", st)
	}
	if st, _ := b.Users.Saved(id); st != presence.InGame {
		t.Fatalf("saved %s", st)
	}
}

func testStatuses(t *testing.T, newService Factory) {
	ctx := context.Background()
	_, s, id, _ := setup(t, newService)
	if _, err := s.Connect(ctx, id, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, id, presence.Busy); err != nil {
		t.Fatal(err)
	}
	m, err := s.Statuses(ctx, []string{id, id + "-nobody"})
	if err != nil || len(m) != 2 || m[id] != presence.Busy || m[id+"-nobody"] != presence.Offline {
		t.Fatalf("Statuses = %v, %v", m, err)
	}
}

// testTwoNodes: a user with a socket on each of two services (nodes) is
// online until both are gone.
func testTwoNodes(t *testing.T, newService Factory) {
	ctx := context.Background()
	b, s1, id, friend := setup(t, newService)
	s2 := newService(t, b)
	if on, err := s1.Connect(ctx, id, "a"); err != nil || !on {
		t.Fatalf("Connect on node 1 = %v, %v", on, err)
	}
	if on, err := s2.Connect(ctx, id, "b"); err != nil || on {
		t.Fatalf("Connect on node 2 = %v, %v (already online)", on, err)
	}
	if off, err := s1.Disconnect(ctx, id, "a"); err != nil || off {
		t.Fatalf("Disconnect on node 1 = %v, %v (node 2 still has a socket)", off, err)
	}
	if st, _ := s1.Status(ctx, id); st != presence.Online {
		t.Fatalf("node 1 says %s", st)
	}
	if off, err := s2.Disconnect(ctx, id, "b"); err != nil || !off {
		t.Fatalf("last Disconnect = %v, %v", off, err)
	}
	want(t, statuses(b, id, friend), presence.Online, presence.Offline)
}
