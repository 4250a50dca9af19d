package ratelimit

import (
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestCrossingTheLimit(t *testing.T) {
	c := newClock()
	w := NewWithClock(10, 10*time.Second, c.now)
	for i := 0; i < 10; i++ {
		if ok, _ := w.Allow("u1"); !ok {
			t.Fatalf("action %d refused within the limit", i+1)
		}
		c.add(100 * time.Millisecond)
	}
	ok, retry := w.Allow("u1")
	if ok {
		t.Fatal("11th action within 10s allowed")
	}
	// The first action was at t0, now is t0+1s: it leaves the window in 9s.
	if retry != 9*time.Second {
		t.Fatalf("retryAfter = %s, want 9s", retry)
	}
	// Another key is independent.
	if ok, _ := w.Allow("u2"); !ok {
		t.Fatal("other key refused")
	}
	// A refused action is not counted: once the oldest leaves, exactly one more fits.
	c.add(9 * time.Second)
	if ok, _ := w.Allow("u1"); !ok {
		t.Fatal("refused after the oldest action left the window")
	}
	if ok, _ := w.Allow("u1"); ok {
		t.Fatal("second action allowed while only one slot freed")
	}
	c.add(10 * time.Second)
	for i := 0; i < 10; i++ {
		if ok, _ := w.Allow("u1"); !ok {
			t.Fatalf("after a full idle window, action %d refused", i+1)
		}
	}
}

func TestIdleKeysAreDropped(t *testing.T) {
	c := newClock()
	w := NewWithClock(2, time.Second, c.now)
	for _, k := range []string{"a", "b", "c"} {
		w.Allow(k)
	}
	if w.Keys() != 3 {
		t.Fatalf("keys = %d", w.Keys())
	}
	c.add(2 * time.Second)
	w.Allow("d")
	if w.Keys() != 1 {
		t.Fatalf("idle keys kept: %d", w.Keys())
	}
}

func TestConcurrentAllowNeverExceeds(t *testing.T) {
	w := New(50, time.Hour)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if ok, _ := w.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("allowed %d of 320, want exactly 50", allowed)
	}
}

func TestInvalidConfigPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(0, 1s) did not panic")
		}
	}()
	New(0, time.Second)
}
