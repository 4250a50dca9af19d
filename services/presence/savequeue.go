package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/services/errs"
)

// SaveQueue is a UserStore that writes behind: SavePresence records the change and returns at once,
// and at most Workers goroutines write the changes to the store underneath, at the store's pace.
// Local and redispresence take it as their Users, so a storm of disconnects (2000 clients leaving
// together) tells every friend at once and does not race 2000 concurrent writes against a timeout.
//
//   - Coalescing: one pending write per user, holding the latest status and the latest non-zero
//     lastActive: changes made while the user waits in line merge into that one write (a storm of
//     N users leaving is at most N writes). A user's writes never overlap: a change made while the
//     user's write runs is written after it, so the store ends with the user's latest change.
//   - Retries: a write that fails because the store is unreachable or too slow (errs.IsUnavailable,
//     or the attempt's own AttemptTimeout ran out) is retried with backoff, RetryMin doubling up to
//     RetryMax, until it succeeds or Close gives up. Any other failure (the user was deleted) is
//     logged and the change dropped.
//   - Bounded: at most MaxPending users wait to be written. SavePresence for a user not yet waiting
//     blocks while the queue is full, until room frees or its ctx ends (ErrSaveQueueFull).
//   - Close writes what is pending, bounded by its ctx, and reports in its error what it could not.
//
// Workers run only while there is something to write.
type SaveQueue struct {
	store UserStore
	opts  SaveQueueOptions
	log   *slog.Logger

	base   context.Context // every write attempt's parent; cancelled when Close gives up
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]*pendingSave
	queue   []string      // users waiting for a worker, each at most once
	running int           // workers
	room    chan struct{} // closed when an entry leaves pending; created only when someone waits
	idle    chan struct{} // closed when pending is empty and no worker runs; created by Flush
	failing bool          // a timed-out attempt was logged; cleared (and logged) by the next success
	retries int           // attempts retried since the last success
	closing chan struct{} // closed by Close: SavePresence refuses
	stopped chan struct{} // closed when Close gives up: workers stop
	closed  bool
	wg      sync.WaitGroup
}

// SaveQueueOptions configure a SaveQueue; zero values take the defaults.
type SaveQueueOptions struct {
	// Workers bounds the concurrent writes (default 4).
	Workers int
	// MaxPending bounds the users waiting to be written (default 100000).
	MaxPending int
	// AttemptTimeout bounds one write attempt (default 10s); running out counts as the store being
	// too slow, and the write is retried.
	AttemptTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between retries (defaults 100ms and 2s).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

var (
	// ErrSaveQueueFull: MaxPending users wait already and no room freed before the ctx ended.
	ErrSaveQueueFull = errors.New("presence: save queue full")
	// ErrSaveQueueClosed: Close was called; nothing more is saved.
	ErrSaveQueueClosed = errors.New("presence: save queue closed")
)

type pendingSave struct {
	status     string
	lastActive time.Time
	queued     bool // in SaveQueue.queue
	inFlight   bool // a worker writes it now
	dirty      bool // changed while in flight: write again afterwards
}

// NewSaveQueue returns a SaveQueue writing to store.
func NewSaveQueue(store UserStore, opts SaveQueueOptions) *SaveQueue {
	if store == nil {
		panic("presence: NewSaveQueue needs a store")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 100000
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(2*time.Second, opts.RetryMin)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	return &SaveQueue{
		store: store, opts: opts, log: log.With("component", "presence"),
		base: base, cancel: cancel,
		pending: make(map[string]*pendingSave),
		closing: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// SavePresence implements UserStore: it queues the change and returns without waiting for the store.
// ctx bounds only the wait for room when the queue is full.
func (q *SaveQueue) SavePresence(ctx context.Context, userID, status string, lastActive time.Time) error {
	q.mu.Lock()
	for {
		if q.closed {
			q.mu.Unlock()
			return fmt.Errorf("%w: %s of %s not saved", ErrSaveQueueClosed, status, userID)
		}
		if q.pending[userID] != nil || len(q.pending) < q.opts.MaxPending {
			break
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-q.closing:
		case <-ctx.Done():
			return fmt.Errorf("%w (%d users waiting): %s of %s not saved: %w",
				ErrSaveQueueFull, q.opts.MaxPending, status, userID, ctx.Err())
		}
		q.mu.Lock()
	}
	e := q.pending[userID]
	if e == nil {
		e = &pendingSave{}
		q.pending[userID] = e
	}
	e.status = status
	if lastActive.After(e.lastActive) {
		e.lastActive = lastActive
	}
	if e.inFlight {
		e.dirty = true
	} else {
		q.enqueueLocked(userID, e)
	}
	q.mu.Unlock()
	return nil
}

// enqueueLocked puts a user in line (once) and starts a worker when one is free.
func (q *SaveQueue) enqueueLocked(userID string, e *pendingSave) {
	if !e.queued {
		e.queued = true
		q.queue = append(q.queue, userID)
	}
	if q.running < q.opts.Workers { // a worker that finds nothing left exits at once
		q.running++
		q.wg.Add(1)
		go q.work()
	}
}

// Pending is the number of users whose change is not written yet.
func (q *SaveQueue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Unsaved is userID's change not yet written (waiting or being written): its status and latest
// non-zero lastActive. Readers of the stored user overlay it, so that a profile read right after
// user:status offline already shows the lastActive written behind it (on this node).
func (q *SaveQueue) Unsaved(userID string) (status string, lastActive time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.pending[userID]
	if e == nil {
		return "", time.Time{}, false
	}
	return e.status, e.lastActive, true
}

func (q *SaveQueue) work() {
	defer q.wg.Done()
	backoff := time.Duration(0)
	for {
		q.mu.Lock()
		if len(q.queue) == 0 || isClosed(q.stopped) {
			q.running--
			q.signalIdleLocked()
			q.mu.Unlock()
			return
		}
		userID := q.queue[0]
		q.queue[0] = ""
		q.queue = q.queue[1:]
		if len(q.queue) == 0 {
			q.queue = nil
		}
		e := q.pending[userID]
		e.queued, e.inFlight, e.dirty = false, true, false
		status, lastActive := e.status, e.lastActive
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(q.base, q.opts.AttemptTimeout)
		err := q.store.SavePresence(ctx, userID, status, lastActive)
		retry := err != nil && (errs.IsUnavailable(err) || ctx.Err() != nil)
		cancel()

		q.mu.Lock()
		e.inFlight = false
		switch {
		case err != nil && q.base.Err() != nil:
			// Close gave up and cancelled the attempt: the change stays pending, Close reports it.
			q.mu.Unlock()
			continue
		case err == nil || !retry:
			if err == nil && q.retries > 0 {
				if q.failing {
					q.log.Info("presence: saves succeed again", "retriedAttempts", q.retries)
				}
				q.failing, q.retries = false, 0
			}
			if err != nil {
				q.log.Error("presence: save failed; change dropped", "userId", userID, "status", status, "err", err)
			}
			if e.dirty {
				q.enqueueLocked(userID, e)
			} else {
				q.removeLocked(userID)
			}
			backoff = 0
		default:
			// Not written: the change (or a newer one made meanwhile) goes back in line, after the others.
			// An unreachable store logs its outage itself (errs.IsUnavailable); a store that answers
			// too slowly does not, so the first such retry of an episode is a warning.
			q.retries++
			if !q.failing && !errs.IsUnavailable(err) {
				q.failing = true
				q.log.Warn("presence: saving to the store timed out; retrying with backoff", "userId", userID,
					"status", status, "timeout", q.opts.AttemptTimeout, "err", err)
			} else {
				q.log.Debug("presence: save failed; retrying", "userId", userID, "status", status, "err", err)
			}
			q.enqueueLocked(userID, e)
			backoff = min(max(2*backoff, q.opts.RetryMin), q.opts.RetryMax)
		}
		q.mu.Unlock()
		if err != nil && retry {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-q.stopped:
				t.Stop()
			}
		}
	}
}

func (q *SaveQueue) removeLocked(userID string) {
	delete(q.pending, userID)
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

func (q *SaveQueue) signalIdleLocked() {
	if q.idle != nil && len(q.pending) == 0 && q.running == 0 {
		close(q.idle)
		q.idle = nil
	}
}

// Flush waits until every change queued so far (and since) is written or dropped, or ctx ends.
func (q *SaveQueue) Flush(ctx context.Context) error {
	q.mu.Lock()
	if len(q.pending) == 0 && q.running == 0 {
		q.mu.Unlock()
		return nil
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close refuses new changes and writes the pending ones (retrying as usual) until they are all
// written or ctx ends; then it stops the workers. The error names what was not written.
func (q *SaveQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.closing)
	q.mu.Unlock()

	err := q.Flush(ctx)
	close(q.stopped)
	q.cancel() // ends attempts in flight
	q.wg.Wait()
	if err == nil {
		return nil
	}
	q.mu.Lock()
	left := make([]string, 0, len(q.pending))
	for u, e := range q.pending {
		left = append(left, u+" "+e.status)
	}
	q.mu.Unlock()
	if len(left) == 0 {
		return nil // the last ones finished as ctx ended
	}
	sort.Strings(left)
	shown := left[:min(len(left), 10)]
	more := ""
	if len(left) > len(shown) {
		more = fmt.Sprintf(", and %d more", len(left)-len(shown))
	}
	return fmt.Errorf("presence: %d changes not saved before the shutdown deadline (%s%s): %w",
		len(left), strings.Join(shown, ", "), more, err)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

var _ UserStore = (*SaveQueue)(nil)
