package socket_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/maoga/maoga/clienttest"
	"github.com/maoga/maoga/handlers/socket"
	"github.com/maoga/maoga/server/socketio"
)

// RoomUsers reads users from the "user:<id>" rooms of the sockets in a room: several sockets of one user
// count once, sockets outside the room not at all, and a socket that left is gone.
func TestRoomUsers(t *testing.T) {
	io := socketio.NewServer(socketio.Options{})
	nsp := io.Of("/")
	joined := make(chan *socketio.Socket, 4)
	nsp.OnConnection(func(s *socketio.Socket) {
		q := s.Handshake().Query
		s.Join("user:" + q["user"][0])
		if q["room"][0] == "yes" {
			s.Join("chat:c1")
		}
		joined <- s
	})
	srv := httptest.NewServer(io)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = io.Close(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var socks []*socketio.Socket
	for _, q := range []url.Values{
		{"user": {"u1"}, "room": {"yes"}}, {"user": {"u1"}, "room": {"yes"}}, {"user": {"u2"}, "room": {"yes"}},
		{"user": {"u3"}, "room": {"no"}},
	} {
		c, err := clienttest.Dial(ctx, srv.URL, clienttest.Options{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		socks = append(socks, <-joined)
	}
	ru := socket.RoomUsers(nsp)
	got, err := ru.UsersInRoom(ctx, "chat:c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["u1"] || !got["u2"] {
		t.Fatalf("users in chat:c1 = %v, want u1 and u2", got)
	}
	socks[2].Leave("chat:c1")
	if got, _ = ru.UsersInRoom(ctx, "chat:c1"); len(got) != 1 || !got["u1"] {
		t.Fatalf("after u2 left: %v", got)
	}
	if got, _ = ru.UsersInRoom(ctx, "chat:none"); len(got) != 0 {
		t.Fatalf("empty room: %v", got)
	}
}
