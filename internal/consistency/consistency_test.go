package consistency

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "consistency_test", &store) }

// world is a small consistent state: three users, an open lobby of two (with its seats, its chat and
// a message) made by a match, a closed lobby, a friendship, notifications.
type world struct {
	db                *mongo.Database
	ann, bob, cid     bson.ObjectID
	lobby, closed     bson.ObjectID
	reqAnn, reqBob    bson.ObjectID
	msg, note, friend bson.ObjectID
}

var seq int

func build(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	seq++
	w := &world{db: store.DB().Client().Database(fmt.Sprintf("consistency_%d_%d", seq, time.Now().UnixNano()%1e6))}
	t.Cleanup(func() { _ = w.db.Drop(context.Background()) })
	now := time.Now().UTC().Truncate(time.Millisecond)
	ins := func(coll string, doc any) {
		t.Helper()
		if _, err := w.db.Collection(coll).InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*bson.ObjectID{&w.ann, &w.bob, &w.cid, &w.lobby, &w.closed, &w.reqAnn, &w.reqBob, &w.msg, &w.note, &w.friend} {
		*p = bson.NewObjectID()
	}
	for i, id := range []bson.ObjectID{w.ann, w.bob, w.cid} {
		name := fmt.Sprintf("user%d", i)
		ins(models.UsersCollection, models.User{ID: id, Username: name, UsernameLower: name, Email: name + "@x.io",
			EmailLower: name + "@x.io", AccountStatus: models.AccountActive, CreatedAt: now, UpdatedAt: now})
	}
	ins(models.LobbiesCollection, models.Lobby{ID: w.lobby, GameID: "g", GameMode: "m", HostID: w.ann,
		Status: models.LobbyForming, Visibility: "public", Capacity: models.Capacity{Min: 2, Max: 2},
		Members: map[string]*models.LobbyMember{
			w.ann.Hex(): {UserID: w.ann, IsHost: true, Status: models.MemberJoined, JoinedAt: now},
			w.bob.Hex(): {UserID: w.bob, Status: models.MemberJoined, JoinedAt: now},
		},
		ActiveMemberIDs: []bson.ObjectID{w.ann, w.bob}, MatchRequestIDs: []bson.ObjectID{w.reqAnn, w.reqBob},
		CreatedAt: now, UpdatedAt: now, Version: 1})
	ins(models.LobbiesCollection, models.Lobby{ID: w.closed, GameID: "g", GameMode: "m", HostID: w.cid,
		Status: models.LobbyClosed, Visibility: "public", Capacity: models.Capacity{Min: 1, Max: 4},
		Members: map[string]*models.LobbyMember{
			w.cid.Hex(): {UserID: w.cid, Status: models.MemberLeft, JoinedAt: now, LeftAt: &now},
		},
		ActiveMemberIDs: []bson.ObjectID{}, CreatedAt: now, UpdatedAt: now, ClosedAt: &now, Version: 3})
	ins(models.LobbySeatsCollection, models.LobbySeat{UserID: w.ann, LobbyID: w.lobby, CreatedAt: now})
	ins(models.LobbySeatsCollection, models.LobbySeat{UserID: w.bob, LobbyID: w.lobby, CreatedAt: now})
	for _, r := range []struct{ id, user bson.ObjectID }{{w.reqAnn, w.ann}, {w.reqBob, w.bob}} {
		ins(models.MatchRequestsCollection, models.MatchRequest{ID: r.id, UserID: r.user, GameID: "g", GameMode: "m",
			Region: "eu", Status: models.MatchMatched, ActiveKey: r.id.Hex(), LobbyID: &w.lobby, MatchedAt: &now,
			CreatedAt: now, UpdatedAt: now, Version: 3})
	}
	chatID := models.LobbyChatID(w.lobby.Hex())
	ins(models.ChatsCollection, models.Chat{ID: chatID, Type: models.ChatLobby, Key: chatID,
		Participants: []bson.ObjectID{w.ann, w.bob}, LobbyID: &w.lobby, LastMessageAt: &now, LastMessageID: &w.msg,
		Notified: map[string]bool{w.bob.Hex(): true}, CreatedAt: now, UpdatedAt: now})
	ins(models.MessagesCollection, models.Message{ID: w.msg, ChatID: chatID, SenderID: w.ann, Content: "gl",
		ContentType: models.ContentText, CreatedAt: now})
	ins(models.MessageKeysCollection, models.MessageKey{ID: models.MessageKeyID(w.ann, "k1"), SenderID: w.ann,
		ChatID: chatID, MessageID: w.msg, ContentHash: "h", CreatedAt: now})
	ins(models.NotificationsCollection, models.Notification{ID: w.note, UserID: w.bob, Type: "chat_message", Title: "t",
		Data: map[string]any{"chatId": chatID}, Channels: []string{models.ChannelInApp},
		Delivery: map[string]models.Delivery{models.ChannelInApp: {Status: models.DeliverySent}},
		Status:   models.NotificationUnread, CreatedAt: now, UpdatedAt: now})
	ins(models.NotificationsCollection, models.Notification{ID: bson.NewObjectID(), UserID: w.ann, Type: "welcome",
		Title: "hi", Channels: []string{models.ChannelInApp},
		Delivery: map[string]models.Delivery{models.ChannelInApp: {Status: models.DeliverySent}},
		Status:   models.NotificationRead, ReadAt: &now, CreatedAt: now, UpdatedAt: now})
	ins(models.FriendshipsCollection, models.Friendship{ID: w.friend, RequesterID: w.ann, AddresseeID: w.cid,
		PairKey: models.PairKey(w.ann, w.cid), Status: models.FriendshipAccepted, AcceptedAt: &now,
		CreatedAt: now, UpdatedAt: now, Version: 2})
	return w
}

func (w *world) set(t *testing.T, coll string, id any, set bson.M) {
	t.Helper()
	res, err := w.db.Collection(coll).UpdateOne(context.Background(), bson.M{"_id": id}, bson.M{"$set": set})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("update %s %v: %v (matched %v)", coll, id, err, res)
	}
}

func check(t *testing.T, w *world) *Report {
	t.Helper()
	r, err := Check(context.Background(), w.db)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConsistentWorldPasses(t *testing.T) {
	w := build(t)
	r := check(t, w)
	if !r.OK() {
		t.Fatal(r.Err())
	}
	if len(r.Tolerated) != 0 {
		t.Fatalf("tolerated in a clean world: %v", r.Tolerated)
	}
	if r.Counts[models.LobbiesCollection] != 2 || r.Counts[models.UsersCollection] != 3 {
		t.Fatalf("counts %v", r.Counts)
	}
}

// Every rule fails on its violation: a checker that cannot fail would prove nothing.
func TestEachViolationIsFound(t *testing.T) {
	cases := []struct {
		name, want string
		corrupt    func(t *testing.T, w *world)
	}{
		{"lobby over capacity", "over capacity.max", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"capacity.max": 1})
		}},
		{"host not a member", "host", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"hostId": w.cid})
		}},
		{"host left", "host", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"members." + w.ann.Hex() + ".status": models.MemberLeft})
		}},
		{"user in two open lobbies", "two open lobbies", func(t *testing.T, w *world) {
			now := time.Now().UTC()
			w.set(t, models.LobbiesCollection, w.closed, bson.M{"status": models.LobbyForming, "hostId": w.bob,
				"members." + w.bob.Hex(): models.LobbyMember{UserID: w.bob, IsHost: true, Status: models.MemberJoined, JoinedAt: now},
				"activeMemberIds":        []bson.ObjectID{w.bob}})
		}},
		{"activeMemberIds out of step", "activeMemberIds", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"activeMemberIds": []bson.ObjectID{w.ann}})
		}},
		{"lobby does not decode", "does not decode", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"members": "garbage"})
		}},
		{"unknown lobby status", "unknown status", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"status": "exploded"})
		}},
		{"ready with an unready member", "status ready", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"status": models.LobbyReady})
		}},
		{"joined member without seat", "without its seat", func(t *testing.T, w *world) {
			if _, err := w.db.Collection(models.LobbySeatsCollection).DeleteOne(context.Background(), bson.M{"_id": w.bob}); err != nil {
				t.Fatal(err)
			}
		}},
		{"matched into a missing lobby", "does not exist", func(t *testing.T, w *world) {
			missing := bson.NewObjectID()
			w.set(t, models.MatchRequestsCollection, w.reqAnn, bson.M{"lobbyId": missing})
		}},
		{"matched request the lobby does not name", "does not name it", func(t *testing.T, w *world) {
			w.set(t, models.LobbiesCollection, w.lobby, bson.M{"matchRequestIds": []bson.ObjectID{w.reqBob}})
		}},
		{"finished request holding the active key", "activeKey", func(t *testing.T, w *world) {
			w.set(t, models.MatchRequestsCollection, w.reqBob, bson.M{"activeKey": w.bob.Hex()})
		}},
		{"message of a missing chat", "its chat", func(t *testing.T, w *world) {
			w.set(t, models.MessagesCollection, w.msg, bson.M{"chatId": "lobby:" + bson.NewObjectID().Hex()})
		}},
		{"message key naming another sender's message", "not its own", func(t *testing.T, w *world) {
			if _, err := w.db.Collection(models.MessageKeysCollection).InsertOne(context.Background(), models.MessageKey{
				ID: models.MessageKeyID(w.bob, "k1"), SenderID: w.bob, ChatID: models.LobbyChatID(w.lobby.Hex()),
				MessageID: w.msg, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}},
		{"message key of another sender", "not a key of its sender", func(t *testing.T, w *world) {
			w.set(t, models.MessageKeysCollection, models.MessageKeyID(w.ann, "k1"), bson.M{"senderId": w.bob})
		}},
		{"lobby chat of a missing lobby", "its lobby does not exist", func(t *testing.T, w *world) {
			id := bson.NewObjectID()
			if _, err := w.db.Collection(models.ChatsCollection).InsertOne(context.Background(), models.Chat{
				ID: models.LobbyChatID(id.Hex()), Type: models.ChatLobby, Key: models.LobbyChatID(id.Hex()), LobbyID: &id,
				Participants: []bson.ObjectID{}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"lastMessageAt ahead of the messages", "after its newest message", func(t *testing.T, w *world) {
			w.set(t, models.ChatsCollection, models.LobbyChatID(w.lobby.Hex()), bson.M{"lastMessageAt": time.Now().Add(time.Hour),
				"lastMessageId": bson.NewObjectID()})
		}},
		{"read notification without readAt", "read without readAt", func(t *testing.T, w *world) {
			w.set(t, models.NotificationsCollection, w.note, bson.M{"status": models.NotificationRead})
		}},
		{"notification of nobody", "is no user", func(t *testing.T, w *world) {
			w.set(t, models.NotificationsCollection, w.note, bson.M{"userId": bson.NewObjectID()})
		}},
		{"self friendship", "themselves", func(t *testing.T, w *world) {
			w.set(t, models.FriendshipsCollection, w.friend, bson.M{"addresseeId": w.ann})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := build(t)
			c.corrupt(t, w)
			r := check(t, w)
			if r.OK() || !strings.Contains(r.Err().Error(), c.want) {
				t.Fatalf("want a problem containing %q, got: %v", c.want, r.Err())
			}
		})
	}
}

// Leftovers of interrupted writes are counted as tolerated, not as problems.
func TestLeftoversAreTolerated(t *testing.T) {
	w := build(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// A seat claimed for a lobby that was never stored; a lobby nobody chatted in; a message whose chat
	// update was lost; a notified flag whose notification was lost; a claim of a dead round; a message
	// key whose message was not stored.
	if _, err := w.db.Collection(models.LobbySeatsCollection).InsertOne(ctx,
		models.LobbySeat{UserID: w.cid, LobbyID: bson.NewObjectID(), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	quiet := bson.NewObjectID()
	if _, err := w.db.Collection(models.LobbiesCollection).InsertOne(ctx, models.Lobby{ID: quiet, GameID: "g", GameMode: "m",
		HostID: w.cid, Status: models.LobbyForming, Capacity: models.Capacity{Min: 1, Max: 2},
		Members:         map[string]*models.LobbyMember{w.cid.Hex(): {UserID: w.cid, IsHost: true, Status: models.MemberJoined}},
		ActiveMemberIDs: []bson.ObjectID{w.cid}}); err != nil {
		t.Fatal(err)
	}
	w.set(t, models.LobbySeatsCollection, w.cid, bson.M{"lobbyId": quiet}) // its seat: not stale
	if _, err := w.db.Collection(models.LobbySeatsCollection).InsertOne(ctx,
		models.LobbySeat{UserID: bson.NewObjectID(), LobbyID: w.closed, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Second)
	if _, err := w.db.Collection(models.MessagesCollection).InsertOne(ctx, models.Message{ID: bson.NewObjectID(),
		ChatID: models.LobbyChatID(w.lobby.Hex()), SenderID: w.bob, Content: "x", ContentType: models.ContentText, CreatedAt: later}); err != nil {
		t.Fatal(err)
	}
	w.set(t, models.ChatsCollection, models.LobbyChatID(w.lobby.Hex()), bson.M{"notified." + w.ann.Hex(): true})
	// A message key claimed whose message insert failed.
	if _, err := w.db.Collection(models.MessageKeysCollection).InsertOne(ctx, models.MessageKey{
		ID: models.MessageKeyID(w.bob, "lost"), SenderID: w.bob, ChatID: models.LobbyChatID(w.lobby.Hex()),
		MessageID: bson.NewObjectID(), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	req := bson.NewObjectID()
	if _, err := w.db.Collection(models.MatchRequestsCollection).InsertOne(ctx, models.MatchRequest{ID: req, UserID: w.cid,
		Status: models.MatchMatching, ActiveKey: w.cid.Hex(), ClaimToken: "t", ClaimedAt: &now}); err != nil {
		t.Fatal(err)
	}
	r := check(t, w)
	if !r.OK() {
		t.Fatal(r.Err())
	}
	for kind, want := range map[string]int{StaleSeat: 1, LobbyWithoutChat: 1, LaggingLastMessage: 1,
		OrphanNotifiedFlag: 1, StaleMatchClaim: 1, KeyWithoutMessage: 1} {
		if got := len(r.Tolerated[kind]); got != want {
			t.Errorf("%s: %d, want %d (%v)", kind, got, want, r.Tolerated)
		}
	}
	if len(r.LobbiesWithoutChat) != 1 || r.LobbiesWithoutChat[0] != quiet.Hex() {
		t.Errorf("lobbies without chat: %v", r.LobbiesWithoutChat)
	}
	t.Log(r.Summary())
}

// The unread-count sample takes the users with unread notifications first, then spreads over the rest.
func TestCountSample(t *testing.T) {
	var users []bson.ObjectID
	for i := 0; i < 10; i++ {
		users = append(users, bson.NewObjectID())
	}
	s := &state{r: &Report{}, notes: []*models.Notification{
		{UserID: users[7], Status: models.NotificationUnread},
		{UserID: users[3], Status: models.NotificationRead},
		{UserID: users[9], Status: models.NotificationUnread},
	}}
	got := s.countSample(users, 4)
	if len(got) != 4 || got[0] != users[7] || got[1] != users[9] {
		t.Fatalf("sample %v: want users 7 and 9 first, 4 in all", got)
	}
	seen := map[bson.ObjectID]bool{}
	for _, u := range got {
		if seen[u] {
			t.Fatalf("user %s twice in %v", u.Hex(), got)
		}
		seen[u] = true
	}
	if got[2] != users[0] || got[3] == users[1] { // 8 others, 2 wanted: every 4th
		t.Fatalf("rest of the sample %v not spread over the others", got[2:])
	}
	if all := s.countSample(users, 20); len(all) != 10 {
		t.Fatalf("sample of 20 from 10 users has %d", len(all))
	}
}
