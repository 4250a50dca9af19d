package presencetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/realtime"
)

// Failure is what SlowStore does with one write attempt.
type Failure int

const (
	// Succeed: the write is done (after SlowStore.Took).
	Succeed Failure = iota
	// Hang: the write hangs until its ctx ends and fails with the ctx's error (a store too slow to
	// answer in time).
	Hang
	// Unavailable: the write fails at once with SERVICE_UNAVAILABLE (a store that cannot be reached).
	Unavailable
)

// SlowStore is a presence.UserStore that behaves like a busy database: it serves Capacity writes
// at a time, each taking Took; a write that waits for a free slot longer than its ctx allows fails
// with the ctx's error, as a driver waiting for a pooled connection does. Fail, when set, decides
// the fate of each attempt (attempt counts from 1 per user and status).
type SlowStore struct {
	Capacity int
	Fail     func(userID, status string, attempt int) Failure

	took  atomic.Int64 // time.Duration
	slots chan struct{}
	once  sync.Once

	mu         sync.Mutex
	status     map[string]string
	lastActive map[string]time.Time
	attempts   map[string]int // "user status" → attempts
	byStatus   map[string]int // status → attempts
	lost       map[string]int // status → attempts that failed
	busy       map[string]int // user → writes in progress
	overlap    bool
	running    int
	maxRunning int
}

// SetTook sets how long one write takes.
func (s *SlowStore) SetTook(d time.Duration) { s.took.Store(int64(d)) }

// SavePresence implements presence.UserStore.
func (s *SlowStore) SavePresence(ctx context.Context, userID, status string, lastActive time.Time) error {
	s.once.Do(func() { s.slots = make(chan struct{}, max(s.Capacity, 1)) })
	s.mu.Lock()
	if s.attempts == nil {
		s.status, s.lastActive = map[string]string{}, map[string]time.Time{}
		s.attempts, s.byStatus, s.busy, s.lost = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	}
	s.attempts[userID+" "+status]++
	attempt := s.attempts[userID+" "+status]
	s.byStatus[status]++
	s.mu.Unlock()

	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		s.failed(status)
		return fmt.Errorf("store: no connection free in time: %w", ctx.Err())
	}
	defer func() { <-s.slots }()
	s.mu.Lock()
	s.running++
	s.maxRunning = max(s.maxRunning, s.running)
	s.busy[userID]++
	if s.busy[userID] > 1 {
		s.overlap = true
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running--
		s.busy[userID]--
		s.mu.Unlock()
	}()

	fate := Succeed
	if s.Fail != nil {
		fate = s.Fail(userID, status, attempt)
	}
	switch fate {
	case Hang:
		<-ctx.Done()
		s.failed(status)
		return fmt.Errorf("store: write timed out: %w", ctx.Err())
	case Unavailable:
		s.failed(status)
		return errs.Unavailable(errs.MsgUnavailable, fmt.Errorf("store unreachable"))
	}
	t := time.NewTimer(time.Duration(s.took.Load()))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		s.failed(status)
		return fmt.Errorf("store: write timed out: %w", ctx.Err())
	}
	s.mu.Lock()
	s.status[userID] = status
	if !lastActive.IsZero() {
		s.lastActive[userID] = lastActive
	}
	s.mu.Unlock()
	return nil
}

func (s *SlowStore) failed(status string) {
	s.mu.Lock()
	s.lost[status]++
	s.mu.Unlock()
}

// Saved returns the stored status and lastActive of a user.
func (s *SlowStore) Saved(userID string) (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[userID], s.lastActive[userID]
}

// Stats returns the write attempts of one status and how many of them failed, the most writes that
// ran at once, and whether two writes of one user ever overlapped.
func (s *SlowStore) Stats(status string) (attempts, failed, maxConcurrent int, overlapped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byStatus[status], s.lost[status], s.maxRunning, s.overlap
}

// StormFactory builds a Service that saves to users.
type StormFactory func(t *testing.T, users presence.UserStore, friends presence.FriendLister, emitter realtime.Emitter) presence.Service

// StormOptions shape DisconnectStorm.
type StormOptions struct {
	Users int // users that leave together
	// HandlerTimeout bounds each Disconnect, as the socket handler's ctx does.
	HandlerTimeout time.Duration
}

// StormCapacity is the number of writes the store of DisconnectStorm serves at once, and the
// SaveQueue's Workers.
const StormCapacity = 4

// DisconnectStorm connects o.Users users (one socket each, one friend each), then disconnects them
// all at once against a store that serves StormCapacity writes at a time, 1 ms each, where the first
// offline write of every tenth user hangs past its timeout (25 ms) and that of every tenth user
// (another one) finds the store unreachable. Saves go through a presence.SaveQueue. It checks that every
// Disconnect returns in time with its user offline, every friend hears offline before the store has
// caught up, and after Close every user is stored offline with lastActive, written once (plus one
// retry per failed attempt), never more than StormCapacity writes at once and never two of one user.
func DisconnectStorm(t *testing.T, o StormOptions, newService StormFactory) {
	store := &SlowStore{Capacity: StormCapacity}
	queue := presence.NewSaveQueue(store, presence.SaveQueueOptions{Workers: StormCapacity,
		AttemptTimeout: 25 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	friends := &Friends{}
	rec := &realtime.Recorder{}
	prefix := fmt.Sprintf("storm%d-", time.Now().UnixNano())
	user := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
	index := map[string]int{}
	for i := 0; i < o.Users; i++ {
		friends.Set(user(i), user(i)+"-friend")
		index[user(i)] = i
	}
	store.Fail = func(userID, status string, attempt int) Failure {
		i, ok := index[userID]
		if !ok || status != presence.Offline || attempt > 1 {
			return Succeed
		}
		switch i % 10 {
		case 0:
			return Hang
		case 1:
			return Unavailable
		}
		return Succeed
	}
	s := newService(t, queue, friends, rec)
	ctx := context.Background()
	for i := 0; i < o.Users; i++ {
		if on, err := s.Connect(ctx, user(i), "s"); err != nil || !on {
			t.Fatalf("Connect %d = %v, %v", i, on, err)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	if err := queue.Flush(fctx); err != nil {
		t.Fatalf("online saves not written: %v", err)
	}
	rec.Reset()
	store.SetTook(time.Millisecond)

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	for i := 0; i < o.Users; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, o.HandlerTimeout)
			defer cancel()
			off, err := s.Disconnect(dctx, user(i), "s")
			if err != nil || !off {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("Disconnect %d = %v, %v", i, off, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if len(problems) > 0 {
		t.Fatalf("%d of %d disconnects failed, e.g. %s", len(problems), o.Users, problems[0])
	}
	heard := map[string]bool{}
	for _, e := range rec.Events() {
		if p, ok := e.Args[0].(presence.StatusPayload); ok && e.Event == presence.StatusEvent &&
			p.Status == presence.Offline && e.Room == realtime.UserRoom(p.UserID+"-friend") {
			heard[p.UserID] = true
		}
	}
	if len(heard) != o.Users {
		t.Fatalf("friends heard %d of %d users go offline", len(heard), o.Users)
	}
	t.Logf("%d disconnects returned in %v with %d saves still pending", o.Users, took, queue.Pending())

	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	if err := queue.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := 0; i < o.Users; i++ {
		st, at := store.Saved(user(i))
		if st != presence.Offline || at.Before(start.Add(-time.Second)) {
			t.Fatalf("user %d stored %q, lastActive %v: want offline with lastActive of the storm", i, st, at)
		}
	}
	attempts, failed, most, overlapped := store.Stats(presence.Offline)
	// Every user needs one successful write and every failed attempt is followed by one more: so
	// attempts = users + failures. Failures are at least the injected ones (users i%10 == 0 hang,
	// i%10 == 1 find the store unreachable); a very busy machine may add a few timeouts of its own.
	injected := (o.Users+9)/10 + (o.Users+8)/10
	if failed < injected || attempts != o.Users+failed {
		t.Fatalf("offline writes: %d attempts, %d failed; want %d users + the failures, at least %d failures",
			attempts, failed, o.Users, injected)
	}
	if most > StormCapacity || overlapped {
		t.Fatalf("%d writes at once (bound %d), two writes of one user at once: %v", most, StormCapacity, overlapped)
	}
}
