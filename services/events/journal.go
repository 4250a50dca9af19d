package events

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Journal keeps the ClusterOnce deliveries a bus could not run now outside the process's memory,
// so that they run later — on this node, on the next process after a restart, or on another node —
// instead of being lost:
//
//   - Publish found the handler's queue full (a burst faster than the handler);
//   - the handler failed (e.g. the store was unreachable for longer than the handler's timeout);
//   - Close ran out of time with events still queued or running.
//
// A journaled delivery may run more than once (a crash between its effect and Done, a lease that
// ran out while it was still running) and after later events: ClusterOnce handlers must be
// idempotent, as the platform's are (a notification's id derives from the event).
type Journal interface {
	// Save records entries; an entry whose (Handler, Event.ID) is saved already is kept as it is.
	Save(ctx context.Context, entries []JournalEntry) error
	// Take leases up to limit due entries of handler (NotBefore passed, no live lease), oldest
	// first, for lease: until it ends no other Take returns them. Each Take adds one to Attempts.
	Take(ctx context.Context, handler string, limit int, lease time.Duration) ([]JournalEntry, error)
	// Release ends an entry's lease: it is due again at notBefore; lastError says why it failed.
	Release(ctx context.Context, handler, eventID string, notBefore time.Time, lastError string) error
	// Done removes an entry: its handler ran, or the bus gave up on it.
	Done(ctx context.Context, handler, eventID string) error
}

// JournalEntry is one delivery waiting in a Journal.
type JournalEntry struct {
	Handler string
	Event   Event
	// Attempts is how many times the delivery was tried (a Take counts as a try).
	Attempts int
	// NotBefore is when the entry is due; zero means at once.
	NotBefore time.Time
	// LastError is the error of the last failed try, for the operator.
	LastError string
}

// MemoryJournal is a Journal in this process's memory: it survives nothing, so it is for tests
// and as the reference the stored journals are checked against (journaltest).
type MemoryJournal struct {
	mu      sync.Mutex
	entries map[[2]string]*memoryEntry
	seq     int64
	now     func() time.Time
}

type memoryEntry struct {
	JournalEntry
	seq        int64
	leaseUntil time.Time
}

// NewMemoryJournal returns an empty MemoryJournal.
func NewMemoryJournal() *MemoryJournal {
	return &MemoryJournal{entries: map[[2]string]*memoryEntry{}, now: time.Now}
}

// Save implements Journal.
func (j *MemoryJournal) Save(_ context.Context, entries []JournalEntry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range entries {
		k := [2]string{e.Handler, e.Event.ID}
		if _, ok := j.entries[k]; ok {
			continue
		}
		j.seq++
		j.entries[k] = &memoryEntry{JournalEntry: e, seq: j.seq}
	}
	return nil
}

// Take implements Journal.
func (j *MemoryJournal) Take(_ context.Context, handler string, limit int, lease time.Duration) ([]JournalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	var due []*memoryEntry
	for _, e := range j.entries {
		if e.Handler == handler && !e.NotBefore.After(now) && !e.leaseUntil.After(now) {
			due = append(due, e)
		}
	}
	sort.Slice(due, func(a, b int) bool { return due[a].seq < due[b].seq })
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]JournalEntry, 0, len(due))
	for _, e := range due {
		e.leaseUntil = now.Add(lease)
		e.Attempts++
		out = append(out, e.JournalEntry)
	}
	return out, nil
}

// Release implements Journal.
func (j *MemoryJournal) Release(_ context.Context, handler, eventID string, notBefore time.Time, lastError string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, ok := j.entries[[2]string{handler, eventID}]; ok {
		e.leaseUntil, e.NotBefore, e.LastError = time.Time{}, notBefore, lastError
	}
	return nil
}

// Done implements Journal.
func (j *MemoryJournal) Done(_ context.Context, handler, eventID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.entries, [2]string{handler, eventID})
	return nil
}

// Len is how many entries the journal holds.
func (j *MemoryJournal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.entries)
}

var _ Journal = (*MemoryJournal)(nil)
