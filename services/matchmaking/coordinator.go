package matchmaking

import (
	"context"
	"sync"

	"github.com/maoga/maoga/models"
)

// Coordinator decides who runs a queue's round. It is an optimisation, not the safety net: the
// safety comes from the claims (every request of a match is moved searching → matching by a
// conditional update on its status and version, and a cancel is conditional on searching too), so
// two rounds of one queue running at once on two nodes can waste work but never place a user in two
// lobbies. The coordinator makes that rare.
//
// In one process LocalCoordinator is enough. For several nodes (issue 5) a Redis implementation
// fits the same interface:
//
//	Acquire: SET mm:lease:<queue> <node>:<token> NX PX <3×tick>; the token comes from
//	         INCR mm:fence:<queue> (monotonic per queue, a fencing token);
//	Release: compare-and-delete (Lua: if GET == mine then DEL);
//	a dead leader's lease expires after its PX, so another node runs the queue within a few ticks.
//
// The round stores the lease token in the claimToken of the requests it claims, so a stale round
// can only finish or release its own claims.
type Coordinator interface {
	// Acquire asks to run one round of queue q now. ok is false when another round of q holds it
	// (this node then skips q this tick). err is for a coordinator that cannot answer (Redis down):
	// the round is skipped and the error logged.
	Acquire(ctx context.Context, q models.MatchQueue) (lease Lease, ok bool, err error)
}

// Lease is the right to run one round of one queue.
type Lease interface {
	// Token identifies this lease (unique per Acquire); it prefixes the round's claim token.
	Token() string
	// Release gives the queue back.
	Release()
}

// LocalCoordinator lets one round per queue run at a time in this process.
type LocalCoordinator struct {
	mu      sync.Mutex
	running map[models.MatchQueue]bool
	seq     uint64
}

// NewLocalCoordinator returns an empty coordinator.
func NewLocalCoordinator() *LocalCoordinator {
	return &LocalCoordinator{running: map[models.MatchQueue]bool{}}
}

// Acquire implements Coordinator.
func (c *LocalCoordinator) Acquire(_ context.Context, q models.MatchQueue) (Lease, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[q] {
		return nil, false, nil
	}
	c.running[q] = true
	c.seq++
	return &localLease{c: c, q: q, token: "local-" + uitoa(c.seq)}, true, nil
}

type localLease struct {
	c     *LocalCoordinator
	q     models.MatchQueue
	token string
	once  sync.Once
}

func (l *localLease) Token() string { return l.token }

func (l *localLease) Release() {
	l.once.Do(func() {
		l.c.mu.Lock()
		delete(l.c.running, l.q)
		l.c.mu.Unlock()
	})
}

func uitoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
