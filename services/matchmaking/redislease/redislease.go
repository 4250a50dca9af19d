// Package redislease is the cluster matchmaking.Coordinator: one round per queue at a time across
// all nodes, through a Redis lease with a fencing token.
//
//	Acquire: one Lua script — if <p>:lease:<queue> is free, INCR <p>:fence:<queue> (monotonic per
//	         queue: the fencing token) and SET the lease to "<node>:<token>" with PX LeaseTTL;
//	while held: the holder extends the lease every LeaseTTL/3 (compare-and-PEXPIRE), so a long
//	         round keeps it and a dead holder (kill -9) loses it within LeaseTTL;
//	Release: compare-and-delete, so a holder whose lease expired cannot delete its successor's.
//
// The lease is an optimisation: the matchmaking service's claims (conditional updates on the
// request's status and version, tagged with the lease token) are what make a double match
// impossible even if two rounds overlap (a paused holder whose lease expired). So while Redis is
// unreachable the coordinator falls back to per-process exclusivity (matchmaking.LocalCoordinator)
// instead of stopping matchmaking: nodes may then run the same queue at once, wasting work but not
// matching anyone twice. The outage is logged once.
package redislease

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/events/redisbus"
	"github.com/maoga/maoga/services/matchmaking"
)

// Options configure a Coordinator. Zero values take the defaults.
type Options struct {
	// Node names this process in lease values (default hostname-pid-random).
	Node string
	// Prefix of the keys (default "mm").
	Prefix string
	// LeaseTTL: a holder that stops extending loses the lease after this long (default 3s).
	LeaseTTL time.Duration
	Logger   *slog.Logger
}

// Coordinator hands out per-queue leases through Redis.
type Coordinator struct {
	rdb      redis.UniversalClient
	opts     Options
	log      *slog.Logger
	fallback *matchmaking.LocalCoordinator
	down     atomic.Bool
}

// New returns a coordinator on client (which stays the caller's to close).
func New(client redis.UniversalClient, opts Options) *Coordinator {
	if opts.Node == "" {
		opts.Node = redisbus.NodeID()
	}
	if opts.Prefix == "" {
		opts.Prefix = "mm"
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Coordinator{rdb: client, opts: opts, fallback: matchmaking.NewLocalCoordinator(),
		log: opts.Logger.With("component", "matchmaking", "coordinator", "redis", "node", opts.Node)}
}

var acquireScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local n = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. ':' .. n
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v`)

var extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func (c *Coordinator) keys(q models.MatchQueue) []string {
	k := q.String()
	return []string{c.opts.Prefix + ":lease:" + k, c.opts.Prefix + ":fence:" + k}
}

// Acquire implements matchmaking.Coordinator.
func (c *Coordinator) Acquire(ctx context.Context, q models.MatchQueue) (matchmaking.Lease, bool, error) {
	keys := c.keys(q)
	v, err := acquireScript.Run(ctx, c.rdb, keys, c.opts.Node, c.opts.LeaseTTL.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		c.up()
		return nil, false, nil // another node's round holds the queue
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		if !c.down.Swap(true) {
			c.log.Error("matchmaking: redis unreachable; queues are coordinated per node until it is back "+
				"(claims still prevent double matches)", "err", err)
		}
		return c.fallback.Acquire(ctx, q)
	}
	c.up()
	l := &lease{c: c, key: keys[0], value: v, stop: make(chan struct{}), done: make(chan struct{})}
	go l.keepAlive()
	return l, true, nil
}

func (c *Coordinator) up() {
	if c.down.Swap(false) {
		c.log.Info("matchmaking: redis reachable again; queues are coordinated cluster-wide")
	}
}

type lease struct {
	c          *Coordinator
	key, value string
	stop, done chan struct{}
	once       sync.Once
}

// Token is "<node>:<fencing number>": unique per Acquire, increasing per queue.
func (l *lease) Token() string { return l.value }

func (l *lease) keepAlive() {
	defer close(l.done)
	t := time.NewTicker(l.c.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.c.opts.LeaseTTL/3)
		n, err := extendScript.Run(ctx, l.c.rdb, []string{l.key}, l.value, l.c.opts.LeaseTTL.Milliseconds()).Int()
		cancel()
		if err == nil && n == 0 {
			// Expired (this process paused past LeaseTTL) and maybe taken: the round goes on, its
			// claims keep it from matching anyone another round already claimed.
			l.c.log.Warn("matchmaking: queue lease lost while the round runs", "lease", l.value)
			return
		}
	}
}

// Release implements matchmaking.Lease.
func (l *lease) Release() {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := releaseScript.Run(ctx, l.c.rdb, []string{l.key}, l.value).Err(); err != nil {
			// The lease then expires by itself after LeaseTTL.
			l.c.log.Warn("matchmaking: lease release failed; it expires by itself", "lease", l.value, "err", err)
		}
	})
}

var _ matchmaking.Coordinator = (*Coordinator)(nil)
