// Package redisbus is the cluster events.Bus: every node delivers an event to its own subscribers
// in process and shares it with the other nodes over Redis Pub/Sub (channel "app:events", as in the
// documents' distributed events).
//
// It fixes the documents' double handling (they emit locally and then again when their own message
// comes back from Redis):
//
//   - an event published on a node is handled there once, in process, at Publish time; its copy
//     coming back from Redis is recognised by Event.Origin (this node's unique id) and ignored;
//   - every other node handles it once (its Local handlers run there);
//   - ClusterOnce handlers (stored notifications, …) run once in the whole cluster: before running,
//     a node claims "<prefix>:once:<event id>:<handler name>" with SET NX and a TTL; only the node
//     whose claim succeeds runs the handler. The publishing node usually wins (it starts first).
//
// Redis down: publishing to other nodes is dropped (counted in Stats, logged once per outage), local
// delivery goes on, the subscriber reconnects with backoff. A ClusterOnce handler whose claim cannot
// reach Redis runs only on the publishing node (a remote copy could only have arrived through Redis,
// so the publisher is the one node sure to have the event). Events published while Redis was down are
// not replayed to other nodes (Pub/Sub has no history).
//
// Message on the wire (JSON): {"id","event","data","origin","at"} — "event" and "data" as the
// documents' {event, data, timestamp}, plus the id and origin the fix needs.
package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/maoga/maoga/services/events"
)

// Options configure a Bus. Zero values take the defaults.
type Options struct {
	// Channel is the Pub/Sub channel shared by all nodes (default "app:events").
	Channel string
	// ClaimPrefix prefixes the ClusterOnce claim keys (default "app:events").
	ClaimPrefix string
	// ClaimTTL is how long a ClusterOnce claim is kept (default 10m): longer than any delivery delay.
	ClaimTTL time.Duration
	// Origin names this node; default hostname-pid-random (it must be unique per running process).
	Origin string
	// QueueSize bounds the events waiting to be published to Redis (default 4096); past it they are
	// dropped (Stats.Dropped) instead of blocking the publisher.
	QueueSize int
	// Memory configures the in-process delivery (queue sizes, handler timeout, logger).
	Memory events.MemoryOptions
	Logger *slog.Logger
}

// Stats counts what went to Redis.
type Stats struct {
	Published int64 // events sent to other nodes
	Dropped   int64 // events not sent (Redis down, queue full, encoding)
	Received  int64 // events received from other nodes
}

// Bus is one node of the cluster bus.
type Bus struct {
	opts   Options
	client redis.UniversalClient
	local  *events.Memory
	log    *slog.Logger

	out  chan []byte
	stop chan struct{}
	wg   sync.WaitGroup

	published, dropped, received atomic.Int64
	down                         atomic.Bool // logged once per outage

	mu     sync.Mutex
	closed bool
	ps     *redis.PubSub
}

const (
	backoffMin     = 50 * time.Millisecond
	backoffMax     = 2 * time.Second
	publishTimeout = 3 * time.Second
	claimTimeout   = 2 * time.Second
)

// New starts a node of the bus on client. Close stops it (the client stays open: it is the caller's).
func New(client redis.UniversalClient, opts Options) *Bus {
	if opts.Channel == "" {
		opts.Channel = "app:events"
	}
	if opts.ClaimPrefix == "" {
		opts.ClaimPrefix = "app:events"
	}
	if opts.ClaimTTL <= 0 {
		opts.ClaimTTL = 10 * time.Minute
	}
	if opts.Origin == "" {
		opts.Origin = NodeID()
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	mopts := opts.Memory
	mopts.Origin = opts.Origin
	if mopts.Logger == nil {
		mopts.Logger = log
	}
	b := &Bus{
		opts:   opts,
		client: client,
		local:  events.NewMemory(mopts),
		log:    log.With("component", "events", "bus", "redis", "node", opts.Origin),
		out:    make(chan []byte, opts.QueueSize),
		stop:   make(chan struct{}),
	}
	b.ps = client.Subscribe(context.Background()) // no channel yet: the receive loop subscribes
	b.wg.Add(2)
	go b.publishLoop()
	go b.receiveLoop()
	return b
}

// NodeID returns a process-unique node name: hostname-pid-random.
func NodeID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// Origin is this node's id (Event.Origin of what it publishes).
func (b *Bus) Origin() string { return b.opts.Origin }

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{Published: b.published.Load(), Dropped: b.dropped.Load(), Received: b.received.Load()}
}

// wire is the Redis message.
type wire struct {
	ID     string          `json:"id"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Origin string          `json:"origin"`
	At     time.Time       `json:"at"`
}

// Publish implements events.Bus: local subscribers get e now (in process), the other nodes through
// Redis. The error reports local delivery only; Redis problems are counted and logged.
func (b *Bus) Publish(ctx context.Context, e events.Event) error {
	if e.Name == "" {
		return errors.New("events: publish: empty event name")
	}
	e = events.Stamp(e, b.opts.Origin)
	if err := b.local.Publish(ctx, e); err != nil {
		return err
	}
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	msg, err := json.Marshal(wire{ID: e.ID, Event: e.Name, Data: data, Origin: e.Origin, At: e.At})
	if err != nil {
		b.dropped.Add(1)
		b.log.Error("event not shared with other nodes: encoding failed", "event", e.Name, "eventId", e.ID, "err", err)
		return nil
	}
	select {
	case b.out <- msg:
	default:
		if b.dropped.Add(1) == 1 || !b.down.Load() {
			b.log.Warn("event not shared with other nodes: publish queue full", "event", e.Name, "eventId", e.ID)
		}
	}
	return nil
}

// Announce publishes e to the nodes of a cluster from a process that is not one of them (the admin
// command): synchronously, without a Bus (no subscription, no queue), on opts.Channel (default
// "app:events"). It returns how many subscribers Redis delivered it to, i.e. how many nodes heard it.
func Announce(ctx context.Context, client redis.UniversalClient, opts Options, e events.Event) (int64, error) {
	if e.Name == "" {
		return 0, errors.New("events: publish: empty event name")
	}
	if opts.Channel == "" {
		opts.Channel = "app:events"
	}
	if opts.Origin == "" {
		opts.Origin = NodeID()
	}
	e = events.Stamp(e, opts.Origin)
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	msg, err := json.Marshal(wire{ID: e.ID, Event: e.Name, Data: data, Origin: e.Origin, At: e.At})
	if err != nil {
		return 0, fmt.Errorf("redisbus: encode %s: %w", e.Name, err)
	}
	return client.Publish(ctx, opts.Channel, msg).Result()
}

// Subscribe implements events.Bus. ClusterOnce handlers are wrapped with the cluster-wide claim.
func (b *Bus) Subscribe(name string, h events.Handler) (unsubscribe func()) {
	if h.Scope == events.ClusterOnce && h.Handle != nil {
		inner := h.Handle
		handlerName := h.Name
		h.Handle = func(ctx context.Context, e events.Event) error {
			ok, err := b.claim(ctx, e, handlerName)
			if err != nil {
				if e.Origin != b.opts.Origin {
					return fmt.Errorf("redisbus: claim of %s for %s failed, left to the publishing node: %w", e.ID, handlerName, err)
				}
				b.log.Warn("cluster-once claim failed; running on the publishing node", "event", e.Name,
					"eventId", e.ID, "handler", handlerName, "err", err)
				ok = true
			}
			if !ok {
				return nil // another node runs it
			}
			err = inner(ctx, e)
			if err != nil {
				// Give the claim back: the bus journals the failed delivery (MemoryOptions.Journal),
				// and its retry — here or on another node — must be able to claim it again.
				b.unclaim(e, handlerName)
			}
			return err
		}
	}
	return b.local.Subscribe(name, h)
}

// claim reports whether this node is the one to run handler on e.
func (b *Bus) claim(ctx context.Context, e events.Event, handler string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	key := b.opts.ClaimPrefix + ":once:" + e.ID + ":" + handler
	return b.client.SetNX(ctx, key, b.opts.Origin, b.opts.ClaimTTL).Result()
}

// unclaimScript deletes a claim only if this node holds it.
var unclaimScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// unclaim gives up this node's claim of handler on e (a failed run), so that a retry can claim it.
func (b *Bus) unclaim(e events.Event, handler string) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	key := b.opts.ClaimPrefix + ":once:" + e.ID + ":" + handler
	if err := unclaimScript.Run(ctx, b.client, []string{key}, b.opts.Origin).Err(); err != nil {
		b.log.Warn("cluster-once claim not given back; a retry of this delivery will skip it until the claim expires",
			"event", e.Name, "eventId", e.ID, "handler", handler, "ttl", b.opts.ClaimTTL, "err", err)
	}
}

// LocalStats returns the counters of the in-process delivery (journal spills, retries, drops).
func (b *Bus) LocalStats() events.MemoryStats { return b.local.Stats() }

func (b *Bus) publishLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case msg := <-b.out:
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			err := b.client.Publish(ctx, b.opts.Channel, msg).Err()
			cancel()
			if err != nil {
				b.dropped.Add(1)
				b.markDown(err)
				continue
			}
			b.markUp()
			b.published.Add(1)
		}
	}
}

// receiveLoop subscribes to the channel and hands other nodes' events to the local subscribers. On
// errors it waits (backoff) and tries again; go-redis reconnects the Pub/Sub connection and
// resubscribes.
func (b *Bus) receiveLoop() {
	defer b.wg.Done()
	backoff := backoffMin
	subscribed := false
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		if !subscribed {
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			err := b.ps.Subscribe(ctx, b.opts.Channel)
			cancel()
			if err != nil {
				if b.closing() {
					return
				}
				b.markDown(err)
				if !b.sleep(&backoff) {
					return
				}
				continue
			}
			subscribed = true
		}
		msg, err := b.ps.ReceiveTimeout(context.Background(), 3*time.Second)
		if err != nil {
			if b.closing() {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// Idle: check the connection is alive (a ping answer arrives as a Pong message).
				if perr := b.ps.Ping(context.Background()); perr != nil {
					b.markDown(perr)
					if !b.sleep(&backoff) {
						return
					}
				}
				continue
			}
			b.markDown(err)
			if !b.sleep(&backoff) {
				return
			}
			continue
		}
		backoff = backoffMin
		switch m := msg.(type) {
		case *redis.Subscription:
			b.markUp()
		case *redis.Pong:
			b.markUp()
		case *redis.Message:
			b.markUp()
			b.deliver(m.Payload)
		}
	}
}

func (b *Bus) deliver(payload string) {
	var w wire
	if err := json.Unmarshal([]byte(payload), &w); err != nil || w.Event == "" || w.ID == "" {
		b.log.Warn("ignoring malformed event from Redis", "err", err, "bytes", len(payload))
		return
	}
	if w.Origin == b.opts.Origin {
		return // published here: already handled locally
	}
	b.received.Add(1)
	e := events.Event{Name: w.Event, Data: w.Data, ID: w.ID, Origin: w.Origin, At: w.At}
	if err := b.local.Publish(context.Background(), e); err != nil && !errors.Is(err, events.ErrClosed) {
		b.log.Error("event from another node not delivered", "event", e.Name, "eventId", e.ID, "err", err)
	}
}

func (b *Bus) sleep(backoff *time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	*backoff = min(*backoff*2, backoffMax)
	select {
	case <-b.stop:
		return false
	case <-t.C:
		return true
	}
}

func (b *Bus) closing() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

func (b *Bus) markDown(err error) {
	if !b.down.Swap(true) {
		b.log.Error("redis unreachable: events stay on this node until it is back", "err", err)
	}
}

func (b *Bus) markUp() {
	if b.down.Swap(false) {
		b.log.Info("redis reachable again: events are shared with other nodes")
	}
}

// Healthy reports whether the last Redis operation worked.
func (b *Bus) Healthy() bool { return !b.down.Load() }

// Close stops sharing with other nodes, then lets local subscribers finish what is queued (bounded
// by ctx, as events.Memory.Close). Events still waiting to be published are dropped.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	_ = b.ps.Close() // unblocks ReceiveTimeout
	b.wg.Wait()
	return b.local.Close(ctx)
}

var _ events.Bus = (*Bus)(nil)
