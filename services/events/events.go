// Package events is the internal event bus of the platform: services publish
// facts ("friendship.requested") and other services react to them without the
// publisher knowing who listens.
//
// The Bus interface is what services depend on. NewMemory is the in-process
// implementation; a cluster implementation (Redis) plugs in behind the same
// interface. Because an event published on one node may be seen by every node,
// each handler declares its Scope:
//
//   - Local: the effect belongs to this node (e.g. touching this node's sockets
//     or caches). A cluster bus runs it once on every node.
//   - ClusterOnce: the effect is global (e.g. storing a notification). A cluster
//     bus runs it exactly once in the whole cluster, keyed by Event.ID and
//     Handler.Name, so Name must be stable across nodes and unique per event.
//
// In a single process both scopes mean "run once here".
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Internal event names (EVENTS.md, "Internal events").
const (
	UserRegistered      = "user.registered"
	UserProfileUpdated  = "user.profile.updated"
	FriendshipRequested = "friendship.requested"
	FriendshipAccepted  = "friendship.accepted"
	FriendshipRejected  = "friendship.rejected"
	MatchmakingStarted  = "matchmaking.started"
	MatchmakingMatched  = "matchmaking.matched"
	MatchmakingCanceled = "matchmaking.cancelled"
	LobbyCreated        = "lobby.created"
	LobbyUpdated        = "lobby.updated"
	LobbyClosed         = "lobby.closed"
	LobbyMemberJoined   = "lobby.member.joined"
	LobbyMemberLeft     = "lobby.member.left"
	ChatMessageSent     = "chat.message.sent"

	// UserAccountStatusChanged is published after a user's accountStatus was stored (users service,
	// SetAccountStatus). It is not in EVENTS.md's list: it is the hardening issue's addition, so that
	// every node disconnects a suspended or banned user's sockets at once.
	UserAccountStatusChanged = "user.account.status.changed"
)

// Payloads of the events this package's users agree on. Publishers fill them,
// subscribers decode them with Event.Decode. Ids are strings (hex ObjectIDs).

// UserRegisteredData is the payload of user.registered.
type UserRegisteredData struct {
	UserID      string `json:"userId"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName,omitempty"`
	Email       string `json:"email,omitempty"`
}

// UserAccountStatusData is the payload of user.account.status.changed.
type UserAccountStatusData struct {
	UserID   string `json:"userId"`
	Status   string `json:"status"`   // the new accountStatus: active, suspended or banned
	Previous string `json:"previous"` // the accountStatus before the change
	Reason   string `json:"reason,omitempty"`
}

// FriendshipData is the payload of friendship.requested, friendship.accepted
// and friendship.rejected.
type FriendshipData struct {
	FriendshipID string `json:"friendshipId"`
	RequesterID  string `json:"requesterId"`
	AddresseeID  string `json:"addresseeId"`
	// RequesterName is the requester's display name (or username), so that a
	// notification can say who asked without another lookup.
	RequesterName string `json:"requesterName,omitempty"`
	// AddresseeName is the addressee's display name (or username), used by
	// friendship.accepted to tell the requester who accepted.
	AddresseeName string `json:"addresseeName,omitempty"`
}

// Event is one published fact.
type Event struct {
	Name string
	// Data is the JSON payload. JSON (not any) so that an event looks the same
	// in process and after a trip through Redis.
	Data json.RawMessage
	// ID is unique per published event; Publish sets it when empty. A cluster
	// bus uses it to run ClusterOnce handlers once.
	ID string
	// Origin names the node that published the event; Publish sets it when empty.
	Origin string
	// At is when the event was published; Publish sets it when zero.
	At time.Time
}

// New builds an event with data marshalled to JSON.
func New(name string, data any) (Event, error) {
	if name == "" {
		return Event{}, errors.New("events: empty event name")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("events: marshal %s: %w", name, err)
	}
	return Event{Name: name, Data: raw}, nil
}

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("events: decode %s: %w", e.Name, err)
	}
	return nil
}

// Scope says where a handler's effect lives; see the package comment.
type Scope int

const (
	// Local handlers run on every node that receives the event.
	Local Scope = iota
	// ClusterOnce handlers run once in the whole cluster.
	ClusterOnce
)

func (s Scope) String() string {
	switch s {
	case Local:
		return "local"
	case ClusterOnce:
		return "cluster-once"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// Handler reacts to events of one name.
type Handler struct {
	// Name identifies the handler in logs and, for ClusterOnce, in the
	// cluster-wide "already handled" record. Required.
	Name  string
	Scope Scope
	// Handle runs the effect. Its ctx is cancelled when the handler's time is
	// up or the bus closes. A returned error is logged by the bus.
	Handle func(ctx context.Context, e Event) error
}

// Publisher is the half of Bus that most services need.
type Publisher interface {
	// Publish hands e to every subscriber of e.Name. It does not wait for
	// handlers to run; it returns an error when the event could not be
	// queued for some subscriber (e.g. ctx ended while its queue was full).
	Publish(ctx context.Context, e Event) error
}

// Bus is publish/subscribe of internal events.
type Bus interface {
	Publisher
	// Subscribe registers h for events named name. Events are delivered to h
	// in publish order, one at a time. The returned func unsubscribes; events
	// already queued for h are still handled.
	Subscribe(name string, h Handler) (unsubscribe func())
}

// ErrClosed is returned by Publish after the bus was closed.
var ErrClosed = errors.New("events: bus closed")

// newID returns a random 128-bit hex id.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; if it does, ids
		// would collide, which a cluster bus must not accept silently.
		panic(fmt.Sprintf("events: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Stamp fills the ID, Origin and At of e when they are empty. Bus
// implementations call it in Publish.
func Stamp(e Event, origin string) Event {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Origin == "" {
		e.Origin = origin
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	return e
}
