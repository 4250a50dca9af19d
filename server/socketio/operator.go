package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/maoga/maoga/adapter"
)

// BroadcastOperator selects sockets of a namespace (in the whole cluster unless Local) and acts on
// them. It is immutable: every modifier returns a new operator.
type BroadcastOperator struct {
	nsp    *Namespace
	rooms  []string
	except []string
	flags  adapter.Flags
}

func (b *BroadcastOperator) clone() *BroadcastOperator {
	c := *b
	c.rooms = append([]string(nil), b.rooms...)
	c.except = append([]string(nil), b.except...)
	return &c
}

// To adds rooms to the selection (union).
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !contains(c.rooms, r) {
			c.rooms = append(c.rooms, r)
		}
	}
	return c
}

// In is To.
func (b *BroadcastOperator) In(rooms ...string) *BroadcastOperator { return b.To(rooms...) }

// Except removes the sockets in any of rooms from the selection.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	c := b.clone()
	for _, r := range rooms {
		if !contains(c.except, r) {
			c.except = append(c.except, r)
		}
	}
	return c
}

// Volatile lets the packet be dropped for clients whose transport is not writable right now.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	c := b.clone()
	c.flags.Volatile = true
	return c
}

// Local restricts the operation to the sockets of this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	c := b.clone()
	c.flags.Local = true
	return c
}

// Timeout bounds EmitWithAck (and the cluster requests).
func (b *BroadcastOperator) Timeout(d time.Duration) *BroadcastOperator {
	c := b.clone()
	c.flags.Timeout = d
	return c
}

func (b *BroadcastOperator) opts() adapter.BroadcastOptions {
	return adapter.BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Emit sends an event to every selected socket. The packet is encoded once.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	p, err := eventPacket(b.nsp.name, event, args)
	if err != nil {
		return err
	}
	return b.nsp.adapter.Broadcast(p, b.opts())
}

// EmitWithAck sends an event to every selected socket and returns one reply (the client's ack
// arguments) per socket. It waits until every client of every node answered, or until the Timeout
// or ctx ends: then it returns the replies so far with an error wrapping adapter.ErrTimeout.
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([][]json.RawMessage, error) {
	p, err := eventPacket(b.nsp.name, event, args)
	if err != nil {
		return nil, err
	}
	opts := b.opts()
	if opts.Flags.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Flags.Timeout)
		defer cancel()
	}
	if dl, ok := ctx.Deadline(); ok && opts.Flags.Timeout <= 0 {
		opts.Flags.Timeout = time.Until(dl)
	}
	servers := 1
	if !opts.Flags.Local {
		if servers, err = b.nsp.adapter.ServerCount(ctx); err != nil {
			return nil, err
		}
	}
	var (
		mu       sync.Mutex
		replies  [][]json.RawMessage
		expected int
		counted  int
		done     = make(chan struct{})
		closed   bool
	)
	check := func() { // with mu held
		if !closed && counted >= servers && len(replies) >= expected {
			closed = true
			close(done)
		}
	}
	err = b.nsp.adapter.BroadcastWithAck(p, opts,
		func(n int) {
			mu.Lock()
			expected += n
			counted++
			check()
			mu.Unlock()
		},
		func(reply []json.RawMessage) {
			mu.Lock()
			if !closed {
				replies = append(replies, reply)
				check()
			}
			mu.Unlock()
		})
	if err != nil {
		return nil, err
	}
	select {
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		if replies == nil {
			replies = [][]json.RawMessage{}
		}
		return replies, nil
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		closed = true
		got := replies
		return got, fmt.Errorf("socketio: %d of %d clients acknowledged: %w (%v)", len(got), expected, adapter.ErrTimeout, ctx.Err())
	}
}

// FetchSockets returns the selected sockets of the cluster.
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	opts := b.opts()
	if opts.Flags.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Flags.Timeout)
		defer cancel()
	}
	details, err := b.nsp.adapter.FetchSockets(ctx, opts)
	out := make([]*RemoteSocket, 0, len(details))
	for _, d := range details {
		out = append(out, &RemoteSocket{nsp: b.nsp, details: d})
	}
	return out, err
}

// SocketsJoin makes the selected sockets join rooms.
func (b *BroadcastOperator) SocketsJoin(rooms ...string) error {
	return b.nsp.adapter.AddSockets(b.opts(), rooms)
}

// SocketsLeave makes the selected sockets leave rooms.
func (b *BroadcastOperator) SocketsLeave(rooms ...string) error {
	return b.nsp.adapter.DelSockets(b.opts(), rooms)
}

// DisconnectSockets disconnects the selected sockets (close: also their engine connections).
func (b *BroadcastOperator) DisconnectSockets(close bool) error {
	return b.nsp.adapter.DisconnectSockets(b.opts(), close)
}

// RemoteSocket is a socket found by FetchSockets, on this node or another; its methods act through
// the adapter, so they work for both.
type RemoteSocket struct {
	nsp     *Namespace
	details adapter.SocketDetails
}

// ID returns the socket id.
func (r *RemoteSocket) ID() string { return r.details.ID }

// Handshake returns the socket's handshake.
func (r *RemoteSocket) Handshake() *Handshake { return &r.details.Handshake }

// Rooms returns the socket's rooms when it was fetched.
func (r *RemoteSocket) Rooms() []string { return r.details.Rooms }

// Data returns the socket's data when it was fetched (decoded from the wire for remote sockets).
func (r *RemoteSocket) Data() any { return r.details.Data }

func (r *RemoteSocket) op() *BroadcastOperator {
	return &BroadcastOperator{nsp: r.nsp, rooms: []string{r.details.ID}}
}

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error { return r.op().Emit(event, args...) }

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(rooms ...string) error { return r.op().SocketsJoin(rooms...) }

// Leave makes the socket leave rooms.
func (r *RemoteSocket) Leave(rooms ...string) error { return r.op().SocketsLeave(rooms...) }

// Disconnect disconnects the socket.
func (r *RemoteSocket) Disconnect(close bool) error { return r.op().DisconnectSockets(close) }
