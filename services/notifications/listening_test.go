package notifications

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
)

// fakeRooms answers UsersInRoom for user rooms from a set of connected users.
type fakeRooms struct {
	mu      sync.Mutex
	online  map[string]bool
	err     error
	queries []string
}

func (f *fakeRooms) UsersInRoom(_ context.Context, room string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, room)
	if f.err != nil {
		return nil, f.err
	}
	out := map[string]bool{}
	for u := range f.online {
		if realtime.UserRoom(u) == room {
			out[u] = true
		}
	}
	return out, nil
}

func (f *fakeRooms) set(user string, online bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.online == nil {
		f.online = map[string]bool{}
	}
	f.online[user] = online
	if !online {
		delete(f.online, user)
	}
}

// newListeningService is newService with Options.Rooms and the store's Count calls counted.
func newListeningService(t *testing.T, rooms realtime.RoomUsers) (*Service, *realtime.Recorder, *atomic.Int32) {
	t.Helper()
	rec := &realtime.Recorder{}
	svc := New(Options{Store: models.NewNotifications(store), Users: models.NewUsers(store), Emitter: rec, Rooms: rooms})
	var counts atomic.Int32
	real := svc.storeCount
	svc.storeCount = func(ctx context.Context, uid bson.ObjectID) (int64, int64, error) {
		counts.Add(1)
		return real(ctx, uid)
	}
	return svc, rec, &counts
}

// The welcome notification of a user with no socket anywhere: stored and notification:new sent (a
// session kept for connection state recovery gets it on its return), but no count query and no
// notification:count. Once the user has a socket, the next notification is counted.
func TestNotificationEventsOnlyWhenTheUserHasASocket(t *testing.T) {
	ctx := context.Background()
	rooms := &fakeRooms{}
	svc, rec, counts := newListeningService(t, rooms)
	jo := newUser(t, "jo")
	uid := jo.ID.Hex()

	e, _ := events.New(events.UserRegistered, events.UserRegisteredData{UserID: uid, Username: jo.Username})
	if err := svc.onUserRegistered(ctx, events.Stamp(e, "test")); err != nil {
		t.Fatal(err)
	}
	if n := counts.Load(); n != 0 {
		t.Fatalf("%d count queries for a user without a socket", n)
	}
	if got := rec.Events(); len(got) != 1 || got[0].Event != EventNew || got[0].Room != "user:"+uid {
		t.Fatalf("events for a user without a socket: %+v, want notification:new only", got)
	}
	list, _, err := svc.List(ctx, uid, ListOptions{})
	if err != nil || len(list) != 1 || list[0].Type != TypeWelcome || list[0].Delivery[models.ChannelInApp].Status != models.DeliverySent {
		t.Fatalf("stored welcome: %v %+v", err, list)
	}
	if len(rooms.queries) != 1 || rooms.queries[0] != "user:"+uid {
		t.Fatalf("rooms asked %v", rooms.queries)
	}

	// Reading it while offline (REST): no count either.
	rec.Reset()
	if _, err := svc.MarkRead(ctx, uid, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if n := counts.Load(); n != 0 || len(rec.Events()) != 0 {
		t.Fatalf("mark read without a socket: %d count queries, events %+v", n, rec.Events())
	}

	// Online: the next notification is sent with its count.
	rooms.set(uid, true)
	v, err := svc.Create(ctx, Draft{UserID: uid, Type: TypeFriendRequest, Title: "New friend request"})
	if err != nil {
		t.Fatal(err)
	}
	if n := counts.Load(); n != 1 {
		t.Fatalf("%d count queries for a connected user, want 1", n)
	}
	got := rec.Events()
	if len(got) != 2 || got[0].Event != EventNew || got[1].Event != EventCount || got[1].Room != "user:"+uid ||
		got[1].Args[0] != (Count{Total: 2, Unread: 1, UnreadCount: 1}) {
		t.Fatalf("events for a connected user: %+v", got)
	}
	if p := got[0].Args[0].(NewPayload); p.Notification.ID != v.ID {
		t.Fatalf("notification:new %+v", p)
	}
	rec.Reset()
	if _, err := svc.MarkRead(ctx, uid, v.ID); err != nil {
		t.Fatal(err)
	}
	if got := rec.Events(); counts.Load() != 2 || len(got) != 1 || got[0].Args[0] != (Count{Total: 2, Unread: 0, UnreadCount: 0}) {
		t.Fatalf("mark read with a socket: %d count queries, events %+v", counts.Load(), got)
	}
}

// When the room query fails the events go out as before (nobody misses a count for a failed query),
// and without Options.Rooms every notification counts.
func TestNotificationEventsWhenTheRoomQueryFailsOrIsMissing(t *testing.T) {
	ctx := context.Background()
	kim := newUser(t, "kim")
	rooms := &fakeRooms{err: errors.New("redisadapter: 1 of 2 nodes answered")}
	for _, r := range []realtime.RoomUsers{rooms, nil} {
		svc, rec, counts := newListeningService(t, r)
		if _, err := svc.Create(ctx, Draft{UserID: kim.ID.Hex(), Type: "t", Title: "x"}); err != nil {
			t.Fatal(err)
		}
		if got := rec.Events(); counts.Load() != 1 || len(got) != 2 || got[1].Event != EventCount {
			t.Fatalf("rooms %v: %d count queries, events %+v", r, counts.Load(), got)
		}
	}
}
