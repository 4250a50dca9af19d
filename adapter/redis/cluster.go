package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/adapter"
)

// Options configure the Redis adapter. Zero values take the defaults of @socket.io/redis-adapter.
type Options struct {
	// Key is the prefix of the Pub/Sub channels (default "socket.io"); it must match the Node servers'
	// key (or channelPrefix in sharded mode) to form one cluster.
	Key string
	// RequestsTimeout bounds the wait for other nodes' answers (default 5s).
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel sends responses to `<key>-response#<nsp>#<requester uid>#`
	// instead of the common response channel (classic mode).
	PublishOnSpecificResponseChannel bool
	// Sharded uses Redis 7 sharded Pub/Sub (SSUBSCRIBE/SPUBLISH) with the channel layout and message
	// format of Node's createShardedAdapter. All nodes of a cluster must use the same mode.
	Sharded bool
	// SubscriptionMode of the sharded mode, as Node's option of that name: "dynamic" (default: a
	// channel per public room, subscribed while the room has local members), "static" (only the
	// namespace channels) or "dynamic-private" (socket-id rooms get channels too). All nodes of a
	// cluster must use the same mode.
	SubscriptionMode string
	// QueueSize bounds the messages waiting to be published (default 4096); past it they are dropped
	// (counted in Stats) rather than blocking the emitting goroutine.
	QueueSize int
	Logger    *slog.Logger
}

const (
	defaultKey       = "socket.io"
	defaultTimeout   = 5 * time.Second
	defaultQueueSize = 4096
	publishTimeout   = 3 * time.Second
	idlePing         = 3 * time.Second // liveness probe of an idle subscriber connection
	backoffMin       = 50 * time.Millisecond
	backoffMax       = 2 * time.Second
)

// Cluster is this process's link to the other nodes through Redis, shared by the adapters of all its
// namespaces: one subscriber connection with its receive loop, one publishing goroutine fed by a
// bounded queue (so emitting never waits on Redis), and the health state behind Healthy.
//
// Redis down: local delivery goes on (publishes are dropped while down, not queued for later), the
// subscriber reconnects with backoff and go-redis resubscribes every channel; the outage is logged
// once when it starts and once when it ends.
type Cluster struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger

	mu       sync.Mutex
	adapters map[*Adapter]struct{}
	exact    map[string]*Adapter // channel → adapter
	patterns map[string]*Adapter // pattern → adapter (classic broadcast channels)
	ps       *redis.PubSub
	stop     chan struct{}
	wg       sync.WaitGroup
	running  bool

	out chan outMsg

	up        atomic.Bool // Redis reachable: subscriber confirmed and publishing works
	stateMu   sync.Mutex
	down      bool // an outage has been logged and not yet its end
	lastErr   error
	dropped   atomic.Int64
	published atomic.Int64
	full      atomic.Bool // the queue overflowed and that was logged; reset when it has room again
}

type outOp uint8

const (
	opPublish outOp = iota
	opSSubscribe
	opSUnsubscribe
)

type outMsg struct {
	op      outOp
	channel string
	payload []byte
}

// NewCluster returns the link for client. Adapters start it on their first Init.
func NewCluster(client redis.UniversalClient, opts Options) *Cluster {
	if opts.Key == "" {
		opts.Key = defaultKey
	}
	if opts.RequestsTimeout <= 0 {
		opts.RequestsTimeout = defaultTimeout
	}
	if opts.SubscriptionMode == "" {
		opts.SubscriptionMode = "dynamic"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultQueueSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cluster{
		client:   client,
		opts:     opts,
		log:      opts.Logger.With("component", "redisadapter"),
		adapters: make(map[*Adapter]struct{}),
		exact:    make(map[string]*Adapter),
		patterns: make(map[string]*Adapter),
	}
}

// New returns the adapter Factory of a cluster node on client. Use NewCluster when the application
// needs Healthy/Check for its readiness probe.
func New(client redis.UniversalClient, opts Options) adapter.Factory {
	return NewCluster(client, opts).Factory()
}

// Factory builds the adapter of each namespace.
func (c *Cluster) Factory() adapter.Factory {
	return func(nsp adapter.Namespace) adapter.Adapter { return newAdapter(c, nsp) }
}

// Healthy reports whether Redis is reachable: the subscriber is connected and subscribed and the
// last publish worked.
func (c *Cluster) Healthy() bool { return c.up.Load() }

// Check is a readiness check: nil when healthy, otherwise why not.
func (c *Cluster) Check(context.Context) error {
	if c.up.Load() {
		return nil
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.lastErr != nil {
		return fmt.Errorf("redisadapter: redis unreachable: %w", c.lastErr)
	}
	return errors.New("redisadapter: not subscribed yet")
}

// Stats are counters for metrics.
type Stats struct {
	Published int64 // messages published
	Dropped   int64 // messages not published: Redis down or queue full
}

func (c *Cluster) Stats() Stats {
	return Stats{Published: c.published.Load(), Dropped: c.dropped.Load()}
}

// register adds an adapter and starts the loops with the first one.
func (c *Cluster) register(a *Adapter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adapters[a] = struct{}{}
	if c.running {
		return
	}
	c.running = true
	c.stop = make(chan struct{})
	c.out = make(chan outMsg, c.opts.QueueSize)
	if c.opts.Sharded {
		c.ps = c.client.SSubscribe(context.Background())
	} else {
		c.ps = c.client.Subscribe(context.Background())
	}
	c.wg.Add(2)
	go c.receiveLoop(c.ps, c.stop)
	go c.publishLoop(c.ps, c.out, c.stop)
}

// unregister removes an adapter and stops the loops with the last one.
func (c *Cluster) unregister(a *Adapter) {
	c.mu.Lock()
	delete(c.adapters, a)
	for ch, x := range c.exact {
		if x == a {
			delete(c.exact, ch)
		}
	}
	for p, x := range c.patterns {
		if x == a {
			delete(c.patterns, p)
		}
	}
	last := len(c.adapters) == 0 && c.running
	var ps *redis.PubSub
	if last {
		c.running = false
		close(c.stop)
		ps = c.ps
		c.ps = nil
	}
	c.mu.Unlock()
	if last {
		_ = ps.Close() // unblocks the receive loop
		c.wg.Wait()
		c.up.Store(false)
	}
}

// Close stops the link (and with it every adapter's cross-node delivery).
func (c *Cluster) Close() error {
	c.mu.Lock()
	list := make([]*Adapter, 0, len(c.adapters))
	for a := range c.adapters {
		list = append(list, a)
	}
	c.mu.Unlock()
	for _, a := range list {
		_ = a.Close()
	}
	return nil
}

// subscribe records the channels of an adapter and subscribes to them now (errors mark the link down;
// go-redis keeps the channels and resubscribes when it reconnects).
func (c *Cluster) subscribe(a *Adapter, patterns, channels []string) {
	c.mu.Lock()
	ps := c.ps
	for _, p := range patterns {
		c.patterns[p] = a
	}
	for _, ch := range channels {
		c.exact[ch] = a
	}
	c.mu.Unlock()
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	var err error
	if len(patterns) > 0 {
		err = ps.PSubscribe(ctx, patterns...)
	}
	if len(channels) > 0 {
		if c.opts.Sharded {
			err = errors.Join(err, ps.SSubscribe(ctx, channels...))
		} else {
			err = errors.Join(err, ps.Subscribe(ctx, channels...))
		}
	}
	if err != nil {
		c.markDown(err)
	}
}

// unsubscribe forgets the channels of an adapter (on close).
func (c *Cluster) unsubscribe(patterns, channels []string) {
	c.mu.Lock()
	ps := c.ps
	for _, p := range patterns {
		delete(c.patterns, p)
	}
	for _, ch := range channels {
		delete(c.exact, ch)
	}
	c.mu.Unlock()
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if len(patterns) > 0 {
		_ = ps.PUnsubscribe(ctx, patterns...)
	}
	if len(channels) > 0 {
		if c.opts.Sharded {
			_ = ps.SUnsubscribe(ctx, channels...)
		} else {
			_ = ps.Unsubscribe(ctx, channels...)
		}
	}
}

// dynamic (sharded mode) subscribes/unsubscribes a room channel through the publishing goroutine, so
// that joins never wait on Redis and the order with publishes is kept.
func (c *Cluster) dynamic(a *Adapter, channel string, sub bool) {
	c.mu.Lock()
	if sub {
		c.exact[channel] = a
	} else if c.exact[channel] == a {
		delete(c.exact, channel)
	}
	out := c.out
	running := c.running
	c.mu.Unlock()
	if !running {
		return
	}
	op := opSUnsubscribe
	if sub {
		op = opSSubscribe
	}
	select {
	case out <- outMsg{op: op, channel: channel}:
	default:
		c.dropped.Add(1)
	}
}

// publish queues a message; it never blocks. While Redis is down the message is dropped.
func (c *Cluster) publish(channel string, payload []byte) {
	if !c.up.Load() {
		c.dropped.Add(1)
		return
	}
	c.mu.Lock()
	out, running := c.out, c.running
	c.mu.Unlock()
	if !running {
		c.dropped.Add(1)
		return
	}
	select {
	case out <- outMsg{op: opPublish, channel: channel, payload: payload}:
		c.full.Store(false)
	default:
		c.dropped.Add(1)
		if c.full.CompareAndSwap(false, true) { // once per overflow, not per message
			c.log.Warn("redisadapter: publish queue full, dropping messages", "size", c.opts.QueueSize)
		}
	}
}

func (c *Cluster) publishLoop(ps *redis.PubSub, out chan outMsg, stop chan struct{}) {
	defer c.wg.Done()
	batch := make([]outMsg, 0, 128)
	for {
		select {
		case <-stop:
			return
		case m := <-out:
			batch = append(batch[:0], m)
		drain:
			for len(batch) < cap(batch) {
				select {
				case m := <-out:
					batch = append(batch, m)
				default:
					break drain
				}
			}
			c.flush(ps, batch)
			clear(batch)
		}
	}
}

func (c *Cluster) flush(ps *redis.PubSub, batch []outMsg) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	pipe := c.client.Pipeline()
	n := 0
	exec := func() {
		if n == 0 {
			return
		}
		_, err := pipe.Exec(ctx)
		if err != nil {
			c.dropped.Add(int64(n))
			c.markDown(err)
		} else {
			c.published.Add(int64(n))
		}
		n = 0
	}
	for _, m := range batch {
		switch m.op {
		case opPublish:
			if c.opts.Sharded {
				pipe.SPublish(ctx, m.channel, m.payload)
			} else {
				pipe.Publish(ctx, m.channel, m.payload)
			}
			n++
		case opSSubscribe, opSUnsubscribe:
			exec()
			var err error
			if m.op == opSSubscribe {
				err = ps.SSubscribe(ctx, m.channel)
			} else {
				err = ps.SUnsubscribe(ctx, m.channel)
			}
			if err != nil {
				c.markDown(err)
			}
		}
	}
	exec()
}

func (c *Cluster) receiveLoop(ps *redis.PubSub, stop chan struct{}) {
	defer c.wg.Done()
	ctx := context.Background()
	backoff := backoffMin
	idle := time.Duration(0)
	const tick = 500 * time.Millisecond
	for {
		select {
		case <-stop:
			return
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, tick)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				idle += tick
				// Probe an idle connection (and, while down, retry) so that an outage is noticed and
				// the end of one is too.
				if idle >= idlePing || !c.up.Load() {
					idle = 0
					if perr := ps.Ping(ctx); perr != nil {
						c.markDown(perr)
					}
				}
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
			c.markDown(err)
			select {
			case <-stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		backoff = backoffMin
		idle = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			c.markUp()
		case *redis.Pong:
			c.markUp()
		case *redis.Message:
			c.dispatch(m)
		}
	}
}

func (c *Cluster) dispatch(m *redis.Message) {
	c.mu.Lock()
	var a *Adapter
	if m.Pattern != "" {
		a = c.patterns[m.Pattern]
	} else {
		a = c.exact[m.Channel]
	}
	c.mu.Unlock()
	if a == nil {
		return
	}
	a.onMessage(m.Channel, []byte(m.Payload))
}

// markDown records an error; the first one of an outage is logged.
func (c *Cluster) markDown(err error) {
	c.up.Store(false)
	c.stateMu.Lock()
	c.lastErr = err
	first := !c.down
	c.down = true
	c.stateMu.Unlock()
	if first {
		c.log.Warn("redisadapter: redis unreachable; cross-node delivery paused, local delivery goes on", "err", err)
	}
}

// markUp records that Redis answered on the subscriber connection (subscriptions are restored by
// then, as go-redis resubscribes before anything else on a new connection).
func (c *Cluster) markUp() {
	if c.up.Load() {
		return
	}
	c.stateMu.Lock()
	wasDown := c.down
	c.down = false
	c.lastErr = nil
	c.stateMu.Unlock()
	c.up.Store(true)
	if wasDown {
		c.log.Info("redisadapter: redis reachable again; cross-node delivery resumed")
	}
}

// serverCount counts the subscribers of channel in the whole Redis deployment.
func (c *Cluster) serverCount(ctx context.Context, channel string) (int, error) {
	count := func(ctx context.Context, cl redis.UniversalClient) (int64, error) {
		var res map[string]int64
		var err error
		if c.opts.Sharded {
			res, err = cl.PubSubShardNumSub(ctx, channel).Result()
		} else {
			res, err = cl.PubSubNumSub(ctx, channel).Result()
		}
		return res[channel], err
	}
	if cc, ok := c.client.(*redis.ClusterClient); ok && !c.opts.Sharded {
		var mu sync.Mutex
		var total int64
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n, err := count(ctx, node)
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
		return int(total), err
	}
	n, err := count(ctx, c.client)
	return int(n), err
}
