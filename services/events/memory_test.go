package events

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestBus(t *testing.T, opts MemoryOptions) *Memory {
	t.Helper()
	b := NewMemory(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func mustEvent(t *testing.T, name string, data any) Event {
	t.Helper()
	e, err := New(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPublishDeliversInOrderWithStamp(t *testing.T) {
	b := newTestBus(t, MemoryOptions{Origin: "node-a"})
	got := make(chan Event, 100)
	b.Subscribe(FriendshipRequested, Handler{Name: "rec", Handle: func(_ context.Context, e Event) error {
		got <- e
		return nil
	}})
	for i := 0; i < 50; i++ {
		if err := b.Publish(context.Background(), mustEvent(t, FriendshipRequested, map[string]int{"n": i})); err != nil {
			t.Fatal(err)
		}
	}
	// An event of another name is not delivered.
	if err := b.Publish(context.Background(), mustEvent(t, UserRegistered, nil)); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := 0; i < 50; i++ {
		select {
		case e := <-got:
			var d struct{ N int }
			if err := e.Decode(&d); err != nil {
				t.Fatal(err)
			}
			if d.N != i {
				t.Fatalf("event %d delivered as %d: out of order", i, d.N)
			}
			if e.Origin != "node-a" || e.ID == "" || e.At.IsZero() || e.Name != FriendshipRequested {
				t.Fatalf("event not stamped: %+v", e)
			}
			if ids[e.ID] {
				t.Fatalf("duplicate id %s", e.ID)
			}
			ids[e.ID] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered", i)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("unexpected delivery of %s", e.Name)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	b := newTestBus(t, MemoryOptions{})
	release := make(chan struct{})
	b.Subscribe("x", Handler{Name: "slow", Handle: func(context.Context, Event) error { <-release; return nil }})
	fast := make(chan struct{}, 1)
	b.Subscribe("x", Handler{Name: "fast", Handle: func(context.Context, Event) error { fast <- struct{}{}; return nil }})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fast:
	case <-time.After(5 * time.Second):
		t.Fatal("fast subscriber waited for the slow one")
	}
	close(release)
}

func TestPanicAndErrorAreLoggedAndDeliveryContinues(t *testing.T) {
	var buf safeBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	b := newTestBus(t, MemoryOptions{Logger: log})
	got := make(chan int, 3)
	n := 0
	b.Subscribe("x", Handler{Name: "flaky", Handle: func(context.Context, Event) error {
		n++
		got <- n
		switch n {
		case 1:
			panic("boom")
		case 2:
			return errors.New("bad thing")
		}
		return nil
	}})
	for i := 0; i < 3; i++ {
		if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		select {
		case v := <-got:
			if v != i {
				t.Fatalf("got %d want %d", v, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d missing after a panic", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"event handler panicked", "boom", "event handler failed", "bad thing", "handler=flaky"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestFullQueueDoesNotBlockPublisherForever(t *testing.T) {
	b := newTestBus(t, MemoryOptions{QueueSize: 2, EnqueueTimeout: 50 * time.Millisecond})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	handled := make(chan struct{}, 10)
	b.Subscribe("x", Handler{Name: "stuck", Handle: func(context.Context, Event) error {
		started <- struct{}{}
		<-release
		handled <- struct{}{}
		return nil
	}})
	// One in the handler, two in the queue: the fourth cannot be queued.
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	<-started
	for i := 0; i < 2; i++ {
		if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	start := time.Now()
	err := b.Publish(context.Background(), Event{Name: "x"})
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("publish on full queue: %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publisher blocked %v", d)
	}
	// A cancelled ctx ends the wait too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(ctx, Event{Name: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with cancelled ctx: %v", err)
	}
	close(release)
	for i := 0; i < 3; i++ {
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("queued events were not handled")
		}
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	b := newTestBus(t, MemoryOptions{})
	got := make(chan struct{}, 10)
	unsub := b.Subscribe("x", Handler{Name: "h", Handle: func(context.Context, Event) error { got <- struct{}{}; return nil }})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
	unsub()
	unsub() // idempotent
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		t.Fatal("delivered after unsubscribe")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestCloseDrainsQueuedEventsThenRefuses(t *testing.T) {
	b := NewMemory(MemoryOptions{})
	var mu sync.Mutex
	count := 0
	b.Subscribe("x", Handler{Name: "h", Handle: func(context.Context, Event) error {
		time.Sleep(time.Millisecond)
		mu.Lock()
		count++
		mu.Unlock()
		return nil
	}})
	for i := 0; i < 20; i++ {
		if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 20 {
		t.Fatalf("handled %d of 20 queued events before Close returned", count)
	}
	if err := b.Publish(context.Background(), Event{Name: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

func TestCloseGivesUpOnStuckHandlerAndCancelsIt(t *testing.T) {
	b := NewMemory(MemoryOptions{})
	cancelled := make(chan struct{})
	started := make(chan struct{})
	b.Subscribe("x", Handler{Name: "stuck", Handle: func(ctx context.Context, _ Event) error {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("handler ctx not cancelled after Close gave up")
	}
}

func TestHandlerTimeout(t *testing.T) {
	b := newTestBus(t, MemoryOptions{HandlerTimeout: 20 * time.Millisecond})
	res := make(chan error, 1)
	b.Subscribe("x", Handler{Name: "h", Handle: func(ctx context.Context, _ Event) error {
		<-ctx.Done()
		res <- ctx.Err()
		return nil
	}})
	if err := b.Publish(context.Background(), Event{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handler ctx ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler timeout not applied")
	}
}

func TestSubscribeValidatesHandler(t *testing.T) {
	b := newTestBus(t, MemoryOptions{})
	defer func() {
		if recover() == nil {
			t.Fatal("Subscribe accepted a handler without a name")
		}
	}()
	b.Subscribe("x", Handler{Handle: func(context.Context, Event) error { return nil }})
}

func TestPublishRejectsEmptyName(t *testing.T) {
	b := newTestBus(t, MemoryOptions{})
	if err := b.Publish(context.Background(), Event{}); err == nil {
		t.Fatal("empty event name accepted")
	}
	if _, err := New("", nil); err == nil {
		t.Fatal("New accepted an empty name")
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
