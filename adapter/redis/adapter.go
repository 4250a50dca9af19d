// Package redisadapter is a cluster adapter for server/socketio over Redis Pub/Sub, wire-compatible
// with Node's @socket.io/redis-adapter 8.x (createAdapter, and createShardedAdapter with
// Options.Sharded) and with @socket.io/redis-emitter: Go and Node socket.io servers on the same Redis
// form one cluster.
//
// Classic mode (lib/index.ts of @socket.io/redis-adapter):
//   - broadcasts: PUBLISH `<key>#<nsp>#` (or `<key>#<nsp>#<room>#` when exactly one room is targeted),
//     MessagePack [uid, packet, {rooms, except, flags}]; every node PSUBSCRIBEs `<key>#<nsp>#*`;
//   - requests: `<key>-request#<nsp>#`, JSON {uid, requestId, type, ...} (BROADCAST with acks in
//     MessagePack), responses on `<key>-response#<nsp>#` (or `<key>-response#<nsp>#<uid>#` with
//     PublishOnSpecificResponseChannel);
//   - the number of nodes is PUBSUB NUMSUB of the request channel.
//
// Sharded mode (lib/sharded-adapter.ts, socket.io-adapter's ClusterAdapter messages
// {type, data, uid, nsp}): SPUBLISH to `<key>#<nsp>#`, single-room broadcasts to the room's channel
// `<key>#<nsp>#<room>#` (rooms that are not socket ids; subscribed while the room exists locally),
// responses to `<key>#<nsp>#<requester uid>#`; node count: PUBSUB SHARDNUMSUB. Messages are JSON
// unless they carry binary data (then MessagePack).
//
// Usage (one Cluster per socketio.Server; its Check is the readiness probe):
//
//	cluster := redisadapter.NewCluster(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), redisadapter.Options{})
//	io := socketio.NewServer(socketio.Options{Adapter: cluster.Factory()})
//	// readiness: cluster.Check(ctx) == nil
//
// Behaviour worth knowing:
//   - Acknowledgements from other nodes carry one argument (the first), as in Node's adapters.
//   - Publishing is asynchronous through a bounded queue (Options.QueueSize); while Redis is down
//     messages for other nodes are dropped (Stats().Dropped), local delivery goes on, ServerCount is 1
//     and cluster requests answer from the local node. The subscriber reconnects with backoff
//     (50ms doubling to 2s) and go-redis resubscribes every channel; outages are logged once.
//   - Received REMOTE_JOIN/LEAVE/DISCONNECT requests of our own uid are ignored because they were
//     applied locally when sent (Node applies its own on receipt; the result is the same).
//   - Sharded mode subscribes all channels on one connection: fine with a standalone Redis 7 (or a
//     single shard); with a multi-shard Redis Cluster the room channels of other slots would need a
//     connection per shard, which is not implemented.
package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/maoga/maoga/adapter"
	"github.com/maoga/maoga/server/parser"
)

// Adapter is the Redis adapter of one namespace. Local rooms and delivery are the embedded
// *adapter.Memory; the methods below add the cluster side.
type Adapter struct {
	*adapter.Memory
	c   *Cluster
	nsp adapter.Namespace
	uid string

	channel          string // broadcasts: <key>#<nsp>#
	requestChannel   string // classic
	responseChannel  string // classic: common; sharded: own (<key>#<nsp>#<uid>#)
	specificResponse string // classic

	mu          sync.Mutex
	requests    map[string]*pending
	ackRequests map[string]*ackRequest
	closed      bool

	roomMu   sync.Mutex
	dynRooms map[string]int // sharded: public rooms with local members → count
}

type pending struct {
	kind     msgKind
	expected int
	got      int
	sockets  []adapter.SocketDetails
	rooms    map[string]struct{}
	replies  [][]json.RawMessage
	done     chan struct{}
}

type ackRequest struct {
	clientCount func(int)
	ack         adapter.AckFunc
	timer       *time.Timer
}

var _ adapter.Adapter = (*Adapter)(nil)

func newAdapter(c *Cluster, nsp adapter.Namespace) *Adapter {
	a := &Adapter{
		Memory:      adapter.NewMemory(nsp),
		c:           c,
		nsp:         nsp,
		uid:         randomID(),
		requests:    make(map[string]*pending),
		ackRequests: make(map[string]*ackRequest),
		dynRooms:    make(map[string]int),
	}
	key, name := c.opts.Key, nsp.Name()
	a.channel = key + "#" + name + "#"
	if c.opts.Sharded {
		a.responseChannel = a.channel + a.uid + "#"
	} else {
		a.requestChannel = key + "-request#" + name + "#"
		a.responseChannel = key + "-response#" + name + "#"
		a.specificResponse = a.responseChannel + a.uid + "#"
	}
	return a
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// UID is the adapter's id in the cluster (the "uid" of its messages).
func (a *Adapter) UID() string { return a.uid }

// Healthy reports whether Redis is reachable (see Cluster.Healthy).
func (a *Adapter) Healthy() bool { return a.c.Healthy() }

// globEscape escapes the glob characters of a PSUBSCRIBE pattern.
func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

func (a *Adapter) Init() error {
	a.c.register(a)
	if a.c.opts.Sharded {
		a.c.subscribe(a, nil, []string{a.channel, a.responseChannel})
	} else {
		a.c.subscribe(a, []string{globEscape(a.channel) + "*"}, []string{a.requestChannel, a.responseChannel, a.specificResponse})
	}
	// Wait a little for the subscription to be confirmed, so that what the application publishes
	// right after start is not dropped; with Redis down, go on (local delivery works).
	deadline := time.Now().Add(2 * time.Second)
	for !a.c.Healthy() && time.Now().Before(deadline) {
		a.c.stateMu.Lock()
		failed := a.c.down
		a.c.stateMu.Unlock()
		if failed {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	for id, p := range a.requests {
		close(p.done)
		delete(a.requests, id)
	}
	for id, r := range a.ackRequests {
		r.timer.Stop()
		delete(a.ackRequests, id)
	}
	a.mu.Unlock()
	if a.c.opts.Sharded {
		a.roomMu.Lock()
		chans := []string{a.channel, a.responseChannel}
		for r := range a.dynRooms {
			chans = append(chans, a.channel+r+"#")
		}
		a.dynRooms = map[string]int{}
		a.roomMu.Unlock()
		a.c.unsubscribe(nil, chans)
	} else {
		a.c.unsubscribe([]string{globEscape(a.channel) + "*"}, []string{a.requestChannel, a.responseChannel, a.specificResponse})
	}
	a.c.unregister(a)
	return nil
}

// ServerCount is the number of nodes subscribed for this namespace. With Redis unreachable it is 1:
// no other node can be reached, so waiting for them would only end in a timeout.
func (a *Adapter) ServerCount(ctx context.Context) (int, error) {
	ch := a.requestChannel
	if a.c.opts.Sharded {
		ch = a.channel
	}
	if !a.c.Healthy() {
		return 1, nil
	}
	n, err := a.c.serverCount(ctx, ch)
	if err != nil {
		a.c.markDown(err)
		return 1, nil
	}
	return max(n, 1), nil
}

// ---- membership (sharded: room channels follow local rooms) ----

// looksLikeSocketID is Node's test for private rooms (socket ids are 20 characters).
func looksLikeSocketID(room string) bool { return len(room) == 20 }

func (a *Adapter) AddAll(id adapter.SocketID, rooms ...adapter.Room) {
	if !a.c.opts.Sharded {
		a.Memory.AddAll(id, rooms...)
		return
	}
	a.roomMu.Lock()
	defer a.roomMu.Unlock()
	before := a.Memory.SocketRooms(id)
	a.Memory.AddAll(id, rooms...)
	for _, r := range rooms {
		if contains(before, r) || !a.roomChannel(r, id) {
			continue
		}
		a.dynRooms[r]++
		if a.dynRooms[r] == 1 {
			a.c.dynamic(a, a.channel+r+"#", true)
		}
	}
}

// roomChannel says whether a room joined by socket id gets a channel of its own (sharded mode), as
// Node's shouldUseASeparateNamespace: every room in "dynamic-private", public rooms (not a socket's
// id) in "dynamic", none in "static".
func (a *Adapter) roomChannel(room string, id adapter.SocketID) bool {
	switch a.c.opts.SubscriptionMode {
	case "dynamic-private":
		return true
	case "static":
		return false
	}
	return room != id && a.Memory.SocketRooms(room) == nil
}

func (a *Adapter) Del(id adapter.SocketID, room adapter.Room) {
	if !a.c.opts.Sharded {
		a.Memory.Del(id, room)
		return
	}
	a.roomMu.Lock()
	defer a.roomMu.Unlock()
	was := contains(a.Memory.SocketRooms(id), room)
	a.Memory.Del(id, room)
	if was {
		a.dropDynamic(room)
	}
}

func (a *Adapter) DelAll(id adapter.SocketID) {
	if !a.c.opts.Sharded {
		a.Memory.DelAll(id)
		return
	}
	a.roomMu.Lock()
	defer a.roomMu.Unlock()
	rooms := a.Memory.SocketRooms(id)
	a.Memory.DelAll(id)
	for _, r := range rooms {
		a.dropDynamic(r)
	}
}

func (a *Adapter) dropDynamic(room string) {
	n, ok := a.dynRooms[room]
	if !ok {
		return
	}
	if n <= 1 {
		delete(a.dynRooms, room)
		a.c.dynamic(a, a.channel+room+"#", false)
		return
	}
	a.dynRooms[room] = n - 1
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- outgoing ----

// packetNsp is the namespace written into published packets: the classic format checks it, the
// sharded one carries it in the message.
func (a *Adapter) packetNsp() string {
	if a.c.opts.Sharded {
		return ""
	}
	return a.nsp.Name()
}

func (a *Adapter) Broadcast(p *parser.Packet, opts adapter.BroadcastOptions) error {
	if !opts.Flags.Local {
		if pv, err := packetValue(p, a.packetNsp()); err != nil {
			a.c.log.Warn("redisadapter: broadcast not published", "nsp", a.nsp.Name(), "err", err)
		} else {
			a.send(&message{kind: mBroadcast, packet: pv, opts: opts})
		}
	}
	return a.Memory.Broadcast(p, opts)
}

func (a *Adapter) BroadcastWithAck(p *parser.Packet, opts adapter.BroadcastOptions, clientCount func(n int), ack adapter.AckFunc) error {
	if !opts.Flags.Local {
		pv, err := packetValue(p, a.packetNsp())
		if err != nil {
			return err
		}
		id := randomID()
		wait := opts.Flags.Timeout
		if wait <= 0 {
			wait = a.c.opts.RequestsTimeout
		}
		r := &ackRequest{clientCount: clientCount, ack: ack}
		a.mu.Lock()
		a.ackRequests[id] = r
		// There is no telling when every remote client has answered: forget the request after the
		// broadcast's timeout, as Node does.
		r.timer = time.AfterFunc(wait, func() {
			a.mu.Lock()
			delete(a.ackRequests, id)
			a.mu.Unlock()
		})
		a.mu.Unlock()
		a.send(&message{kind: mBroadcast, requestID: id, packet: pv, opts: opts})
	}
	return a.Memory.BroadcastWithAck(p, opts, clientCount, ack)
}

func (a *Adapter) AddSockets(opts adapter.BroadcastOptions, rooms []adapter.Room) error {
	if !opts.Flags.Local {
		a.send(&message{kind: mJoin, opts: opts, rooms: rooms})
	}
	return a.Memory.AddSockets(opts, rooms)
}

func (a *Adapter) DelSockets(opts adapter.BroadcastOptions, rooms []adapter.Room) error {
	if !opts.Flags.Local {
		a.send(&message{kind: mLeave, opts: opts, rooms: rooms})
	}
	return a.Memory.DelSockets(opts, rooms)
}

func (a *Adapter) DisconnectSockets(opts adapter.BroadcastOptions, close bool) error {
	if !opts.Flags.Local {
		a.send(&message{kind: mDisconnect, opts: opts, close: close})
	}
	return a.Memory.DisconnectSockets(opts, close)
}

func (a *Adapter) ServerSideEmit(args []json.RawMessage) error {
	data, err := argsValue(args)
	if err != nil {
		return err
	}
	a.send(&message{kind: mServerSideEmit, data: data})
	return nil
}

func (a *Adapter) FetchSockets(ctx context.Context, opts adapter.BroadcastOptions) ([]adapter.SocketDetails, error) {
	local, _ := a.Memory.FetchSockets(ctx, opts)
	if opts.Flags.Local {
		return local, nil
	}
	p, err := a.request(ctx, &message{kind: mFetch, opts: opts}, 1)
	if p == nil {
		return local, err
	}
	return append(local, p.sockets...), err
}

func (a *Adapter) ServerSideEmitWithAck(ctx context.Context, args []json.RawMessage) ([][]json.RawMessage, error) {
	data, err := argsValue(args)
	if err != nil {
		return nil, err
	}
	p, err := a.request(ctx, &message{kind: mServerSideEmit, data: data}, 1)
	if p == nil {
		return [][]json.RawMessage{}, err
	}
	if p.replies == nil {
		p.replies = [][]json.RawMessage{}
	}
	return p.replies, err
}

// AllRooms returns the rooms of every node (classic mode; the sharded protocol has no such request).
func (a *Adapter) AllRooms(ctx context.Context) ([]string, error) {
	rooms := map[string]struct{}{}
	for _, r := range a.Memory.Rooms() {
		rooms[r] = struct{}{}
	}
	var err error
	if !a.c.opts.Sharded {
		var p *pending
		p, err = a.request(ctx, &message{kind: mAllRooms}, 1)
		if p != nil {
			for r := range p.rooms {
				rooms[r] = struct{}{}
			}
		}
	}
	out := make([]string, 0, len(rooms))
	for r := range rooms {
		out = append(out, r)
	}
	return out, err
}

// request publishes a request that every other node answers and waits for the answers, until ctx
// ends or the RequestsTimeout passes. self is the number of answers this node counts for itself.
// It returns nil when no other node is there to ask.
func (a *Adapter) request(ctx context.Context, m *message, self int) (*pending, error) {
	n, _ := a.ServerCount(ctx)
	expected := n - self
	if expected <= 0 {
		return nil, nil
	}
	m.requestID = randomID()
	p := &pending{kind: m.kind, expected: expected, rooms: map[string]struct{}{}, done: make(chan struct{})}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, fmt.Errorf("redisadapter: adapter closed")
	}
	a.requests[m.requestID] = p
	a.mu.Unlock()
	a.send(m)

	timer := time.NewTimer(a.c.opts.RequestsTimeout)
	defer timer.Stop()
	var cause error
	select {
	case <-p.done:
	case <-ctx.Done():
		cause = ctx.Err()
	case <-timer.C:
		cause = fmt.Errorf("no answer within %v", a.c.opts.RequestsTimeout)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.requests, m.requestID)
	if cause == nil && p.got >= p.expected {
		return p, nil
	}
	if cause == nil {
		cause = fmt.Errorf("adapter closed")
	}
	return p, fmt.Errorf("redisadapter: %d of %d nodes answered: %w (%v)", p.got, p.expected, adapter.ErrTimeout, cause)
}

// send encodes m for the wire format in use and queues it.
func (a *Adapter) send(m *message) {
	m.uid = a.uid
	channel, payload := a.encode(m, "")
	a.c.publish(channel, payload)
}

// respond answers request m of node m.uid.
func (a *Adapter) respond(req *message, resp *message) {
	resp.uid = a.uid
	resp.requestID = req.requestID
	channel, payload := a.encode(resp, req.uid)
	a.c.publish(channel, payload)
}

// ---- incoming ----

func (a *Adapter) onMessage(channel string, payload []byte) {
	m, err := a.decode(channel, payload)
	if err != nil {
		a.c.log.Debug("redisadapter: ignoring malformed message", "channel", channel, "err", err)
		return
	}
	if m == nil {
		return
	}
	a.handle(m)
}

func (a *Adapter) handle(m *message) {
	self := m.uid == a.uid
	switch m.kind {
	case mBroadcast:
		if self {
			return
		}
		p, err := packetFromValue(m.packet)
		if err != nil || (!a.c.opts.Sharded && p.Nsp != a.nsp.Name()) {
			return // classic: Node also drops packets of another namespace ("/" when absent)
		}
		p.Nsp = a.nsp.Name()
		if m.requestID == "" {
			_ = a.Memory.Broadcast(p, m.opts)
			return
		}
		a.mu.Lock()
		_, own := a.ackRequests[m.requestID]
		a.mu.Unlock()
		if own {
			return
		}
		_ = a.Memory.BroadcastWithAck(p, m.opts,
			func(n int) { a.respond(m, &message{kind: rClientCount, clientCount: n}) },
			func(reply []json.RawMessage) { a.respond(m, &message{kind: rAck, data: ackArg(reply)}) })
	case mJoin, mLeave, mDisconnect:
		if self {
			return // applied locally when sent
		}
		if m.sid != "" { // legacy single-socket form
			s := a.nsp.Socket(m.sid)
			if s == nil {
				return
			}
			switch m.kind {
			case mJoin:
				s.Join(m.room)
			case mLeave:
				s.Leave(m.room)
			default:
				s.Disconnect(m.close)
			}
			a.respond(m, &message{kind: rResponse})
			return
		}
		switch m.kind {
		case mJoin:
			_ = a.Memory.AddSockets(m.opts, m.rooms)
		case mLeave:
			_ = a.Memory.DelSockets(m.opts, m.rooms)
		default:
			_ = a.Memory.DisconnectSockets(m.opts, m.close)
		}
	case mFetch:
		if self {
			return
		}
		list, _ := a.Memory.FetchSockets(context.Background(), m.opts)
		a.respond(m, &message{kind: rResponse, sockets: socketsValue(list)})
	case mSockets:
		if self {
			return
		}
		a.respond(m, &message{kind: rResponse, sockets: vStrs(a.Memory.Sockets(m.opts.Rooms...))})
	case mAllRooms:
		if self {
			return
		}
		a.respond(m, &message{kind: rResponse, roomList: vStrs(a.Memory.Rooms())})
	case mServerSideEmit:
		if self {
			return
		}
		args := argsFromValue(m.data)
		if len(args) == 0 {
			return
		}
		var ack adapter.AckFunc
		if m.requestID != "" {
			var once sync.Once
			ack = func(reply []json.RawMessage) {
				once.Do(func() { a.respond(m, &message{kind: rServerSideEmit, data: ackArg(reply)}) })
			}
		}
		// The application's handlers may take their time: not on the receive loop.
		go a.nsp.OnServerSideEmit(args, ack)
	case rResponse, rServerSideEmit:
		a.onResponse(m)
	case rClientCount, rAck:
		a.mu.Lock()
		r := a.ackRequests[m.requestID]
		a.mu.Unlock()
		if r == nil {
			return
		}
		if m.kind == rClientCount {
			r.clientCount(m.clientCount)
		} else {
			r.ack(ackReply(m.data))
		}
	}
}

func (a *Adapter) onResponse(m *message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.requests[m.requestID]
	if p == nil {
		return
	}
	switch p.kind {
	case mFetch:
		p.sockets = append(p.sockets, socketsFromValue(m.sockets)...)
	case mAllRooms:
		for _, r := range m.roomList.strs() {
			p.rooms[r] = struct{}{}
		}
	case mServerSideEmit:
		if m.kind != rServerSideEmit {
			return
		}
		p.replies = append(p.replies, ackReply(m.data))
	}
	p.got++
	if p.got == p.expected {
		close(p.done)
		delete(a.requests, m.requestID)
	}
}
