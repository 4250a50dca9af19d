// Package coordtest is the conformance suite of matchmaking.Coordinator implementations: the
// in-process LocalCoordinator runs it, and so should a cluster implementation (a Redis lease), with
// New returning coordinators that share one backend, as separate nodes would.
package coordtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/matchmaking"
)

// Run runs the suite. New returns a coordinator of a new "node"; every call must share state with
// the earlier ones (same backend). Queue names are unique per run, so a shared backend may be reused.
func Run(t *testing.T, New func(t *testing.T) matchmaking.Coordinator) {
	prefix := time.Now().Format("150405.000000")
	queue := func(name string) models.MatchQueue {
		return models.MatchQueue{GameID: "coordtest-" + prefix, GameMode: name, Region: "r"}
	}
	ctx := context.Background()

	t.Run("one lease per queue across nodes", func(t *testing.T) {
		a, b := New(t), New(t)
		q := queue("exclusive")
		l, ok, err := a.Acquire(ctx, q)
		if err != nil || !ok {
			t.Fatalf("first acquire: ok=%v err=%v", ok, err)
		}
		for _, c := range []matchmaking.Coordinator{a, b} {
			if _, ok, err := c.Acquire(ctx, q); err != nil || ok {
				t.Fatalf("second acquire while held: ok=%v err=%v", ok, err)
			}
		}
		if _, ok, err := b.Acquire(ctx, queue("other")); err != nil || !ok {
			t.Fatalf("another queue: ok=%v err=%v", ok, err)
		}
		l.Release()
		l.Release() // a second release is harmless
		l2, ok, err := b.Acquire(ctx, q)
		if err != nil || !ok {
			t.Fatalf("acquire after release: ok=%v err=%v", ok, err)
		}
		if l2.Token() == l.Token() || l2.Token() == "" {
			t.Fatalf("tokens %q then %q: want distinct, non-empty", l.Token(), l2.Token())
		}
		l2.Release()
	})

	t.Run("concurrent acquires: never two holders", func(t *testing.T) {
		nodes := []matchmaking.Coordinator{New(t), New(t), New(t)}
		q := queue("concurrent")
		var holders, maxHolders, rounds atomic.Int64
		var wg sync.WaitGroup
		for _, c := range nodes {
			for w := 0; w < 3; w++ {
				wg.Add(1)
				go func(c matchmaking.Coordinator) {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						l, ok, err := c.Acquire(ctx, q)
						if err != nil {
							t.Error(err)
							return
						}
						if !ok {
							continue
						}
						n := holders.Add(1)
						for {
							m := maxHolders.Load()
							if n <= m || maxHolders.CompareAndSwap(m, n) {
								break
							}
						}
						rounds.Add(1)
						time.Sleep(100 * time.Microsecond)
						holders.Add(-1)
						l.Release()
					}
				}(c)
			}
		}
		wg.Wait()
		if maxHolders.Load() != 1 || rounds.Load() == 0 {
			t.Fatalf("max simultaneous holders %d over %d rounds", maxHolders.Load(), rounds.Load())
		}
	})
}
