package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
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
	// that subscriber and Publish reports ErrQueueFull. Default 1s.
	EnqueueTimeout time.Duration
	// HandlerTimeout bounds one handler call (its ctx is cancelled). Default 30s.
	HandlerTimeout time.Duration
	Logger         *slog.Logger
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
type Memory struct {
	opts MemoryOptions
	log  *slog.Logger

	// ctx is the parent of every handler ctx; cancelled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	subs   map[string][]*subscriber
	closed bool
}

type subscriber struct {
	event string
	h     Handler
	queue chan Event
	// stop is closed on unsubscribe/close. The queue channel itself is never
	// closed, so a concurrent Publish can never send on a closed channel.
	stop     chan struct{}
	stopOnce sync.Once
}

func (s *subscriber) halt() { s.stopOnce.Do(func() { close(s.stop) }) }

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
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Memory{
		opts:   opts,
		log:    log.With("component", "events"),
		ctx:    ctx,
		cancel: cancel,
		subs:   make(map[string][]*subscriber),
	}
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
		queue: make(chan Event, m.opts.QueueSize),
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
			errs = append(errs, fmt.Errorf("events: %s → %s: %w", e.Name, s.h.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Memory) enqueue(ctx context.Context, s *subscriber, e Event) error {
	select {
	case s.queue <- e:
		return nil
	case <-s.stop:
		return nil // unsubscribed meanwhile: nobody to deliver to
	default:
	}
	t := time.NewTimer(m.opts.EnqueueTimeout)
	defer t.Stop()
	select {
	case s.queue <- e:
		return nil
	case <-s.stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrQueueFull
	}
}

// loop delivers a subscriber's events in order. After stop it still handles
// what was queued before, so an unsubscribe or Close loses nothing accepted.
func (m *Memory) loop(s *subscriber) {
	defer m.wg.Done()
	for {
		select {
		case e := <-s.queue:
			m.run(s, e)
		case <-s.stop:
			for {
				select {
				case e := <-s.queue:
					m.run(s, e)
				default:
					return
				}
			}
		}
	}
}

func (m *Memory) run(s *subscriber, e Event) {
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.HandlerTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("event handler panicked",
				"event", e.Name, "eventId", e.ID, "handler", s.h.Name,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	if err := s.h.Handle(ctx, e); err != nil {
		m.log.Error("event handler failed",
			"event", e.Name, "eventId", e.ID, "handler", s.h.Name,
			"scope", s.h.Scope.String(), "duration", time.Since(start), "err", err)
	}
}

// Close stops accepting events, lets every subscriber finish what is queued,
// and waits for that (bounded by ctx; past it running handlers see their ctx
// cancelled and Close returns ctx.Err()).
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
	for _, list := range all {
		for _, s := range list {
			s.halt()
		}
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		m.cancel()
		return nil
	case <-ctx.Done():
		m.cancel()
		return ctx.Err()
	}
}

var _ Bus = (*Memory)(nil)
