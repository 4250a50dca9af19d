package socket

import (
	"context"
	"strings"

	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/realtime"
)

// RoomUsers implements realtime.RoomUsers on a namespace: it fetches the sockets of a room (on every
// node, through the adapter) and reads each socket's user from its "user:<id>" room, which the
// handshake joins for every accepted socket.
func RoomUsers(nsp *socketio.Namespace) realtime.RoomUsers { return roomUsers{nsp} }

type roomUsers struct{ nsp *socketio.Namespace }

func (r roomUsers) UsersInRoom(ctx context.Context, room string) (map[string]bool, error) {
	sockets, err := r.nsp.In(room).FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(sockets))
	for _, s := range sockets {
		for _, rm := range s.Rooms() {
			if id, ok := strings.CutPrefix(rm, "user:"); ok {
				out[id] = true
			}
		}
	}
	return out, nil
}
