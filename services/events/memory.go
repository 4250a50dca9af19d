package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryOptions configure the in-process bus. Zero values take the defaults.
type MemoryOptions struct {
	// Origin names this node in Event.Origin. Default "local".
	Origin string
	// QueueSize bounds the events waiting for one subscriber. Default 1024.
	QueueSize int
	// EnqueueTimeout bounds how long Publish waits for room in a full queue
	// (also bounded by Publish's ctx). Past it the event is not delivered to
	// that subscriber and Publish reports ErrQueueFull. Default 1s. With a
	// Journal, a ClusterOnce delivery does not wait: it goes to the journal.
	EnqueueTimeout time.Duration
	// HandlerTimeout bounds one handler call (its ctx is cancelled). Default 30s.
	HandlerTimeout time.Duration

	// Journal, when set, keeps the ClusterOnce deliveries that cannot run now (full queue, failed
	// handler, Close out of time) to run them later instead of dropping them. See Journal.
	Journal Journal
	// JournalPoll is how often the bus looks for due journal entries when it has not saved any
	// itself (entries of an earlier process, of another node, retries). Default 5s.
	JournalPoll time.Duration
	// JournalTimeout bounds one journal call. Default 5s.
	JournalTimeout time.Duration
	// RetryDelay is the wait before a failed delivery's first retry; it doubles per attempt, up
	// to one minute. Default 1s.
	RetryDelay time.Duration
	// MaxAttempts bounds the tries of a journaled delivery; then it is dropped with an error log.
	// Default 8.
	MaxAttempts int

	Logger *slog.Logger
}

// ErrQueueFull means a subscriber's queue stayed full past EnqueueTimeout.
var ErrQueueFull = errors.New("events: subscriber queue full")

// Memory is the in-process Bus: every subscriber has its own bounded queue
// and goroutine, so a slow handler delays only its own later events, never
// the publisher (beyond EnqueueTimeout) or other subscribers.
//
// Scopes keep their cluster meaning inside one process: Local subscribers
// each get every event; of several ClusterOnce subscribers with the same
// Name (e.g. two "nodes" sharing one bus in a test) only the first gets it.
//
// With a Journal, ClusterOnce deliveries are not lost to a full queue, a failing
// handler or a shutdown: they wait in the journal and a replay loop feeds them
// back when the subscriber's queue has room.
type Memory struct {
	opts MemoryOptions
	log  *slog.Logger

	// ctx is the parent of every handler ctx; cancelled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // subscriber loops and the replay loop

	// spill is closed when Close runs out of time: the loops then journal what is left.
	spill chan struct{}
	// quit stops the replay loop; kick wakes it after a save.
	quit chan struct{}
	kick chan struct{}

	spilled, replayed, retried, gaveUp, dropped atomic.Int64
	journalDown                                 atomic.Bool // a Take failed; logged once until one works

	mu     sync.RWMutex
	subs   map[string][]*subscriber
	closed bool
}

// MemoryStats counts what the bus did besides plain deliveries.
type MemoryStats struct {
	Spilled  int64 // deliveries journaled because the queue was full or Close ran out of time
	Retried  int64 // failed deliveries journaled for another try
	Replayed int64 // deliveries taken from the journal
	GaveUp   int64 // journaled deliveries dropped after MaxAttempts
	Dropped  int64 // deliveries lost: queue full without a journal, or the journal failed
}

type subscriber struct {
	event string
	h     Handler
	queue chan delivery
	// stop is closed on unsubscribe/close. The queue channel itself is never
	// closed, so a concurrent Publish can never send on a closed channel.
	stop     chan struct{}
	stopOnce sync.Once
	// feeding is read-held by whoever puts deliveries in queue (Publish, the replay loop); after
	// stop the loop takes it once for writing, so that nothing lands in the queue after its last
	// drain (a delivery put there then would be lost, a journal entry stuck in its lease).
	feeding sync.RWMutex
}

// delivery is one event for one subscriber; entry is set when it came from the journal.
type delivery struct {
	e     Event
	entry *JournalEntry
}

func (s *subscriber) halt() { s.stopOnce.Do(func() { close(s.stop) }) }

func (s *subscriber) stopped() bool { return isClosed(s.stop) }

// isClosed reports whether ch is closed (the bus's stop signals are closed, never sent on).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// fedNoMore returns once no Publish or replay is putting deliveries in the stopped s's queue; they
// see stop and put nothing more there.
func (s *subscriber) fedNoMore() {
	s.feeding.Lock()
	s.feeding.Unlock() //nolint:staticcheck // a barrier, not a critical section
}

// NewMemory returns a running in-process bus. Call Close to stop it.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.Origin == "" {
		opts.Origin = "local"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.EnqueueTimeout <= 0 {
		opts.EnqueueTimeout = time.Second
	}
	if opts.HandlerTimeout <= 0 {
		opts.HandlerTimeout = 30 * time.Second
	}
	if opts.JournalPoll <= 0 {
		opts.JournalPoll = 5 * time.Second
	}
	if opts.JournalTimeout <= 0 {
		opts.JournalTimeout = 5 * time.Second
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Memory{
		opts:   opts,
		log:    log.With("component", "events"),
		ctx:    ctx,
		cancel: cancel,
		spill:  make(chan struct{}),
		quit:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		subs:   make(map[string][]*subscriber),
	}
	if opts.Journal != nil {
		m.wg.Add(1)
		go m.replayLoop()
	}
	return m
}

// Stats returns the counters.
func (m *Memory) Stats() MemoryStats {
	return MemoryStats{Spilled: m.spilled.Load(), Retried: m.retried.Load(), Replayed: m.replayed.Load(),
		GaveUp: m.gaveUp.Load(), Dropped: m.dropped.Load()}
}

// Subscribe implements Bus. It panics on a handler without Name or Handle:
// that is a programming error found at start-up.
func (m *Memory) Subscribe(name string, h Handler) (unsubscribe func()) {
	if h.Name == "" || h.Handle == nil {
		panic(fmt.Sprintf("events: Subscribe(%q): handler needs Name and Handle", name))
	}
	s := &subscriber{
		event: name,
		h:     h,
		queue: make(chan delivery, m.opts.QueueSize),
		stop:  make(chan struct{}),
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return func() {}
	}
	m.subs[name] = append(m.subs[name], s)
	m.wg.Add(1)
	m.mu.Unlock()

	go m.loop(s)
	m.wake() // the journal may hold deliveries for this handler

	return func() {
		m.mu.Lock()
		list := m.subs[name]
		for i, x := range list {
			if x == s {
				m.subs[name] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(m.subs[name]) == 0 {
			delete(m.subs, name)
		}
		m.mu.Unlock()
		s.halt()
	}
}

// Publish implements Bus.
func (m *Memory) Publish(ctx context.Context, e Event) error {
	if e.Name == "" {
		return errors.New("events: publish: empty event name")
	}
	e = Stamp(e, m.opts.Origin)

	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	// Copy: the lock is not held while waiting for a full queue.
	targets := append([]*subscriber(nil), m.subs[e.Name]...)
	m.mu.RUnlock()

	var errs []error
	once := map[string]bool{} // ClusterOnce handler names already given this event
	for _, s := range targets {
		if s.h.Scope == ClusterOnce {
			if once[s.h.Name] {
				continue
			}
			once[s.h.Name] = true
		}
		if err := m.enqueue(ctx, s, e); err != nil {
			m.dropped.Add(1)
			errs = append(errs, fmt.Errorf("events: %s → %s: %w", e.Name, s.h.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Memory) enqueue(ctx context.Context, s *subscriber, e Event) error {
	s.feeding.RLock()
	defer s.feeding.RUnlock()
	if s.stopped() {
		return nil // unsubscribed meanwhile: nobody to deliver to
	}
	select {
	case s.queue <- delivery{e: e}:
		return nil
	case <-s.stop:
		return nil // unsubscribed meanwhile: nobody to deliver to
	default:
	}
	if m.journals(s) {
		// Full: the journal takes it, and the replay loop brings it back once the queue has room.
		jctx, cancel := context.WithTimeout(ctx, m.opts.JournalTimeout)
		err := m.opts.Journal.Save(jctx, []JournalEntry{{Handler: s.h.Name, Event: e}})
		cancel()
		if err == nil {
			m.spilled.Add(1)
			m.wake()
			return nil
		}
		m.log.Warn("event queue full and the journal failed; waiting for room",
			"event", e.Name, "eventId", e.ID, "handler", s.h.Name, "err", err)
	}
	t := time.NewTimer(m.opts.EnqueueTimeout)
	defer t.Stop()
	select {
	case s.queue <- delivery{e: e}:
		return nil
	case <-s.stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrQueueFull
	}
}

// journals reports whether s's deliveries go to the journal when they cannot run now.
func (m *Memory) journals(s *subscriber) bool {
	return m.opts.Journal != nil && s.h.Scope == ClusterOnce
}

// loop delivers a subscriber's events in order. After stop it still handles
// what was queued before, so an unsubscribe or Close loses nothing accepted;
// when Close runs out of time it journals what is left instead.
func (m *Memory) loop(s *subscriber) {
	defer m.wg.Done()
	for {
		select {
		case d := <-s.queue:
			if m.spilling() {
				// Close ran out of time: handlers' ctx is cancelled, so running d now would only
				// count a failed attempt. It goes to the journal with the rest.
				m.spillQueue(s, d)
				return
			}
			m.run(s, d)
		case <-s.stop:
			s.fedNoMore()
			for {
				if m.spilling() {
					m.spillQueue(s)
					return
				}
				select {
				case d := <-s.queue:
					m.run(s, d)
				default:
					return
				}
			}
		}
	}
}

func (m *Memory) run(s *subscriber, d delivery) {
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.HandlerTimeout)
	defer cancel()
	start := time.Now()
	err := m.call(ctx, s, d.e)
	if !m.journals(s) {
		if err != nil && m.spilling() {
			// Cut off by a shutdown out of time, like the local events still queued (spillQueue).
			m.dropped.Add(1)
			m.log.Warn("closing: local event handler cut off", "event", d.e.Name, "eventId", d.e.ID,
				"handler", s.h.Name, "err", err)
			return
		}
		if err != nil {
			m.log.Error("event handler failed", "event", d.e.Name, "eventId", d.e.ID, "handler", s.h.Name,
				"scope", s.h.Scope.String(), "duration", time.Since(start), "err", err)
		}
		return
	}
	m.settle(s, d, err, time.Since(start))
}

// call runs the handler, turning a panic into an error.
func (m *Memory) call(ctx context.Context, s *subscriber, e Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("event handler panicked", "event", e.Name, "eventId", e.ID, "handler", s.h.Name,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return s.h.Handle(ctx, e)
}

// settle records the outcome of a journaled subscriber's delivery: a success ends its journal
// entry, a failure schedules another try (a first failure is journaled now) until MaxAttempts.
func (m *Memory) settle(s *subscriber, d delivery, err error, took time.Duration) {
	jctx, cancel := context.WithTimeout(context.Background(), m.opts.JournalTimeout)
	defer cancel()
	j := m.opts.Journal
	log := m.log.With("event", d.e.Name, "eventId", d.e.ID, "handler", s.h.Name, "duration", took)
	attempts := 1
	if d.entry != nil {
		attempts = d.entry.Attempts
	}
	var jerr error
	switch {
	case err == nil && d.entry == nil:
		return
	case err == nil:
		jerr = j.Done(jctx, s.h.Name, d.e.ID)
	case attempts >= m.opts.MaxAttempts:
		m.gaveUp.Add(1)
		log.Error("event handler failed; giving up", "attempts", attempts, "err", err)
		if d.entry != nil {
			jerr = j.Done(jctx, s.h.Name, d.e.ID)
		}
	default:
		m.retried.Add(1)
		log.Warn("event handler failed; will retry from the journal", "attempts", attempts, "err", err)
		next := time.Now().Add(m.retryDelay(attempts))
		if d.entry != nil {
			jerr = j.Release(jctx, s.h.Name, d.e.ID, next, err.Error())
		} else {
			jerr = j.Save(jctx, []JournalEntry{{Handler: s.h.Name, Event: d.e, Attempts: 1, NotBefore: next,
				LastError: err.Error()}})
		}
		m.wake()
	}
	if jerr != nil {
		if d.entry == nil {
			m.dropped.Add(1) // a failed delivery that could not be journaled is lost
		}
		log.Error("event journal update failed", "handlerErr", err, "err", jerr)
	}
}

// retryDelay is the wait after the attempts-th failed try: RetryDelay doubled per attempt, at most a minute.
func (m *Memory) retryDelay(attempts int) time.Duration {
	d := m.opts.RetryDelay
	for i := 1; i < attempts && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// spillQueue journals what is left in s's queue when Close ran out of time. Deliveries that came
// from the journal are still there, leased to this process: their leases are ended so that the next
// process (or another node) takes them at once instead of after the lease (a minute). Local ones are
// dropped with a warning: their effect belonged to this process.
func (m *Memory) spillQueue(s *subscriber, taken ...delivery) {
	s.fedNoMore()
	ds := taken
	for drained := false; !drained; {
		select {
		case d := <-s.queue:
			ds = append(ds, d)
		default:
			drained = true
		}
	}
	var left []JournalEntry
	var leased []JournalEntry
	lost := 0
	for _, d := range ds {
		switch {
		case d.entry != nil:
			leased = append(leased, *d.entry)
		case m.journals(s):
			left = append(left, JournalEntry{Handler: s.h.Name, Event: d.e})
		default:
			lost++
		}
	}
	if lost > 0 {
		m.dropped.Add(int64(lost))
		m.log.Warn("closing: queued local events dropped", "handler", s.h.Name, "count", lost)
	}
	defer m.releaseLeases(s, leased) // after the Save: that one keeps events, this one only speeds them up
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.JournalTimeout)
	defer cancel()
	if err := m.opts.Journal.Save(ctx, left); err != nil {
		m.dropped.Add(int64(len(left)))
		m.log.Error("closing: queued events could not be journaled and are lost", "handler", s.h.Name,
			"count", len(left), "err", err)
		return
	}
	m.spilled.Add(int64(len(left)))
	m.log.Info("closing: queued events journaled for the next process", "handler", s.h.Name, "count", len(left))
}

// releaseLeases makes journal entries this process took but did not run due again at once. A failed
// Release loses nothing: the entry stays journaled and is due when its lease ends.
func (m *Memory) releaseLeases(s *subscriber, leased []JournalEntry) {
	if len(leased) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.JournalTimeout)
	defer cancel()
	for _, e := range leased {
		if err := m.opts.Journal.Release(ctx, s.h.Name, e.Event.ID, time.Time{}, "not run: the process shut down"); err != nil {
			m.log.Warn("closing: journaled events stay leased until their lease ends", "handler", s.h.Name,
				"count", len(leased), "err", err)
			return
		}
	}
}

// spilling reports whether Close ran out of time (the loops journal what is left).
func (m *Memory) spilling() bool { return isClosed(m.spill) }

// wake makes the replay loop look at the journal soon.
func (m *Memory) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// replayLoop feeds due journal entries back to their subscribers while their queues have room:
// at once after this bus saved something, otherwise every JournalPoll.
func (m *Memory) replayLoop() {
	defer m.wg.Done()
	t := time.NewTimer(0) // first look at start: an earlier process may have left entries
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-m.kick:
			// A save is usually followed by more: look a little later, in one go.
			select {
			case <-m.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
		case <-t.C:
		}
		wait := m.opts.JournalPoll
		if m.replayOnce() {
			wait = 100 * time.Millisecond // more may be due: come back soon
		}
		t.Reset(wait)
	}
}

// replayOnce takes due entries for every ClusterOnce handler whose queue is at most half full,
// and reports whether it should look again soon (a queue was busy or a take was full).
func (m *Memory) replayOnce() (again bool) {
	m.mu.RLock()
	byName := map[string]*subscriber{}
	for _, list := range m.subs {
		for _, s := range list {
			if m.journals(s) && byName[s.h.Name] == nil {
				byName[s.h.Name] = s
			}
		}
	}
	m.mu.RUnlock()
	for name, s := range byName {
		if m.replayTo(name, s) {
			again = true
		}
	}
	return again
}

// replayTo takes due entries of handler name into s's queue if it is at most half full, and
// reports whether to look again soon.
func (m *Memory) replayTo(name string, s *subscriber) (again bool) {
	s.feeding.RLock()
	defer s.feeding.RUnlock()
	if s.stopped() {
		return false
	}
	room := cap(s.queue) - len(s.queue)
	if room < cap(s.queue)/2 {
		return true
	}
	limit := max(1, min(room/2, 256))
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.JournalTimeout)
	entries, err := m.opts.Journal.Take(ctx, name, limit, m.lease())
	cancel()
	if err != nil {
		if !m.journalDown.Swap(true) { // once per outage, not per poll
			m.log.Warn("reading the event journal failed; will try again", "handler", name, "err", err)
		}
		return false
	}
	if m.journalDown.Swap(false) {
		m.log.Info("event journal readable again")
	}
	for i := range entries {
		en := entries[i]
		select {
		case s.queue <- delivery{e: en.Event, entry: &en}:
			m.replayed.Add(1)
		case <-s.stop:
			// Hand the rest back at once rather than leave it leased to a subscriber that stopped.
			m.releaseLeases(s, entries[i:])
			return false
		}
	}
	return len(entries) == limit
}

// lease is how long a taken entry is this bus's: long enough to wait in the queue and run.
func (m *Memory) lease() time.Duration {
	return max(2*m.opts.HandlerTimeout, time.Minute)
}

// Close stops accepting events and lets every subscriber finish what is queued, bounded by ctx.
// Without a Journal, past ctx running handlers see their ctx cancelled and Close returns ctx.Err().
// With a Journal, at three quarters of ctx's time the handlers are cancelled and what is left of
// the ClusterOnce deliveries is journaled for the next process, so that nothing accepted is lost.
func (m *Memory) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	all := m.subs
	m.subs = map[string][]*subscriber{}
	m.mu.Unlock()
	close(m.quit)
	for _, list := range all {
		for _, s := range list {
			s.halt()
		}
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	if m.opts.Journal != nil {
		spillCtx, cancel := shareOf(ctx, 0.75)
		defer cancel()
		select {
		case <-done:
			m.cancel()
			return nil
		case <-spillCtx.Done():
		}
		close(m.spill)
		m.cancel() // running handlers fail and are journaled (settle)
		// The loops journal the rest, each call bounded by JournalTimeout; wait for that even past
		// ctx (it is what keeps the events), but not for a handler that ignores its ctx.
		grace := time.NewTimer(2*m.opts.JournalTimeout + time.Until(deadlineOr(ctx, time.Now())))
		defer grace.Stop()
		select {
		case <-done:
			return nil
		case <-grace.C:
			return fmt.Errorf("events: close: handlers still running after their ctx was cancelled: %w", context.DeadlineExceeded)
		}
	}
	select {
	case <-done:
		m.cancel()
		return nil
	case <-ctx.Done():
		m.cancel()
		return ctx.Err()
	}
}

// deadlineOr is ctx's deadline, or def without one.
func deadlineOr(ctx context.Context, def time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return def
}

// shareOf derives a context that ends after share of ctx's remaining time (ctx itself without deadline).
func shareOf(ctx context.Context, share float64) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(float64(time.Until(dl))*share))
}

var _ Bus = (*Memory)(nil)
