// Package ratelimit limits how often a key (usually a user id) may do something: at most Limit
// actions in any sliding Window. It is in-process: on several nodes each node counts on its own
// (a user spread over two nodes may get up to Limit per node), which is enough to stop a runaway
// client; a cluster-wide limiter can implement Limiter on Redis later.
package ratelimit

import (
	"fmt"
	"sync"
	"time"
)

// Limiter decides whether one more action of key is allowed now.
type Limiter interface {
	// Allow records the action and reports true when it is within the limit. When it is not, nothing
	// is recorded and retryAfter says how long until the oldest counted action leaves the window.
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// Window is a sliding-window-log limiter: it keeps the times of the last Limit allowed actions per key.
// Memory is Limit timestamps per active key; keys idle for a whole window are dropped.
type Window struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]*log
	lastSweep time.Time
}

// log is a ring of the times of the last allowed actions of one key (oldest at head).
type log struct {
	times []time.Time
	head  int
	n     int
}

// New returns a limiter allowing limit actions per window and key. limit <= 0 or window <= 0 panics:
// a limiter that allows nothing or everything is a configuration error.
func New(limit int, window time.Duration) *Window {
	return NewWithClock(limit, window, time.Now)
}

// NewWithClock is New with an explicit clock (tests).
func NewWithClock(limit int, window time.Duration, now func() time.Time) *Window {
	if limit <= 0 || window <= 0 {
		panic(fmt.Sprintf("ratelimit: invalid limit %d per %s", limit, window))
	}
	return &Window{limit: limit, window: window, now: now, keys: map[string]*log{}}
}

// Limit and Period describe the configured rate.
func (w *Window) Limit() int            { return w.limit }
func (w *Window) Period() time.Duration { return w.window }

// Allow implements Limiter.
func (w *Window) Allow(key string) (bool, time.Duration) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep(now)
	l := w.keys[key]
	if l == nil {
		l = &log{times: make([]time.Time, w.limit)}
		w.keys[key] = l
	}
	// Forget actions that left the window.
	for l.n > 0 && now.Sub(l.times[l.head]) >= w.window {
		l.head = (l.head + 1) % w.limit
		l.n--
	}
	if l.n == w.limit {
		return false, w.window - now.Sub(l.times[l.head])
	}
	l.times[(l.head+l.n)%w.limit] = now
	l.n++
	return true, 0
}

// sweep drops keys whose newest action is older than the window, at most once per window.
func (w *Window) sweep(now time.Time) {
	if now.Sub(w.lastSweep) < w.window {
		return
	}
	w.lastSweep = now
	for k, l := range w.keys {
		if l.n == 0 || now.Sub(l.times[(l.head+l.n-1)%w.limit]) >= w.window {
			delete(w.keys, k)
		}
	}
}

// Keys is the number of keys currently tracked (tests, metrics).
func (w *Window) Keys() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.keys)
}
