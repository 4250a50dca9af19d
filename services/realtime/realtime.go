// Package realtime is how services send Socket.IO events without importing
// the Socket.IO server: they depend on Emitter, and the application wires it
// to the server's namespace (server/socketio stays free of game concepts and
// services stay free of transport concepts).
package realtime

import (
	"context"
	"sync"
	"time"
)

// Emitter addresses a room of the main namespace.
type Emitter interface {
	ToRoom(room string) Room
}

// Room sends an event to every socket in one room (on every node, when the
// adapter is cluster-wide).
type Room interface {
	Emit(event string, args ...any) error
	// SocketsLeave makes every socket in this room (on every node) leave
	// rooms, e.g. ToRoom("user:<id>").SocketsLeave("lobby:<lobbyId>") takes a
	// kicked user's sockets out of a lobby wherever they are connected.
	SocketsLeave(rooms ...string) error
}

// RoomUsers tells which users have at least one socket in a room, on every node when the adapter is
// cluster-wide (services/chat: "is the recipient in the chat room, or does it need a notification").
// It is separate from Emitter so that emitters that only send (tests, wrappers) need not implement it;
// handlers/socket.RoomUsers implements it on a namespace.
type RoomUsers interface {
	// UsersInRoom returns the ids of the users (from their sockets' "user:<id>" rooms) in room.
	UsersInRoom(ctx context.Context, room string) (map[string]bool, error)
}

// UserRoom is the room every socket of a user joins: "user:<userId>".
func UserRoom(userID string) string { return "user:" + userID }

// ISOTime formats t the way JavaScript's Date.toISOString does (UTC,
// milliseconds, "Z"), which is what the frontends parse.
func ISOTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Emitted is one event recorded by Recorder.
type Emitted struct {
	Room  string
	Event string
	Args  []any
}

// Left is one SocketsLeave call recorded by Recorder.
type Left struct {
	Room  string   // the room whose sockets were told to leave
	Rooms []string // the rooms they left
}

// Recorder is an Emitter that records what services emit, for unit tests.
type Recorder struct {
	mu     sync.Mutex
	events []Emitted
	leaves []Left
	// Err, when set, is returned by every Emit (the event is still recorded).
	Err error
}

// ToRoom implements Emitter.
func (r *Recorder) ToRoom(room string) Room { return recorderRoom{r, room} }

// Events returns a copy of everything emitted so far.
func (r *Recorder) Events() []Emitted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Emitted(nil), r.events...)
}

// Leaves returns a copy of the SocketsLeave calls so far.
func (r *Recorder) Leaves() []Left {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Left(nil), r.leaves...)
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
	r.leaves = nil
}

type recorderRoom struct {
	r    *Recorder
	room string
}

func (rr recorderRoom) Emit(event string, args ...any) error {
	rr.r.mu.Lock()
	defer rr.r.mu.Unlock()
	rr.r.events = append(rr.r.events, Emitted{Room: rr.room, Event: event, Args: args})
	return rr.r.Err
}

func (rr recorderRoom) SocketsLeave(rooms ...string) error {
	rr.r.mu.Lock()
	defer rr.r.mu.Unlock()
	rr.r.leaves = append(rr.r.leaves, Left{Room: rr.room, Rooms: append([]string(nil), rooms...)})
	return rr.r.Err
}
