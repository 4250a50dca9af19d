package presence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/maoga/maoga/services/realtime"
)

type fakeUsers struct {
	mu     sync.Mutex
	saved  map[string]time.Time
	status map[string]string
	err    error
}

func (f *fakeUsers) SavePresence(_ context.Context, id, status string, lastActive time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.saved == nil {
		f.saved = map[string]time.Time{}
		f.status = map[string]string{}
	}
	f.status[id] = status
	if !lastActive.IsZero() {
		f.saved[id] = lastActive
	}
	return f.err
}

type fakeFriends map[string][]string

func (f fakeFriends) FriendIDs(_ context.Context, id string) ([]string, error) {
	if id == "broken" {
		return nil, errors.New("db down")
	}
	return f[id], nil
}

var clock = time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.UTC)

func newLocal() (*Local, *realtime.Recorder, *fakeUsers) {
	rec := &realtime.Recorder{}
	users := &fakeUsers{}
	l := NewLocal(LocalOptions{
		Users:   users,
		Friends: fakeFriends{"u1": {"f1", "f2"}},
		Emitter: rec,
		Now:     func() time.Time { return clock },
	})
	return l, rec, users
}

func wantEmits(t *testing.T, rec *realtime.Recorder, status string) {
	t.Helper()
	got := rec.Events()
	if len(got) != 2 {
		t.Fatalf("got %d emits, want 2 (one per friend): %+v", len(got), got)
	}
	for i, room := range []string{"user:f1", "user:f2"} {
		e := got[i]
		want := StatusPayload{UserID: "u1", Status: status, UpdatedAt: "2026-11-22T01:02:03.456Z"}
		if e.Room != room || e.Event != "user:status" || len(e.Args) != 1 || e.Args[0] != want {
			t.Fatalf("emit %d = %+v, want %s user:status %+v", i, e, room, want)
		}
	}
	rec.Reset()
}

func TestTwoSocketsOnlineOnceOfflineAfterLast(t *testing.T) {
	ctx := context.Background()
	l, rec, users := newLocal()

	on, err := l.Connect(ctx, "u1", "s1")
	if err != nil || !on {
		t.Fatalf("first connect: %v %v", on, err)
	}
	wantEmits(t, rec, Online)
	if users.status["u1"] != Online {
		t.Fatalf("saved status = %q", users.status["u1"])
	}

	on, err = l.Connect(ctx, "u1", "s2")
	if err != nil || on {
		t.Fatalf("second connect: became online again (%v, %v)", on, err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("second socket told friends again: %d emits", n)
	}

	off, err := l.Disconnect(ctx, "u1", "s1")
	if err != nil || off {
		t.Fatalf("first disconnect: %v %v", off, err)
	}
	if st, _ := l.Status(ctx, "u1"); st != Online {
		t.Fatalf("status with one socket left = %s", st)
	}
	if len(users.saved) != 0 {
		t.Fatal("lastActive saved while a socket remains")
	}

	off, err = l.Disconnect(ctx, "u1", "s2")
	if err != nil || !off {
		t.Fatalf("last disconnect: %v %v", off, err)
	}
	wantEmits(t, rec, Offline)
	if !users.saved["u1"].Equal(clock) || users.status["u1"] != Offline {
		t.Fatalf("lastActive = %v", users.saved["u1"])
	}
	if st, _ := l.Status(ctx, "u1"); st != Offline {
		t.Fatalf("status after last disconnect = %s", st)
	}

	// A repeated or unknown disconnect changes nothing.
	off, err = l.Disconnect(ctx, "u1", "s2")
	if err != nil || off {
		t.Fatalf("repeated disconnect: %v %v", off, err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("repeated disconnect emitted %d", n)
	}
}

func TestSetStatus(t *testing.T) {
	ctx := context.Background()
	l, rec, users := newLocal()
	if err := l.SetStatus(ctx, "u1", Away); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("set status without socket: %v", err)
	}
	if _, err := l.Connect(ctx, "u1", "s1"); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	for _, bad := range []string{"", "ONLINE", "sleeping", "in game"} {
		if err := l.SetStatus(ctx, "u1", bad); !errors.Is(err, ErrInvalidStatus) {
			t.Fatalf("status %q: %v", bad, err)
		}
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("invalid status emitted %d", n)
	}
	for _, st := range []string{Away, Busy, InGame, Offline, Online} {
		if err := l.SetStatus(ctx, "u1", st); err != nil {
			t.Fatal(err)
		}
		wantEmits(t, rec, st)
		if users.status["u1"] != st {
			t.Fatalf("saved status = %q want %q", users.status["u1"], st)
		}
		if got, _ := l.Status(ctx, "u1"); got != st {
			t.Fatalf("Status = %s want %s", got, st)
		}
	}
	// Unchanged status: nothing to tell.
	if err := l.SetStatus(ctx, "u1", Online); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("unchanged status emitted %d", n)
	}
	// A second socket does not reset a chosen status.
	if err := l.SetStatus(ctx, "u1", Busy); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(ctx, "u1", "s2"); err != nil {
		t.Fatal(err)
	}
	st, _ := l.Statuses(ctx, []string{"u1", "nobody"})
	if st["u1"] != Busy || st["nobody"] != Offline || len(st) != 2 {
		t.Fatalf("Statuses = %v", st)
	}
}

func TestSideEffectErrorsAreReportedButStateChanges(t *testing.T) {
	ctx := context.Background()
	rec := &realtime.Recorder{Err: errors.New("emit failed")}
	users := &fakeUsers{err: errors.New("write failed")}
	l := NewLocal(LocalOptions{Users: users, Friends: fakeFriends{"u1": {"f1", "f2"}}, Emitter: rec})
	on, err := l.Connect(ctx, "u1", "s1")
	if !on || err == nil {
		t.Fatalf("connect: %v %v (want online and an emit error)", on, err)
	}
	if n := len(rec.Events()); n != 2 {
		t.Fatalf("a failed emit stopped the others: %d emits", n)
	}
	off, err := l.Disconnect(ctx, "u1", "s1")
	if !off || err == nil {
		t.Fatalf("disconnect: %v %v", off, err)
	}
	if st, _ := l.Status(ctx, "u1"); st != Offline {
		t.Fatalf("status = %s", st)
	}
	on, err = l.Connect(ctx, "broken", "s1")
	if !on || err == nil {
		t.Fatalf("friend lookup error not reported: %v %v", on, err)
	}
}

func TestEmptyIDsRejected(t *testing.T) {
	l, _, _ := newLocal()
	if _, err := l.Connect(context.Background(), "", "s"); err == nil {
		t.Fatal("empty user id accepted")
	}
	if _, err := l.Disconnect(context.Background(), "u", ""); err == nil {
		t.Fatal("empty socket id accepted")
	}
}

func TestConcurrentSocketsOfOneUser(t *testing.T) {
	ctx := context.Background()
	l, rec, _ := newLocal()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := string(rune('a'+i%26)) + string(rune('a'+i/26))
			if _, err := l.Connect(ctx, "u1", id); err != nil {
				t.Error(err)
			}
			if _, err := l.Disconnect(ctx, "u1", id); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	// Every online has its offline, alternating, friend by friend.
	var last string
	count := 0
	for _, e := range rec.Events() {
		if e.Room != "user:f1" {
			continue
		}
		st := e.Args[0].(StatusPayload).Status
		if st == last {
			t.Fatalf("two %s in a row: changes told out of order", st)
		}
		last = st
		count++
	}
	if last != Offline || count%2 != 0 {
		t.Fatalf("ended with %q after %d changes", last, count)
	}
	if st, _ := l.Status(ctx, "u1"); st != Offline {
		t.Fatalf("status = %s", st)
	}
	if len(l.ops.m) != 0 {
		t.Fatalf("per-user locks leaked: %d", len(l.ops.m))
	}
}

func TestAppearOfflineThenLeave(t *testing.T) {
	ctx := context.Background()
	l, rec, users := newLocal()
	if _, err := l.Connect(ctx, "u1", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStatus(ctx, "u1", Offline); err != nil {
		t.Fatal(err)
	}
	rec.Reset()
	off, err := l.Disconnect(ctx, "u1", "s1")
	if err != nil || !off {
		t.Fatalf("disconnect: %v %v", off, err)
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("friends told offline twice: %d emits", n)
	}
	if !users.saved["u1"].Equal(clock) {
		t.Fatal("lastActive not saved")
	}
}
