// Package presence tracks which users are connected and what status they
// show, and tells their friends about every change.
//
// Handlers depend on Service only. Local keeps the state in this process;
// the cluster issue replaces it with a Redis-backed Service (sockets counted
// across nodes, entries expiring when a node dies) without touching handlers.
package presence

import (
	"context"
	"errors"
	"time"
)

// The statuses a user can show (EVENTS.md, Presence).
const (
	Online  = "online"
	Away    = "away"
	Busy    = "busy"
	InGame  = "in-game"
	Offline = "offline"
)

// Statuses lists every valid status, for validation messages.
var Statuses = []string{Online, Away, Busy, InGame, Offline}

// Valid reports whether s is one of Statuses.
func Valid(s string) bool {
	switch s {
	case Online, Away, Busy, InGame, Offline:
		return true
	}
	return false
}

// Service is presence as handlers and other services see it.
//
// Every change of a user's status is saved on the user (UserStore) and sent
// to each friend's room as user:status. A state change happens even when a
// method also returns an error: the error then reports a failed side effect
// (saving, telling friends).
type Service interface {
	// Connect records a socket of the user. becameOnline is true for the
	// user's first socket; friends are then told the user is online.
	Connect(ctx context.Context, userID, socketID string) (becameOnline bool, err error)
	// Disconnect forgets a socket. becameOffline is true when it was the
	// user's last one: status offline and lastActive are saved and friends
	// are told.
	Disconnect(ctx context.Context, userID, socketID string) (becameOffline bool, err error)
	// SetStatus sets the status a connected user shows (ErrInvalidStatus,
	// ErrNotConnected). Friends are told when it changes.
	SetStatus(ctx context.Context, userID, status string) error
	// Status is the user's current status; Offline without sockets.
	Status(ctx context.Context, userID string) (string, error)
	// Statuses answers Status for many users at once; every id is a key.
	Statuses(ctx context.Context, userIDs []string) (map[string]string, error)
}

var (
	// ErrInvalidStatus: the status is not one of Statuses.
	ErrInvalidStatus = errors.New("presence: invalid status")
	// ErrNotConnected: the user has no socket, so there is no status to set.
	ErrNotConnected = errors.New("presence: user not connected")
)

// UserStore persists presence on the user: the status after every change
// and, when lastActive is non-zero (going offline), when the user was last
// seen. FromModels adapts the users collection.
type UserStore interface {
	SavePresence(ctx context.Context, userID, status string, lastActive time.Time) error
}

// FriendLister lists the ids of a user's accepted friends (the friends
// model/service satisfies it).
type FriendLister interface {
	FriendIDs(ctx context.Context, userID string) ([]string, error)
}

// StatusEvent is the Socket.IO event friends receive on every change.
const StatusEvent = "user:status"

// StatusPayload is the payload of StatusEvent.
type StatusPayload struct {
	UserID    string `json:"userId"`
	Status    string `json:"status"`
	UpdatedAt string `json:"updatedAt"`
}
