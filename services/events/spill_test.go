package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seen counts the handled event ids.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]int{}
	}
	s.ids[id]++
}

func (s *seen) count() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.ids {
		distinct++
		total += n
	}
	return
}

// A burst larger than the queue: nothing is refused or lost, the overflow waits in the journal and
// runs once the queue has room. (Without a journal the same burst fails with ErrQueueFull: see
// TestFullQueueDoesNotBlockPublisherForever.)
func TestFullQueueSpillsToJournalAndReplays(t *testing.T) {
	j := NewMemoryJournal()
	b := newTestBus(t, MemoryOptions{QueueSize: 4, EnqueueTimeout: 10 * time.Millisecond, Journal: j,
		JournalPoll: 20 * time.Millisecond})
	release := make(chan struct{})
	var got seen
	b.Subscribe("x", Handler{Name: "once", Scope: ClusterOnce, Handle: func(ctx context.Context, e Event) error {
		<-release
		got.add(e.ID)
		return nil
	}})
	const n = 100
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing the burst took %v: it waited instead of journaling", d)
	}
	if st := b.Stats(); st.Spilled < n-5 || st.Dropped != 0 {
		t.Fatalf("stats after the burst %+v: want about %d spilled, none dropped", st, n-5)
	}
	close(release)
	waitFor(t, "every event handled", func() bool { d, _ := got.count(); return d == n })
	waitFor(t, "the journal emptied", func() bool { return j.Len() == 0 })
	if d, total := got.count(); d != n || total != n {
		t.Fatalf("handled %d distinct, %d in all; want %d once each", d, total, n)
	}
	if st := b.Stats(); st.Replayed != st.Spilled {
		t.Fatalf("stats %+v: every spilled delivery should be replayed", st)
	}
}

// Local handlers keep the old behaviour with a journal too: their effect is this process's.
func TestLocalHandlerIsNotJournaled(t *testing.T) {
	j := NewMemoryJournal()
	b := newTestBus(t, MemoryOptions{QueueSize: 1, EnqueueTimeout: 20 * time.Millisecond, Journal: j})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	b.Subscribe("x", Handler{Name: "local", Handle: func(context.Context, Event) error {
		started <- struct{}{}
		<-release
		return nil
	}})
	defer close(release)
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), Event{Name: "x"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full local queue: %v, want ErrQueueFull", err)
	}
	if j.Len() != 0 {
		t.Fatalf("a local delivery was journaled")
	}
}

// A failing handler is tried again from the journal with a growing delay until it succeeds.
func TestFailedHandlerIsRetriedFromTheJournal(t *testing.T) {
	j := NewMemoryJournal()
	b := newTestBus(t, MemoryOptions{Journal: j, RetryDelay: 10 * time.Millisecond, JournalPoll: 10 * time.Millisecond})
	var mu sync.Mutex
	var tries []time.Time
	b.Subscribe("x", Handler{Name: "flaky", Scope: ClusterOnce, Handle: func(context.Context, Event) error {
		mu.Lock()
		defer mu.Unlock()
		tries = append(tries, time.Now())
		if len(tries) < 4 {
			return errors.New("store unreachable")
		}
		return nil
	}})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fourth try", func() bool { mu.Lock(); defer mu.Unlock(); return len(tries) == 4 })
	waitFor(t, "the journal emptied", func() bool { return j.Len() == 0 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(tries) != 4 {
		t.Fatalf("%d tries; want 4 (no retry after the success)", len(tries))
	}
	// Delays 10, 20, 40 ms (the poll adds up to 10 ms + 50 ms of batching after a wake).
	for i, want := range []time.Duration{10, 20, 40} {
		if gap := tries[i+1].Sub(tries[i]); gap < want*time.Millisecond {
			t.Fatalf("retry %d came after %v, want at least %v", i+1, gap, want*time.Millisecond)
		}
	}
	if st := b.Stats(); st.Retried != 3 || st.GaveUp != 0 {
		t.Fatalf("stats %+v: want 3 retries", st)
	}
}

func TestJournaledDeliveryGivesUpAfterMaxAttempts(t *testing.T) {
	j := NewMemoryJournal()
	b := newTestBus(t, MemoryOptions{Journal: j, RetryDelay: time.Millisecond, JournalPoll: 5 * time.Millisecond, MaxAttempts: 3})
	var mu sync.Mutex
	tries := 0
	b.Subscribe("x", Handler{Name: "broken", Scope: ClusterOnce, Handle: func(context.Context, Event) error {
		mu.Lock()
		tries++
		mu.Unlock()
		return errors.New("permanent")
	}})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "giving up", func() bool { return b.Stats().GaveUp == 1 })
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if tries != 3 || j.Len() != 0 {
		t.Fatalf("%d tries, %d entries left; want 3 tries and an empty journal", tries, j.Len())
	}
}

// A shutdown that runs out of time journals what is still queued or running, and the next
// process (a new bus on the same journal) runs it: SIGTERM under load loses nothing.
func TestCloseOutOfTimeJournalsTheRestForTheNextProcess(t *testing.T) {
	j := NewMemoryJournal()
	b := NewMemory(MemoryOptions{Journal: j})
	started := make(chan struct{}, 100)
	b.Subscribe("x", Handler{Name: "slow", Scope: ClusterOnce, Handle: func(ctx context.Context, _ Event) error {
		started <- struct{}{}
		<-ctx.Done() // slower than the shutdown
		return ctx.Err()
	}})
	var ids []string
	for i := 0; i < 20; i++ {
		e := Event{Name: "x", ID: fmt.Sprintf("e%02d", i)}
		ids = append(ids, e.ID)
		if err := b.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if j.Len() != 20 {
		t.Fatalf("%d of 20 deliveries journaled at close", j.Len())
	}

	next := newTestBus(t, MemoryOptions{Journal: j, JournalPoll: 10 * time.Millisecond})
	var got seen
	next.Subscribe("x", Handler{Name: "slow", Scope: ClusterOnce, Handle: func(_ context.Context, e Event) error {
		got.add(e.ID)
		return nil
	}})
	// The one that was running waits out its retry delay (1 s); the queued ones are due at once.
	waitFor(t, "the next process to run all 20", func() bool { d, _ := got.count(); return d == 20 })
	waitFor(t, "the journal emptied", func() bool { return j.Len() == 0 })
	for _, id := range ids {
		got.mu.Lock()
		n := got.ids[id]
		got.mu.Unlock()
		if n != 1 {
			t.Fatalf("%s ran %d times", id, n)
		}
	}
}

// Journal entries this process took (from an earlier process) and still had queued when Close ran
// out of time are handed back at once, not held for their lease: the next process runs them
// right after its start (the soak's restart checks the journal a few seconds later).
func TestCloseOutOfTimeHandsBackTakenEntries(t *testing.T) {
	j := NewMemoryJournal()
	var entries []JournalEntry
	for i := 0; i < 10; i++ {
		entries = append(entries, JournalEntry{Handler: "slow", Event: Event{Name: "x", ID: fmt.Sprintf("old%02d", i)}})
	}
	if err := j.Save(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	b := NewMemory(MemoryOptions{Journal: j, JournalPoll: 10 * time.Millisecond})
	started := make(chan struct{}, 100)
	b.Subscribe("x", Handler{Name: "slow", Scope: ClusterOnce, Handle: func(ctx context.Context, _ Event) error {
		started <- struct{}{}
		<-ctx.Done() // slower than the shutdown: the other nine wait in the queue
		return ctx.Err()
	}})
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	// The nine queued ones are due now; the running one failed and waits out its retry delay (1 s).
	due, err := j.Take(context.Background(), "slow", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 9 || j.Len() != 10 {
		t.Fatalf("%d entries due right after close (want the 9 queued ones), %d journaled (want 10)", len(due), j.Len())
	}
}

// A journal that fails on Save: the burst falls back to waiting, then reports ErrQueueFull and counts the loss.
func TestJournalDownFallsBackToWaiting(t *testing.T) {
	b := newTestBus(t, MemoryOptions{QueueSize: 1, EnqueueTimeout: 20 * time.Millisecond, Journal: failingJournal{}})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	b.Subscribe("x", Handler{Name: "once", Scope: ClusterOnce, Handle: func(context.Context, Event) error {
		started <- struct{}{}
		<-release
		return nil
	}})
	defer close(release)
	_ = b.Publish(context.Background(), Event{Name: "x"})
	<-started
	_ = b.Publish(context.Background(), Event{Name: "x"})
	if err := b.Publish(context.Background(), Event{Name: "x"}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("publish with a full queue and a failing journal: %v", err)
	}
	if st := b.Stats(); st.Dropped != 1 || st.Spilled != 0 {
		t.Fatalf("stats %+v: want 1 dropped", st)
	}
}

type failingJournal struct{}

var errJournal = errors.New("journal down")

func (failingJournal) Save(context.Context, []JournalEntry) error { return errJournal }
func (failingJournal) Take(context.Context, string, int, time.Duration) ([]JournalEntry, error) {
	return nil, errJournal
}
func (failingJournal) Release(context.Context, string, string, time.Time, string) error {
	return errJournal
}
func (failingJournal) Done(context.Context, string, string) error { return errJournal }
