package admission_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/services/admission"
	"github.com/maoga/maoga/services/errs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func acquire(t *testing.T, l *admission.Limiter) *admission.Ticket {
	t.Helper()
	tk, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("acquire (limit %d, in flight %d): %v", l.Limit(), l.InFlight(), err)
	}
	return tk
}

func acquireN(t *testing.T, l *admission.Limiter, n int) []*admission.Ticket {
	t.Helper()
	out := make([]*admission.Ticket, n)
	for i := range out {
		out[i] = acquire(t, l)
	}
	return out
}

func doneAll(ts []*admission.Ticket) {
	for _, tk := range ts {
		tk.Done()
	}
}

// TestLimitShrinksUnderSlowCompletions: windows whose average latency is over the target multiply
// the limit by 0.9 — by target/average when that is lower, at most halving it — once per window (a
// batch admitted together counts once, not once per request), down to Min and not below.
func TestLimitShrinksUnderSlowCompletions(t *testing.T) {
	clk := newClock()
	l := admission.New(admission.Options{Logger: quiet, Max: 40, Min: 3, Initial: 20, TargetLatency: 300 * time.Millisecond,
		QueueWait: -1, Now: clk.Now})
	batch := acquireN(t, l, 20)
	if _, err := l.Acquire(context.Background()); !errs.Is(err, errs.CodeServiceUnavailable) {
		t.Fatalf("21st request with limit 20: %v", err)
	}
	clk.Add(320 * time.Millisecond) // every one of them a little slower than the target
	doneAll(batch)
	if got := l.Limit(); got != 18 { // one window of 20: 20 × 0.9 once, not 20 × 0.9^20
		t.Fatalf("limit after one slow window: %d, want 18", got)
	}
	// Far slower than the target: in proportion (300/500 = 0.6).
	clk.Add(time.Millisecond)
	batch = acquireN(t, l, 18)
	clk.Add(500 * time.Millisecond)
	doneAll(batch)
	if got := l.Limit(); got != 10 { // 18 × 0.6 = 10.8
		t.Fatalf("limit after a window averaging 500 ms: %d, want 10", got)
	}
	// Each later window of slow requests lowers it again, to the floor.
	limits := []int{l.Limit()}
	for i := 0; i < 30; i++ {
		clk.Add(time.Millisecond)
		n := l.Limit()
		b := acquireN(t, l, n)
		clk.Add(time.Second)
		doneAll(b)
		limits = append(limits, l.Limit())
		if got := l.Limit(); n > 6 && got < n/2 {
			t.Fatalf("limit %d → %d: more than halved", n, got)
		}
	}
	t.Logf("limit per slow window: %v", limits)
	for i := 1; i < len(limits); i++ {
		if limits[i] > limits[i-1] {
			t.Fatalf("limit grew under slow completions: %v", limits)
		}
	}
	if got := l.Limit(); got != 3 {
		t.Fatalf("limit after 30 slow windows: %d, want the floor 3", got)
	}
	// At the floor, Min requests are still admitted and the next is refused.
	b := acquireN(t, l, 3)
	if _, err := l.Acquire(context.Background()); err != admission.ErrBusy {
		t.Fatalf("request past the floor: %v", err)
	}
	doneAll(b)
	if l.InFlight() != 0 {
		t.Fatalf("in flight %d after every Done", l.InFlight())
	}
}

// TestLimitGrowsBack: fast windows while the limit is in use add one each (1/limit per completion),
// up to Max; a lightly loaded server (less than half the limit in flight) neither grows nor shrinks
// it, even for a slow request.
func TestLimitGrowsBack(t *testing.T) {
	clk := newClock()
	l := admission.New(admission.Options{Logger: quiet, Max: 12, Min: 2, Initial: 4, TargetLatency: 300 * time.Millisecond,
		QueueWait: -1, Now: clk.Now})
	// Idle: one request at a time out of 4 does not grow the limit.
	for i := 0; i < 50; i++ {
		tk := acquire(t, l)
		clk.Add(10 * time.Millisecond)
		tk.Done()
	}
	if got := l.Limit(); got != 4 {
		t.Fatalf("limit after idle traffic: %d, want 4", got)
	}
	for i := 0; i < 20; i++ {
		tk := acquire(t, l)
		clk.Add(2 * time.Second)
		tk.Done()
	}
	if got := l.Limit(); got != 4 {
		t.Fatalf("limit after slow requests one at a time: %d, want 4", got)
	}
	// Busy and fast: with the limit in use, each window of fast completions (at least 10, or the
	// limit) adds one.
	held := acquireN(t, l, l.Limit())
	var limits []int
	for i := 0; i < 200; i++ {
		held = rolling(t, l, clk, held, 5*time.Millisecond)
		limits = append(limits, l.Limit())
	}
	t.Logf("limit after 10, 20, 50, 100, 200 fast completions: %d %d %d %d %d", limits[9], limits[19], limits[49], limits[99], limits[199])
	for i := 1; i < len(limits); i++ {
		if limits[i] < limits[i-1] {
			t.Fatalf("limit shrank under fast completions at %d: %v", i, limits)
		}
	}
	if limits[9] < 5 || limits[9] > 7 {
		t.Fatalf("limit after 10 fast completions from 4: %d, want 5..7", limits[9])
	}
	if got := l.Limit(); got != 12 {
		t.Fatalf("limit after 200 fast completions: %d, want Max 12", got)
	}
	if _, err := l.Acquire(context.Background()); err != admission.ErrBusy {
		t.Fatalf("request past Max: %v", err)
	}
	// Slow steady traffic brings it down, fast traffic brings it back.
	var slow []int
	for i := 0; i < 30; i++ {
		held = rolling(t, l, clk, held, 400*time.Millisecond)
		slow = append(slow, l.Limit())
	}
	t.Logf("limit under slow traffic: %v", slow)
	for i := 1; i < len(slow); i++ {
		if slow[i] > slow[i-1] {
			t.Fatalf("limit grew under slow traffic: %v", slow)
		}
	}
	if got := l.Limit(); got > 5 || got < 2 {
		t.Fatalf("limit after 30 slow completions from 12: %d, want 2..5", got)
	}
	for i := 0; i < 300; i++ {
		held = rolling(t, l, clk, held, time.Millisecond)
	}
	doneAll(held)
	if got := l.Limit(); got != 12 {
		t.Fatalf("limit after fast completions again: %d, want 12", got)
	}
}

// rolling completes the oldest of held after step and tops held up to the limit again: steady
// traffic that keeps the limit in use.
func rolling(t *testing.T, l *admission.Limiter, clk *clock, held []*admission.Ticket, step time.Duration) []*admission.Ticket {
	t.Helper()
	clk.Add(step)
	held[0].Done()
	held = held[1:]
	for len(held) < l.Limit() {
		held = append(held, acquire(t, l))
	}
	return held
}

// TestQueueWaitBound: with every slot taken, a request waits QueueWait and is refused with
// SERVICE_UNAVAILABLE "server busy, retry later" — not later, not sooner.
func TestQueueWaitBound(t *testing.T) {
	wait := 150 * time.Millisecond
	l := admission.New(admission.Options{Logger: quiet, Max: 2, Min: 2, Initial: 2, QueueWait: wait})
	held := acquireN(t, l, 2)
	start := time.Now()
	tk, err := l.Acquire(context.Background())
	took := time.Since(start)
	if tk != nil || err == nil {
		t.Fatal("admitted past the limit")
	}
	e, ok := errs.As(err)
	if !ok || e.Code != errs.CodeServiceUnavailable || e.Message != "server busy, retry later" || e.Status != 503 {
		t.Fatalf("refusal %v", err)
	}
	t.Logf("refused after %v (queue wait %v)", took, wait)
	if took < wait || took > wait+time.Second {
		t.Fatalf("refused after %v, want about the queue wait %v", took, wait)
	}
	if l.Refused() != 1 || l.Queued() != 0 || l.InFlight() != 2 {
		t.Fatalf("refused %d queued %d in flight %d", l.Refused(), l.Queued(), l.InFlight())
	}
	doneAll(held)

	// No queue: refused at once.
	l = admission.New(admission.Options{Logger: quiet, Max: 1, Min: 1, QueueWait: -1})
	held = acquireN(t, l, 1)
	start = time.Now()
	if _, err := l.Acquire(context.Background()); err != admission.ErrBusy {
		t.Fatalf("no queue: %v", err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("no queue: refused after %v", took)
	}
	doneAll(held)
}

// TestQueuedRequestsGetFreedSlotsInOrder: a waiting request takes the slot a Done frees, oldest
// waiter first; a caller that goes away while waiting leaves the queue and is not counted refused.
func TestQueuedRequestsGetFreedSlotsInOrder(t *testing.T) {
	l := admission.New(admission.Options{Logger: quiet, Max: 1, Min: 1, QueueWait: 5 * time.Second})
	held := acquire(t, l)
	type result struct {
		i   int
		tk  *admission.Ticket
		err error
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func(i int) {
			tk, err := l.Acquire(context.Background())
			results <- result{i, tk, err}
		}(i)
		waitFor(t, func() bool { return l.Queued() == i+1 })
	}
	start := time.Now()
	held.Done()
	r := <-results
	if r.err != nil || r.i != 0 {
		t.Fatalf("first freed slot went to waiter %d (%v), want 0", r.i, r.err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("handed over after %v", took)
	}
	if l.InFlight() != 1 || l.Queued() != 1 {
		t.Fatalf("in flight %d queued %d", l.InFlight(), l.Queued())
	}
	r.tk.Done()
	r = <-results
	if r.err != nil || r.i != 1 {
		t.Fatalf("second waiter: %d %v", r.i, r.err)
	}
	r.tk.Done()
	r.tk.Done() // a second Done frees nothing more
	if l.InFlight() != 0 {
		t.Fatalf("in flight %d", l.InFlight())
	}

	held = acquire(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := l.Acquire(ctx); errc <- err }()
	waitFor(t, func() bool { return l.Queued() == 1 })
	cancel()
	if err := <-errc; err != admission.ErrBusy {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if l.Queued() != 0 || l.Refused() != 0 {
		t.Fatalf("after a cancelled wait: queued %d refused %d", l.Queued(), l.Refused())
	}
	held.Done()
}

// TestNeverMoreInFlightThanTheLimit: many goroutines through a fixed limit of 5; at no moment do
// more than 5 run, the rest are admitted as slots free or refused after the queue wait.
func TestNeverMoreInFlightThanTheLimit(t *testing.T) {
	l := admission.New(admission.Options{Logger: quiet, Max: 5, Min: 5, Initial: 5, QueueWait: 20 * time.Millisecond})
	var running, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				tk, err := l.Acquire(context.Background())
				if err != nil {
					refused.Add(1)
					continue
				}
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond) // 64 callers, 5 slots of 5 ms: the queue outgrows 20 ms
				running.Add(-1)
				admitted.Add(1)
				tk.Done()
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d, refused %d, peak in flight %d", admitted.Load(), refused.Load(), peak.Load())
	if peak.Load() > 5 {
		t.Fatalf("%d in flight at once, limit 5", peak.Load())
	}
	if refused.Load() == 0 || uint64(refused.Load()) != l.Refused() || admitted.Load() == 0 {
		t.Fatalf("admitted %d refused %d (limiter counted %d)", admitted.Load(), refused.Load(), l.Refused())
	}
	if l.InFlight() != 0 || l.Queued() != 0 {
		t.Fatalf("in flight %d queued %d at the end", l.InFlight(), l.Queued())
	}
}

// TestOverloadLoggedOncePerEpisode: a hundred refusals are one WARN line; the first request after
// QuietPeriod without refusals logs one INFO line with the count; the next overload logs again.
func TestOverloadLoggedOncePerEpisode(t *testing.T) {
	clk := newClock()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	l := admission.New(admission.Options{Max: 1, Min: 1, QueueWait: -1, QuietPeriod: 5 * time.Second,
		Logger: log, Now: clk.Now})
	held := acquire(t, l)
	for i := 0; i < 100; i++ {
		if _, err := l.Acquire(context.Background()); err == nil {
			t.Fatal("admitted past the limit")
		}
		clk.Add(10 * time.Millisecond)
	}
	held.Done()
	clk.Add(4 * time.Second) // within the quiet period: still the same episode
	acquire(t, l).Done()
	clk.Add(2 * time.Second)
	acquire(t, l).Done() // the quiet period has passed: the episode is over
	held = acquire(t, l)
	if _, err := l.Acquire(context.Background()); err == nil {
		t.Fatal("admitted past the limit")
	}
	held.Done()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	warns, infos := strings.Count(out, "level=WARN"), strings.Count(out, "level=INFO")
	if warns != 2 || infos != 1 || !strings.Contains(out, "refused=100") {
		t.Fatalf("want 2 WARN and 1 INFO (refused=100), got:\n%s", out)
	}
	if l.Refused() != 101 {
		t.Fatalf("refused %d, want 101", l.Refused())
	}
}

// TestNilLimiterAdmitsEverything: admission off.
func TestNilLimiterAdmitsEverything(t *testing.T) {
	var l *admission.Limiter
	tk, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tk.Done()
	if l.Limit() != 0 || l.InFlight() != 0 || l.Refused() != 0 {
		t.Fatal("nil limiter reports numbers")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// The gate refuses at once with its own error, takes no slot and is no overload.
func TestGateRefusesAtOnce(t *testing.T) {
	down := errors.New("store down")
	var closed atomic.Bool
	l := admission.New(admission.Options{Max: 2, Min: 1, Initial: 1, QueueWait: time.Second, Logger: quiet,
		Gate: func() error {
			if closed.Load() {
				return down
			}
			return nil
		}})
	held := acquire(t, l) // the only slot: without the gate the next call would wait QueueWait
	closed.Store(true)
	start := time.Now()
	if _, err := l.Acquire(context.Background()); !errors.Is(err, down) {
		t.Fatalf("gate closed: %v, want its error", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("refused after %v, want at once", d)
	}
	if l.InFlight() != 1 || l.Refused() != 0 {
		t.Fatalf("in flight %d, refused %d: the gate took a slot or counted as overload", l.InFlight(), l.Refused())
	}
	held.Done()
	closed.Store(false)
	acquire(t, l).Done()
}
