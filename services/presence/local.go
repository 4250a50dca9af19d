package presence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/maoga/maoga/services/realtime"
)

// LocalOptions configure Local. Users, Friends and Emitter are required.
type LocalOptions struct {
	Users   UserStore
	Friends FriendLister
	Emitter realtime.Emitter
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Local is the single-process Service: sockets counted per user in memory.
type Local struct {
	users   UserStore
	friends FriendLister
	emit    realtime.Emitter
	now     func() time.Time

	mu    sync.Mutex
	state map[string]*entry // connected users only

	// ops serialises the changes of one user (state change + telling friends),
	// so friends see a user's changes in the order they happened.
	ops keyedMutex
}

type entry struct {
	sockets map[string]struct{}
	status  string
}

// NewLocal returns an in-memory presence service.
func NewLocal(opts LocalOptions) *Local {
	if opts.Users == nil || opts.Friends == nil || opts.Emitter == nil {
		panic("presence: NewLocal needs Users, Friends and Emitter")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Local{
		users:   opts.Users,
		friends: opts.Friends,
		emit:    opts.Emitter,
		now:     now,
		state:   make(map[string]*entry),
	}
}

func checkIDs(userID, socketID string) error {
	if userID == "" || socketID == "" {
		return errors.New("presence: empty user or socket id")
	}
	return nil
}

// Connect implements Service.
func (l *Local) Connect(ctx context.Context, userID, socketID string) (bool, error) {
	if err := checkIDs(userID, socketID); err != nil {
		return false, err
	}
	unlock := l.ops.lock(userID)
	defer unlock()

	l.mu.Lock()
	e := l.state[userID]
	first := e == nil
	if first {
		e = &entry{sockets: make(map[string]struct{}), status: Online}
		l.state[userID] = e
	}
	e.sockets[socketID] = struct{}{}
	l.mu.Unlock()

	if !first {
		return false, nil
	}
	return true, l.changed(ctx, userID, Online, time.Time{})
}

// Disconnect implements Service.
func (l *Local) Disconnect(ctx context.Context, userID, socketID string) (bool, error) {
	if err := checkIDs(userID, socketID); err != nil {
		return false, err
	}
	unlock := l.ops.lock(userID)
	defer unlock()

	l.mu.Lock()
	e := l.state[userID]
	if e == nil {
		l.mu.Unlock()
		return false, nil
	}
	if _, ok := e.sockets[socketID]; !ok {
		l.mu.Unlock()
		return false, nil
	}
	delete(e.sockets, socketID)
	last := len(e.sockets) == 0
	wasOffline := e.status == Offline // the user chose to appear offline
	if last {
		delete(l.state, userID)
	}
	l.mu.Unlock()

	if !last {
		return false, nil
	}
	if wasOffline {
		// Friends already see offline: only lastActive is new.
		if err := l.users.SavePresence(ctx, userID, Offline, l.now().UTC()); err != nil {
			return true, fmt.Errorf("presence: save offline of %s: %w", userID, err)
		}
		return true, nil
	}
	return true, l.changed(ctx, userID, Offline, l.now().UTC())
}

// SetStatus implements Service.
func (l *Local) SetStatus(ctx context.Context, userID, status string) error {
	if !Valid(status) {
		return fmt.Errorf("%w: %q", ErrInvalidStatus, status)
	}
	unlock := l.ops.lock(userID)
	defer unlock()

	l.mu.Lock()
	e := l.state[userID]
	if e == nil {
		l.mu.Unlock()
		return ErrNotConnected
	}
	changed := e.status != status
	e.status = status
	l.mu.Unlock()

	if !changed {
		return nil
	}
	return l.changed(ctx, userID, status, time.Time{})
}

// Status implements Service.
func (l *Local) Status(_ context.Context, userID string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.state[userID]; e != nil {
		return e.status, nil
	}
	return Offline, nil
}

// Statuses implements Service.
func (l *Local) Statuses(_ context.Context, userIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(userIDs))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range userIDs {
		if e := l.state[id]; e != nil {
			out[id] = e.status
		} else {
			out[id] = Offline
		}
	}
	return out, nil
}

// changed saves the new status and tells the friends; both are tried even
// when the other fails.
func (l *Local) changed(ctx context.Context, userID, status string, lastActive time.Time) error {
	var errs []error
	if err := l.users.SavePresence(ctx, userID, status, lastActive); err != nil {
		errs = append(errs, fmt.Errorf("presence: save %s of %s: %w", status, userID, err))
	}
	if err := l.tellFriends(ctx, userID, status); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tellFriends emits user:status to each friend's room. It tries every friend
// even when one emit fails.
func (l *Local) tellFriends(ctx context.Context, userID, status string) error {
	ids, err := l.friends.FriendIDs(ctx, userID)
	if err != nil {
		return fmt.Errorf("presence: list friends of %s: %w", userID, err)
	}
	p := StatusPayload{UserID: userID, Status: status, UpdatedAt: realtime.ISOTime(l.now())}
	var errs []error
	for _, f := range ids {
		if err := l.emit.ToRoom(realtime.UserRoom(f)).Emit(StatusEvent, p); err != nil {
			errs = append(errs, fmt.Errorf("presence: emit %s to %s: %w", StatusEvent, f, err))
		}
	}
	return errors.Join(errs...)
}

// keyedMutex is a mutex per key, created on demand and dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*refMutex)
	}
	r := k.m[key]
	if r == nil {
		r = &refMutex{}
		k.m[key] = r
	}
	r.refs++
	k.mu.Unlock()

	r.Lock()
	return func() {
		r.Unlock()
		k.mu.Lock()
		r.refs--
		if r.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

var _ Service = (*Local)(nil)
