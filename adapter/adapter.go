// Package adapter holds the rooms of a Socket.IO namespace and delivers broadcasts to the sockets in them.
//
// It is modelled on Node's socket.io-adapter: the Socket.IO server (server/socketio) never touches rooms
// except through an Adapter, so a cluster adapter (adapter/redis, wire-compatible with Node's
// @socket.io/redis-adapter) plugs in without a change to the server. The server hands the adapter a
// Namespace, the small view of itself the adapter needs; this package never imports server/socketio.
//
// A broadcast is encoded once (parser.Encode) and the same bytes are handed to every matching socket.
//
// Cluster adapters typically embed *Memory for the local part and add the publish/request side:
//   - Broadcast/AddSockets/DelSockets/DisconnectSockets: publish unless opts.Flags.Local, then apply locally.
//   - BroadcastWithAck: call clientCount once per node (local first), ack once per client reply;
//     the caller knows how many nodes to expect from ServerCount.
//   - FetchSockets/ServerSideEmitWithAck: request/response bounded by ctx (the caller sets a deadline).
//   - SocketDetails is plain data with JSON/msgpack tags, so it crosses the wire.
package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/maoga/maoga/server/parser"
)

// SocketID is the public id of a socket in a namespace. Every socket is implicitly in the room named by its id.
type SocketID = string

// PrivateSessionID is the secret id ("pid") a client presents to recover its session.
type PrivateSessionID = string

// Room is a room name.
type Room = string

// Flags modify a broadcast.
type Flags struct {
	Volatile bool          // drop for sockets whose transport is not writable right now; never stored for recovery
	Local    bool          // only this node: a cluster adapter must not publish
	Timeout  time.Duration // for broadcasts with ack and cluster requests; 0 = none given
}

// BroadcastOptions select sockets: members of any of Rooms (all sockets when Rooms is empty),
// minus the members of any of Except.
type BroadcastOptions struct {
	Rooms  []Room `json:"rooms" msgpack:"rooms"`
	Except []Room `json:"except" msgpack:"except"`
	Flags  Flags  `json:"flags" msgpack:"flags"`
}

// Handshake is the serializable handshake of a socket, with Node's field names so that it can cross
// a cluster to Node servers and back. MarshalJSON renders it as Node does (header and query values as
// strings, header names in lower case).
type Handshake struct {
	Headers http.Header     `json:"headers" msgpack:"headers"`
	Time    string          `json:"time" msgpack:"time"`       // time.Time.String() style, as Node's Date.toString()
	Address string          `json:"address" msgpack:"address"` // remote IP
	XDomain bool            `json:"xdomain" msgpack:"xdomain"` // the request carried an Origin header
	Secure  bool            `json:"secure" msgpack:"secure"`   // TLS
	Issued  int64           `json:"issued" msgpack:"issued"`   // unix milliseconds
	URL     string          `json:"url" msgpack:"url"`
	Query   url.Values      `json:"query" msgpack:"query"`
	Auth    json.RawMessage `json:"auth" msgpack:"auth"` // the CONNECT payload, "{}" when the client sent none
}

// SocketDetails is what FetchSockets returns for a socket, local or remote.
type SocketDetails struct {
	ID        SocketID  `json:"id" msgpack:"id"`
	Handshake Handshake `json:"handshake" msgpack:"handshake"`
	Rooms     []Room    `json:"rooms" msgpack:"rooms"`
	Data      any       `json:"data" msgpack:"data"`
}

// Encoded is a packet encoded once for all receivers. Text and Attachments are shared and never mutated.
type Encoded struct {
	Text        []byte   // the engine.io message payload of the packet (text frame)
	Attachments [][]byte // binary attachments, each its own binary engine.io message
}

// AckFunc receives one client's (or one server's) acknowledgement arguments.
// Binary values in the reply arrive as base64 JSON strings (json.Unmarshal into []byte restores them).
type AckFunc func(args []json.RawMessage)

// Socket is the adapter's view of a socket connected to this node.
type Socket interface {
	ID() SocketID
	// WriteEncoded queues an already-encoded packet on the socket's engine connection.
	// volatile drops it when the transport is not writable right now.
	WriteEncoded(p *Encoded, volatile bool)
	// RegisterAck makes the socket call fn when the client acknowledges packet id.
	// The entry expires after timeout (0: lives until the socket disconnects), so unanswered acks
	// do not accumulate.
	RegisterAck(id int64, timeout time.Duration, fn AckFunc)
	// Join and Leave change the socket's rooms (through the adapter).
	Join(rooms ...Room)
	Leave(rooms ...Room)
	// Disconnect disconnects the socket from the namespace; close also closes the engine connection.
	Disconnect(close bool)
	// Details returns a serializable snapshot for FetchSockets.
	Details() SocketDetails
}

// Namespace is the adapter's view of the namespace it serves.
type Namespace interface {
	Name() string
	// Socket returns the socket with that id connected to this node, or nil.
	Socket(id SocketID) Socket
	// NextAckID allocates an ack id unique within the namespace (shared by all its sockets, as in Node),
	// so one id can be used for every receiver of a broadcast with ack.
	NextAckID() int64
	// OnServerSideEmit delivers a ServerSideEmit from another node: args[0] is the event name (a JSON
	// string). ack is nil when the sender expects no acknowledgement, otherwise call it exactly once.
	OnServerSideEmit(args []json.RawMessage, ack AckFunc)
	// MaxDisconnectionDuration is the connection-state-recovery window; 0 means recovery is off.
	MaxDisconnectionDuration() time.Duration
}

// Session is what a socket leaves behind on disconnect for connection state recovery.
type Session struct {
	SID   SocketID         `json:"sid" msgpack:"sid"`
	PID   PrivateSessionID `json:"pid" msgpack:"pid"`
	Rooms []Room           `json:"rooms" msgpack:"rooms"`
	Data  any              `json:"data" msgpack:"data"`
	// MissedPackets are filled by RestoreSession: the event packets broadcast to the session's rooms
	// after the offset, each ending with its own offset argument, ready to send.
	MissedPackets []*parser.Packet `json:"-" msgpack:"-"`
}

// RecoveryLog is implemented by adapters that keep broadcasts for recovery (Memory, and the cluster
// adapters embedding it). The server uses it to close the gap between RestoreSession and the moment
// the restored socket is back in its rooms: what was broadcast meanwhile is fetched after the rooms
// are joined (duplicates of what then also arrives live are dropped).
type RecoveryLog interface {
	// PacketsAfter lists the stored event packets after offset that a socket in rooms would have got,
	// each ending with its own offset; false when offset is unknown or no longer stored.
	PacketsAfter(offset string, rooms []Room) ([]*parser.Packet, bool)
}

// Factory builds the adapter of one namespace. Options.Adapter of the server is a Factory.
type Factory func(nsp Namespace) Adapter

// ErrTimeout is returned (wrapped) when a cluster request or a broadcast with ack did not complete in time.
var ErrTimeout = errors.New("adapter: operation has timed out")

// Adapter manages rooms and delivers broadcasts for one namespace. Methods are safe for concurrent use.
type Adapter interface {
	// Init starts the adapter (subscriptions for a cluster adapter). Close releases it.
	Init() error
	Close() error
	// ServerCount is the number of nodes in the cluster (1 for Memory).
	ServerCount(ctx context.Context) (int, error)

	// AddAll adds socket id to rooms; Del removes it from one room; DelAll from every room.
	AddAll(id SocketID, rooms ...Room)
	Del(id SocketID, room Room)
	DelAll(id SocketID)
	// Rooms returns the local rooms (name → local member count is not exposed to keep it lean).
	Rooms() []Room
	// Sockets returns the ids of the local sockets in any of rooms (all when empty).
	Sockets(rooms ...Room) []SocketID
	// SocketRooms returns the rooms of a local socket (nil if unknown).
	SocketRooms(id SocketID) []Room

	// Broadcast encodes p once (p.Nsp is set to the namespace) and writes it to every matching socket.
	// Event packets without ack and not volatile get an offset appended as their last argument when
	// recovery is on, and are kept for RestoreSession.
	Broadcast(p *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck is Broadcast with one ack id for all receivers: clientCount is called once per
	// node with the number of sockets reached there, ack once per client reply.
	BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, clientCount func(n int), ack AckFunc) error

	// FetchSockets returns the matching sockets of the cluster (only local ones with opts.Flags.Local).
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketDetails, error)
	// AddSockets / DelSockets make the matching sockets join / leave rooms.
	AddSockets(opts BroadcastOptions, rooms []Room) error
	DelSockets(opts BroadcastOptions, rooms []Room) error
	// DisconnectSockets disconnects the matching sockets.
	DisconnectSockets(opts BroadcastOptions, close bool) error

	// ServerSideEmit sends args (args[0] = event name) to the other nodes of the cluster.
	ServerSideEmit(args []json.RawMessage) error
	// ServerSideEmitWithAck sends args and collects one reply per other node until all answered or ctx
	// ends (then ErrTimeout with the replies so far).
	ServerSideEmitWithAck(ctx context.Context, args []json.RawMessage) ([][]json.RawMessage, error)

	// PersistSession stores a disconnected socket's session for recovery (no-op when recovery is off).
	PersistSession(s *Session)
	// RestoreSession returns the session for pid with the packets missed since offset, or nil when it
	// is unknown, expired or the offset is too old (the client then gets a fresh session).
	// The session is consumed: a second call with the same pid returns nil.
	RestoreSession(pid PrivateSessionID, offset string) (*Session, error)
}
