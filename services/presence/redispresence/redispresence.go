// Package redispresence is the cluster presence.Service: sockets are counted across all nodes in
// Redis, so a user is online while any node holds one of their sockets, and a node that dies
// (kill -9) does not leave its users online.
//
// Redis keys (Prefix "presence" by default):
//
//	<p>:nodes               set of live node ids
//	<p>:node:<n>:alive      heartbeat of node n: refreshed every HeartbeatInterval, expires after HeartbeatTTL
//	<p>:node:<n>:sockets    hash socket id → user id of the sockets node n holds
//	<p>:user:<u>:sockets    set of "<node>|<socket>" of user u, on every node
//	<p>:user:<u>:status     status user u shows; exists exactly while the user has sockets
//
// Every change is one Lua script, so exactly one call in the cluster sees a user become online,
// change status or become offline, and only that node saves the change and tells the friends
// (through the Emitter, i.e. the cluster adapter, which reaches them on every node): each change is
// announced once cluster-wide.
//
// Dead nodes: every node scans the node set every ReapInterval; a node whose heartbeat key expired is
// reaped by one atomic script (so of several survivors exactly one gets its users) that removes the
// node's sockets and returns the users left without any socket; that survivor saves lastActive and
// announces offline. Bound: a killed node's users are announced offline at most HeartbeatTTL +
// ReapInterval (+ the friend lookups) after its last heartbeat: 5 s + 2 s with the defaults, so
// within 10 s.
//
// A node whose own records vanished (reaped during a long pause, Redis restarted empty) notices at
// its next heartbeat and registers its sockets again; after a Redis outage it reconciles its socket
// hash with the sockets it really holds (disconnects during the outage are applied then).
//
// While Redis is down, Connect and Disconnect return the Redis error but fall back to this node's
// view: a user's first socket here announces online, the last one saves lastActive and announces
// offline (reaching this node's sockets only, as the adapter is down too). When Redis is back the
// reconciliation may announce the same change once more. SetStatus, Status and Statuses fail.
//
// The scripts touch keys they compute (user keys inside the reaping script), which a standalone Redis
// (or a single-shard deployment) allows but a multi-shard Redis Cluster does not.
package redispresence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/services/events/redisbus"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/realtime"
)

// Options configure a Service. Client, Users, Friends and Emitter are required.
type Options struct {
	Client  redis.UniversalClient
	Users   presence.UserStore
	Friends presence.FriendLister
	Emitter realtime.Emitter
	// Node names this process; default hostname-pid-random. Must be unique among running nodes.
	Node string
	// Prefix of every key (default "presence").
	Prefix string
	// HeartbeatTTL: a node silent this long is dead (default 5s).
	HeartbeatTTL time.Duration
	// HeartbeatInterval between refreshes (default HeartbeatTTL/3).
	HeartbeatInterval time.Duration
	// ReapInterval between scans for dead nodes (default 2s).
	ReapInterval time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is one node's presence.
type Service struct {
	opts Options
	rdb  redis.UniversalClient
	log  *slog.Logger
	now  func() time.Time

	keyNodes, keyAlive, keyNodeSockets string

	mu      sync.Mutex
	sockets map[string]string // socket id → user id, held by this node
	perUser map[string]int    // user id → number of its sockets in sockets
	dirty   bool              // a Redis write failed: reconcile at the next heartbeat
	closed  bool

	ops  keyedMutex // serialises one user's changes on this node
	stop chan struct{}
	wg   sync.WaitGroup
}

const opTimeout = 3 * time.Second

// New registers the node (first heartbeat; a failure is logged and retried by the loop, so a node can
// start while Redis is down) and starts the heartbeat and reaper loops. Close stops them.
func New(opts Options) (*Service, error) {
	if opts.Client == nil || opts.Users == nil || opts.Friends == nil || opts.Emitter == nil {
		return nil, errors.New("redispresence: Client, Users, Friends and Emitter are required")
	}
	if opts.Node == "" {
		opts.Node = redisbus.NodeID()
	}
	if strings.ContainsAny(opts.Node, "|") {
		return nil, fmt.Errorf("redispresence: node id %q contains '|'", opts.Node)
	}
	if opts.Prefix == "" {
		opts.Prefix = "presence"
	}
	if opts.HeartbeatTTL <= 0 {
		opts.HeartbeatTTL = 5 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = opts.HeartbeatTTL / 3
	}
	if opts.HeartbeatInterval >= opts.HeartbeatTTL {
		return nil, errors.New("redispresence: HeartbeatInterval must be shorter than HeartbeatTTL")
	}
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{
		opts: opts, rdb: opts.Client, now: opts.Now,
		log:            log.With("component", "presence", "node", opts.Node),
		keyNodes:       opts.Prefix + ":nodes",
		keyAlive:       opts.Prefix + ":node:" + opts.Node + ":alive",
		keyNodeSockets: opts.Prefix + ":node:" + opts.Node + ":sockets",
		sockets:        make(map[string]string),
		perUser:        make(map[string]int),
		stop:           make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	if err := s.heartbeat(ctx); err != nil {
		s.log.Error("presence: first heartbeat failed; retrying in the background", "err", err)
	}
	cancel()
	s.wg.Add(2)
	go s.loop(opts.HeartbeatInterval, s.heartbeat)
	go s.loop(opts.ReapInterval, func(ctx context.Context) error { _, err := s.ReapDead(ctx); return err })
	return s, nil
}

// Node is this node's id.
func (s *Service) Node() string { return s.opts.Node }

func (s *Service) userSockets(u string) string { return s.opts.Prefix + ":user:" + u + ":sockets" }
func (s *Service) userStatus(u string) string  { return s.opts.Prefix + ":user:" + u + ":status" }
func (s *Service) member(socketID string) string {
	return s.opts.Node + "|" + socketID
}

var connectScript = redis.NewScript(`
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  redis.call('SET', KEYS[3], 'online')
  return 1
end
return 0`)

// disconnectScript returns nil for an unknown socket, "" while other sockets remain, and the
// status the user showed when this was the last one.
var disconnectScript = redis.NewScript(`
local removed = redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
if removed == 0 then return false end
if redis.call('SCARD', KEYS[1]) == 0 then
  local st = redis.call('GET', KEYS[3])
  redis.call('DEL', KEYS[3])
  return st or 'online'
end
return ''`)

// setStatusScript returns nil without sockets, else the previous status.
var setStatusScript = redis.NewScript(`
if redis.call('SCARD', KEYS[1]) == 0 then return false end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
return old or ''`)

// heartbeatScript refreshes the alive key; 1 means the node was not in the node set (first beat,
// reaped meanwhile, or Redis lost its data).
var heartbeatScript = redis.NewScript(`
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return redis.call('SADD', KEYS[2], ARGV[1])`)

// reapScript removes a node whose heartbeat expired (ARGV[3] = "force": even if alive, for Close)
// and returns {user, previous status, ...} of the users left without sockets. Atomic: of several
// survivors only one gets the list.
var reapScript = redis.NewScript(`
if ARGV[3] ~= 'force' and redis.call('EXISTS', KEYS[2]) == 1 then return {} end
if ARGV[3] ~= 'force' and redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 0 then return {} end
local all = redis.call('HGETALL', KEYS[3])
local out = {}
for i = 1, #all, 2 do
  local uk = ARGV[1] .. ':user:' .. all[i+1] .. ':sockets'
  if redis.call('SREM', uk, ARGV[2] .. '|' .. all[i]) == 1 and redis.call('SCARD', uk) == 0 then
    local sk = ARGV[1] .. ':user:' .. all[i+1] .. ':status'
    local st = redis.call('GET', sk)
    redis.call('DEL', sk)
    table.insert(out, all[i+1])
    table.insert(out, st or 'online')
  end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[1], ARGV[2])
return out`)

func checkIDs(userID, socketID string) error {
	if userID == "" || socketID == "" {
		return errors.New("presence: empty user or socket id")
	}
	return nil
}

func (s *Service) markDirty() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

// Connect implements presence.Service.
func (s *Service) Connect(ctx context.Context, userID, socketID string) (bool, error) {
	if err := checkIDs(userID, socketID); err != nil {
		return false, err
	}
	unlock := s.ops.lock(userID)
	defer unlock()
	s.mu.Lock()
	if _, ok := s.sockets[socketID]; !ok {
		s.sockets[socketID] = userID
		s.perUser[userID]++
	}
	onlyHere := s.perUser[userID] == 1
	s.mu.Unlock()
	on, err := s.connect(ctx, userID, socketID)
	if err != nil && errors.Is(err, errRedis) && onlyHere {
		// Redis unreachable: fall back to this node's view (its first socket of the user). When Redis
		// is back, reconcile registers the socket and may announce online once more.
		return true, errors.Join(err, s.changed(ctx, userID, presence.Online, time.Time{}))
	}
	return on, err
}

// errRedis marks errors of Redis itself (as opposed to side effects: saving, telling friends).
var errRedis = errors.New("redis unreachable")

// connect registers a socket in Redis and announces online when it is the user's first; the caller
// holds the user's lock.
func (s *Service) connect(ctx context.Context, userID, socketID string) (bool, error) {
	first, err := connectScript.Run(ctx, s.rdb,
		[]string{s.userSockets(userID), s.keyNodeSockets, s.userStatus(userID)},
		s.member(socketID), socketID, userID).Int()
	if err != nil {
		s.markDirty()
		return false, fmt.Errorf("presence: connect %s: %w: %w", userID, errRedis, err)
	}
	if first != 1 {
		return false, nil
	}
	return true, s.changed(ctx, userID, presence.Online, time.Time{})
}

// Disconnect implements presence.Service.
func (s *Service) Disconnect(ctx context.Context, userID, socketID string) (bool, error) {
	if err := checkIDs(userID, socketID); err != nil {
		return false, err
	}
	unlock := s.ops.lock(userID)
	defer unlock()
	s.mu.Lock()
	held := s.sockets[socketID] == userID
	if held {
		delete(s.sockets, socketID)
		if s.perUser[userID]--; s.perUser[userID] <= 0 {
			delete(s.perUser, userID)
		}
	}
	lastHere := held && s.perUser[userID] == 0
	s.mu.Unlock()
	off, err := s.disconnect(ctx, userID, socketID)
	if err != nil && errors.Is(err, errRedis) && lastHere {
		// Redis unreachable: fall back to this node's view (its last socket of the user): save
		// lastActive and tell friends. When Redis is back, reconcile removes the socket there and may
		// announce offline once more.
		return true, errors.Join(err, s.wentOffline(ctx, userID, presence.Online))
	}
	return off, err
}

func (s *Service) disconnect(ctx context.Context, userID, socketID string) (bool, error) {
	prev, err := disconnectScript.Run(ctx, s.rdb,
		[]string{s.userSockets(userID), s.keyNodeSockets, s.userStatus(userID)},
		s.member(socketID), socketID).Text()
	if errors.Is(err, redis.Nil) {
		return false, nil // not a socket we registered
	}
	if err != nil {
		s.markDirty()
		return false, fmt.Errorf("presence: disconnect %s: %w: %w", userID, errRedis, err)
	}
	if prev == "" {
		return false, nil
	}
	return true, s.wentOffline(ctx, userID, prev)
}

// wentOffline saves lastActive and tells the friends, unless they already see offline (the user
// chose to appear offline).
func (s *Service) wentOffline(ctx context.Context, userID, prevStatus string) error {
	at := s.now().UTC()
	if prevStatus == presence.Offline {
		if err := s.opts.Users.SavePresence(ctx, userID, presence.Offline, at); err != nil {
			return fmt.Errorf("presence: save offline of %s: %w", userID, err)
		}
		return nil
	}
	return s.changed(ctx, userID, presence.Offline, at)
}

// SetStatus implements presence.Service.
func (s *Service) SetStatus(ctx context.Context, userID, status string) error {
	if !presence.Valid(status) {
		return fmt.Errorf("%w: %q", presence.ErrInvalidStatus, status)
	}
	unlock := s.ops.lock(userID)
	defer unlock()
	old, err := setStatusScript.Run(ctx, s.rdb, []string{s.userSockets(userID), s.userStatus(userID)}, status).Text()
	if errors.Is(err, redis.Nil) {
		return presence.ErrNotConnected
	}
	if err != nil {
		return fmt.Errorf("presence: set status of %s: %w", userID, err)
	}
	if old == status {
		return nil
	}
	return s.changed(ctx, userID, status, time.Time{})
}

// Status implements presence.Service.
func (s *Service) Status(ctx context.Context, userID string) (string, error) {
	st, err := s.rdb.Get(ctx, s.userStatus(userID)).Result()
	if errors.Is(err, redis.Nil) {
		return presence.Offline, nil
	}
	if err != nil {
		return "", fmt.Errorf("presence: status of %s: %w", userID, err)
	}
	return st, nil
}

// Statuses implements presence.Service.
func (s *Service) Statuses(ctx context.Context, userIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	keys := make([]string, len(userIDs))
	for i, id := range userIDs {
		keys[i] = s.userStatus(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: statuses: %w", err)
	}
	for i, id := range userIDs {
		if v, ok := vals[i].(string); ok && v != "" {
			out[id] = v
		} else {
			out[id] = presence.Offline
		}
	}
	return out, nil
}

// changed saves the new status and tells the friends; both are tried even when the other fails.
func (s *Service) changed(ctx context.Context, userID, status string, lastActive time.Time) error {
	var errs []error
	if err := s.opts.Users.SavePresence(ctx, userID, status, lastActive); err != nil {
		errs = append(errs, fmt.Errorf("presence: save %s of %s: %w", status, userID, err))
	}
	ids, err := s.opts.Friends.FriendIDs(ctx, userID)
	if err != nil {
		errs = append(errs, fmt.Errorf("presence: list friends of %s: %w", userID, err))
	}
	p := presence.StatusPayload{UserID: userID, Status: status, UpdatedAt: realtime.ISOTime(s.now())}
	for _, f := range ids {
		if err := s.opts.Emitter.ToRoom(realtime.UserRoom(f)).Emit(presence.StatusEvent, p); err != nil {
			errs = append(errs, fmt.Errorf("presence: emit %s to %s: %w", presence.StatusEvent, f, err))
		}
	}
	return errors.Join(errs...)
}

// loop runs fn every interval until Close; errors are logged once per outage by fn's callers.
func (s *Service) loop(every time.Duration, fn func(context.Context) error) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := fn(ctx)
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			s.log.Error("presence: redis unreachable; users of dead nodes are not cleaned up until it is back", "err", err)
		case err == nil && failing:
			failing = false
			s.log.Info("presence: redis reachable again")
		}
	}
}

// heartbeat refreshes this node's alive key and reconciles when the node's records were lost or a
// write failed.
func (s *Service) heartbeat(ctx context.Context) error {
	added, err := heartbeatScript.Run(ctx, s.rdb, []string{s.keyAlive, s.keyNodes},
		s.opts.Node, s.opts.HeartbeatTTL.Milliseconds()).Int()
	if err != nil {
		s.markDirty()
		return err
	}
	s.mu.Lock()
	need := s.dirty || (added == 1 && len(s.sockets) > 0)
	s.dirty = false
	s.mu.Unlock()
	if need {
		if err := s.reconcile(ctx); err != nil {
			s.markDirty()
			return err
		}
	}
	return nil
}

// reconcile makes this node's socket hash in Redis match the sockets it holds: sockets gone while
// Redis was unreachable are disconnected (announcing offline), sockets Redis lost are connected again
// (announcing online).
func (s *Service) reconcile(ctx context.Context) error {
	remote, err := s.rdb.HGetAll(ctx, s.keyNodeSockets).Result()
	if err != nil {
		return err
	}
	s.mu.Lock()
	local := make(map[string]string, len(s.sockets))
	for k, v := range s.sockets {
		local[k] = v
	}
	s.mu.Unlock()
	var errs []error
	for sock, user := range remote {
		if local[sock] == user {
			continue
		}
		unlock := s.ops.lock(user)
		s.mu.Lock()
		held := s.sockets[sock] == user
		s.mu.Unlock()
		if !held {
			if _, err := s.disconnect(ctx, user, sock); err != nil {
				errs = append(errs, err)
			}
		}
		unlock()
	}
	for sock, user := range local {
		if remote[sock] == user {
			continue
		}
		unlock := s.ops.lock(user)
		s.mu.Lock()
		held := s.sockets[sock] == user
		s.mu.Unlock()
		if held {
			if _, err := s.connect(ctx, user, sock); err != nil {
				errs = append(errs, err)
			}
		}
		unlock()
	}
	if len(remote) > 0 || len(local) > 0 {
		s.log.Info("presence: sockets reconciled with redis", "held", len(local), "registered", len(remote))
	}
	return errors.Join(errs...)
}

// ReapDead removes the nodes whose heartbeat expired and announces their users offline (those
// without sockets elsewhere). It returns how many users went offline. The reaper loop calls it every
// ReapInterval; it is exported for tests and tools.
func (s *Service) ReapDead(ctx context.Context) (int, error) {
	nodes, err := s.rdb.SMembers(ctx, s.keyNodes).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, node := range nodes {
		if node == s.opts.Node {
			continue
		}
		k, err := s.reap(ctx, node, false)
		n += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func (s *Service) reap(ctx context.Context, node string, force bool) (int, error) {
	mode := ""
	if force {
		mode = "force"
	}
	p := s.opts.Prefix
	res, err := reapScript.Run(ctx, s.rdb,
		[]string{p + ":nodes", p + ":node:" + node + ":alive", p + ":node:" + node + ":sockets"},
		p, node, mode).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("presence: reap node %s: %w", node, err)
	}
	if len(res) == 0 {
		return 0, nil
	}
	if !force {
		s.log.Warn("presence: node stopped heartbeating; its users without other sockets are now offline",
			"deadNode", node, "users", len(res)/2)
	}
	var errs []error
	for i := 0; i+1 < len(res); i += 2 {
		user, prev := res[i], res[i+1]
		unlock := s.ops.lock(user)
		if err := s.wentOffline(ctx, user, prev); err != nil {
			errs = append(errs, err)
		}
		unlock()
	}
	return len(res) / 2, errors.Join(errs...)
}

// Close stops the loops and removes this node from Redis; users whose sockets were still held here
// (disconnect handlers that did not run) are announced offline. Bounded by ctx.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	if err := s.rdb.Del(ctx, s.keyAlive).Err(); err != nil {
		return fmt.Errorf("presence: close: %w", err)
	}
	_, err := s.reap(ctx, s.opts.Node, true)
	return err
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

var _ presence.Service = (*Service)(nil)
