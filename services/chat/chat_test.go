package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "chat_test", &store) }

var seq atomic.Int64

func newUser(t *testing.T) *models.User {
	t.Helper()
	name := fmt.Sprintf("chat_%d_%d", time.Now().UnixNano()%1e6, seq.Add(1))
	u := &models.User{Username: name, Email: name + "@example.com", PasswordHash: "x", DisplayName: "D " + name}
	if err := models.NewUsers(store).Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func ref(u *models.User) UserRef {
	return UserRef{ID: u.ID.Hex(), Username: u.Username, DisplayName: u.DisplayName}
}

// rooms is a realtime.RoomUsers whose answer the test sets.
type rooms struct {
	mu  sync.Mutex
	set map[string]map[string]bool
}

func (r *rooms) put(room, user string, in bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = map[string]map[string]bool{}
	}
	if r.set[room] == nil {
		r.set[room] = map[string]bool{}
	}
	r.set[room][user] = in
}

func (r *rooms) UsersInRoom(_ context.Context, room string) (map[string]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for k, v := range r.set[room] {
		if v {
			out[k] = true
		}
	}
	return out, nil
}

// notifier records the drafts it was asked to create.
type notifier struct {
	mu     sync.Mutex
	drafts []notifications.Draft
}

func (n *notifier) Create(_ context.Context, d notifications.Draft) (*notifications.View, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drafts = append(n.drafts, d)
	return &notifications.View{}, nil
}

func (n *notifier) forUser(id string) []notifications.Draft {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notifications.Draft
	for _, d := range n.drafts {
		if d.UserID == id {
			out = append(out, d)
		}
	}
	return out
}

// publisher records published events.
type publisher struct {
	mu  sync.Mutex
	evs []events.Event
}

func (p *publisher) Publish(_ context.Context, e events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, e)
	return nil
}

type env struct {
	svc   *Service
	emit  *realtime.Recorder
	rooms *rooms
	notes *notifier
	pub   *publisher
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{emit: &realtime.Recorder{}, rooms: &rooms{}, notes: &notifier{}, pub: &publisher{}}
	e.svc = New(Options{Store: store, Lobbies: NewModelLobbies(store), Emitter: e.emit, Rooms: e.rooms,
		Notifier: e.notes, Events: e.pub, Config: cfg})
	return e
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if !errs.Is(err, code) {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func newLobby(t *testing.T, status string, members map[*models.User]string) bson.ObjectID {
	t.Helper()
	now := time.Now().UTC()
	l := models.Lobby{ID: bson.NewObjectID(), GameID: "g", GameMode: "m", Status: status,
		Capacity: models.Capacity{Min: 1, Max: 4}, Members: map[string]*models.LobbyMember{}, CreatedAt: now, UpdatedAt: now}
	for u, st := range members {
		l.Members[u.ID.Hex()] = &models.LobbyMember{UserID: u.ID, Status: st, JoinedAt: now}
		if st == models.MemberJoined {
			l.ActiveMemberIDs = append(l.ActiveMemberIDs, u.ID)
		}
	}
	if _, err := store.Collection(models.LobbiesCollection).InsertOne(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestCreateDirectOncePerPair(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	const n = 8
	ids := make([]string, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			v, c, err := e.svc.CreateDirect(ctx, from.ID.Hex(), to.ID.Hex())
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = v.ID, c
		}(i)
	}
	wg.Wait()
	nCreated := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("different chats for one pair: %v", ids)
		}
		if created[i] {
			nCreated++
		}
	}
	if nCreated != 1 {
		t.Fatalf("created reported %d times", nCreated)
	}
	cnt, err := store.Collection(models.ChatsCollection).CountDocuments(ctx, bson.M{"key": directKey(a.ID, b.ID)})
	if err != nil || cnt != 1 {
		t.Fatalf("stored %d chats for the pair (%v)", cnt, err)
	}

	_, _, err = e.svc.CreateDirect(ctx, a.ID.Hex(), a.ID.Hex())
	wantCode(t, err, errs.CodeValidation)
	_, _, err = e.svc.CreateDirect(ctx, a.ID.Hex(), bson.NewObjectID().Hex())
	wantCode(t, err, errs.CodeNotFound)
	_, _, err = e.svc.CreateDirect(ctx, a.ID.Hex(), "not-an-id")
	wantCode(t, err, errs.CodeValidation)
}

func TestAccess(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b, out := newUser(t), newUser(t), newUser(t)
	v, _, err := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Access(ctx, v.ID, b.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Access(ctx, v.ID, out.ID.Hex())
	wantCode(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Access(ctx, bson.NewObjectID().Hex(), a.ID.Hex())
	wantCode(t, err, errs.CodeChatNotFound)
	_, err = e.svc.Access(ctx, "nonsense", a.ID.Hex())
	wantCode(t, err, errs.CodeChatNotFound)
	_, err = e.svc.Access(ctx, "", a.ID.Hex())
	wantCode(t, err, errs.CodeValidation)

	lobby := newLobby(t, models.LobbyForming, map[*models.User]string{a: models.MemberJoined, b: models.MemberKicked})
	chatID := models.LobbyChatID(lobby.Hex())
	c, err := e.svc.Join(ctx, chatID, a.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != models.ChatLobby || c.LobbyID == nil || *c.LobbyID != lobby {
		t.Fatalf("lobby chat doc: %+v", c)
	}
	_, err = e.svc.Access(ctx, chatID, b.ID.Hex()) // kicked
	wantCode(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Access(ctx, chatID, out.ID.Hex())
	wantCode(t, err, errs.CodeAccessDenied)
	_, err = e.svc.Access(ctx, models.LobbyChatID(bson.NewObjectID().Hex()), a.ID.Hex())
	wantCode(t, err, errs.CodeChatNotFound)
	_, err = e.svc.Access(ctx, "lobby:xyz", a.ID.Hex())
	wantCode(t, err, errs.CodeChatNotFound)

	closed := newLobby(t, models.LobbyClosed, map[*models.User]string{a: models.MemberJoined})
	_, err = e.svc.Access(ctx, models.LobbyChatID(closed.Hex()), a.ID.Hex())
	wantCode(t, err, errs.CodeAccessDenied)

	// Concurrent first joins create one lobby chat document.
	l2 := newLobby(t, models.LobbyForming, map[*models.User]string{a: models.MemberJoined, b: models.MemberJoined})
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(u *models.User) {
			defer wg.Done()
			if _, err := e.svc.Join(ctx, models.LobbyChatID(l2.Hex()), u.ID.Hex()); err != nil {
				t.Error(err)
			}
		}([]*models.User{a, b}[i%2])
	}
	wg.Wait()
	doc, err := e.svc.load(ctx, models.LobbyChatID(l2.Hex()))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Participants) != 2 {
		t.Fatalf("participants after concurrent joins: %v", doc.Participants)
	}
}

func TestValidateMessage(t *testing.T) {
	e := newEnv(t, Config{MaxContentLen: 10})
	cases := []struct {
		content, typ string
		ok           bool
		want         string
	}{
		{"hello", "", true, "hello"},
		{"  hi  ", "text", true, "hi"},
		{"0123456789", "text", true, "0123456789"}, // exactly the limit
		{"ééééééééééé", "text", false, ""},         // 11 characters (22 bytes)
		{"éééééééééé", "text", true, "éééééééééé"}, // 10 characters, 20 bytes
		{"01234567890", "text", false, ""},
		{"", "text", false, ""},
		{"   \n\t ", "text", false, ""},
		{"🎉", "emoji", true, "🎉"},
		{"hello", "video", false, ""},
		{"hello", "gif", false, ""},
		{"ftp://x.io/a", "gif", false, ""},
		{"https://", "gif", false, ""},
		{"http://g.i", "gif", true, "http://g.i"},
		{"x\xffy", "text", false, ""},
	}
	for _, c := range cases {
		got, _, err := e.svc.ValidateMessage(c.content, c.typ)
		if c.ok && (err != nil || got != c.want) {
			t.Errorf("%q/%q: got %q, %v", c.content, c.typ, got, err)
		}
		if !c.ok && !errs.Is(err, errs.CodeValidation) {
			t.Errorf("%q/%q: want VALIDATION_ERROR, got %v", c.content, c.typ, err)
		}
	}
}

func messageCount(t *testing.T, chatID string) int64 {
	t.Helper()
	n, err := store.Collection(models.MessagesCollection).CountDocuments(context.Background(), bson.M{"chatId": chatID})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendStoresThenBroadcasts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{MaxContentLen: 20})
	a, b, out := newUser(t), newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())

	// Refused messages store nothing and send nothing.
	_, err := e.svc.Send(ctx, ref(a), v.ID, strings.Repeat("x", 21), "text")
	wantCode(t, err, errs.CodeValidation)
	_, err = e.svc.Send(ctx, ref(out), v.ID, "hi", "text")
	wantCode(t, err, errs.CodeAccessDenied)
	if n := messageCount(t, v.ID); n != 0 || len(e.emit.Events()) != 0 {
		t.Fatalf("refused messages left %d stored, %d emitted", n, len(e.emit.Events()))
	}

	m, err := e.svc.Send(ctx, ref(a), v.ID, "  hello  ", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Content != "hello" || m.ContentType != "text" || m.Sender.Username != a.Username || m.Sender.DisplayName != a.DisplayName {
		t.Fatalf("message view: %+v", m)
	}
	if messageCount(t, v.ID) != 1 {
		t.Fatal("message not stored")
	}
	evs := e.emit.Events()
	if len(evs) != 1 || evs[0].Room != "chat:"+v.ID || evs[0].Event != "chat:message" {
		t.Fatalf("broadcast: %+v", evs)
	}
	raw, _ := json.Marshal(evs[0].Args[0])
	var p struct {
		ChatID  string `json:"chatId"`
		Message struct {
			ID     string `json:"id"`
			Sender struct{ ID, Username, DisplayName string }
		} `json:"message"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.ChatID != v.ID || p.Message.ID != m.ID || p.Message.Sender.ID != a.ID.Hex() {
		t.Fatalf("payload %s (%v)", raw, err)
	}
	if len(e.pub.evs) != 1 || e.pub.evs[0].Name != events.ChatMessageSent {
		t.Fatalf("published: %+v", e.pub.evs)
	}
	var d MessageSentData
	if err := e.pub.evs[0].Decode(&d); err != nil || len(d.Recipients) != 1 || d.Recipients[0] != b.ID.Hex() {
		t.Fatalf("event data %+v (%v)", d, err)
	}
	doc, _ := e.svc.load(ctx, v.ID)
	if doc.LastMessageID == nil || doc.LastMessageID.Hex() != m.ID {
		t.Fatalf("lastMessageId not recorded: %+v", doc)
	}
}

func TestUnreadAndMarkRead(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	unread := func(u *models.User) int64 {
		t.Helper()
		c, err := e.svc.load(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		n, err := e.svc.UnreadCount(ctx, c, u.ID.Hex())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var ids []string
	for i := 0; i < 4; i++ { // several land in one millisecond: order falls back to the id
		m, err := e.svc.Send(ctx, ref(b), v.ID, fmt.Sprint("m", i), "text")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := e.svc.Send(ctx, ref(a), v.ID, "mine", "text"); err != nil {
		t.Fatal(err)
	}
	if n := unread(a); n != 4 {
		t.Fatalf("a unread = %d, want 4 (own messages never count)", n)
	}
	if n := unread(b); n != 1 {
		t.Fatalf("b unread = %d, want 1", n)
	}
	if _, err := e.svc.MarkRead(ctx, a.ID.Hex(), v.ID, ids[1]); err != nil {
		t.Fatal(err)
	}
	if n := unread(a); n != 2 {
		t.Fatalf("after reading up to the 2nd: unread = %d, want 2", n)
	}
	// Read state never moves back.
	if rs, err := e.svc.MarkRead(ctx, a.ID.Hex(), v.ID, ids[0]); err != nil || rs.MessageID.Hex() != ids[1] {
		t.Fatalf("read state moved back: %+v %v", rs, err)
	}
	if _, err := e.svc.MarkRead(ctx, a.ID.Hex(), v.ID, ""); err != nil {
		t.Fatal(err)
	}
	if n := unread(a); n != 0 {
		t.Fatalf("after reading all: unread = %d", n)
	}
	_, err := e.svc.MarkRead(ctx, a.ID.Hex(), v.ID, bson.NewObjectID().Hex())
	wantCode(t, err, errs.CodeValidation)
	_, err = e.svc.MarkRead(ctx, newUser(t).ID.Hex(), v.ID, "")
	wantCode(t, err, errs.CodeAccessDenied)

	list, err := e.svc.List(ctx, b.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].UnreadCount != 1 || list[0].LastMessageAt == nil || len(list[0].Participants) != 2 {
		t.Fatalf("list: %+v", list)
	}
}

func TestHistoryPaging(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	var sent []string
	for i := 0; i < 7; i++ {
		m, err := e.svc.Send(ctx, ref(a), v.ID, fmt.Sprint("m", i), "text")
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m.ID)
	}
	var got []string
	before := ""
	pages := 0
	for {
		items, next, err := e.svc.History(ctx, b.ID.Hex(), v.ID, before, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range items {
			got = append(got, m.ID)
			if m.Sender.Username != a.Username {
				t.Fatalf("sender not filled: %+v", m)
			}
		}
		if next == nil {
			break
		}
		before = *next
	}
	if pages != 3 || len(got) != 7 {
		t.Fatalf("pages=%d got=%d", pages, len(got))
	}
	for i := range got {
		if got[i] != sent[len(sent)-1-i] {
			t.Fatalf("not newest first: got %v sent %v", got, sent)
		}
	}
	_, _, err := e.svc.History(ctx, newUser(t).ID.Hex(), v.ID, "", 10)
	wantCode(t, err, errs.CodeAccessDenied)
	_, _, err = e.svc.History(ctx, a.ID.Hex(), v.ID, bson.NewObjectID().Hex(), 10)
	wantCode(t, err, errs.CodeValidation)
	_, _, err = e.svc.History(ctx, a.ID.Hex(), v.ID, "", MaxHistoryLimit+1)
	wantCode(t, err, errs.CodeValidation)
}

func TestNotifyUnreadOncePerChatUntilRead(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b, c := newUser(t), newUser(t), newUser(t)
	lobby := newLobby(t, models.LobbyForming, map[*models.User]string{a: models.MemberJoined, b: models.MemberJoined, c: models.MemberJoined})
	chatID := models.LobbyChatID(lobby.Hex())
	if _, err := e.svc.Join(ctx, chatID, a.ID.Hex()); err != nil {
		t.Fatal(err)
	}
	e.rooms.put(Room(chatID), c.ID.Hex(), true) // c reads along; b is away

	send := func() MessageSentData {
		t.Helper()
		e.pub.mu.Lock()
		e.pub.evs = nil
		e.pub.mu.Unlock()
		if _, err := e.svc.Send(ctx, ref(a), chatID, "hello", "text"); err != nil {
			t.Fatal(err)
		}
		var d MessageSentData
		if err := e.pub.evs[0].Decode(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := send()
	if len(d.Recipients) != 2 {
		t.Fatalf("recipients %v", d.Recipients)
	}
	// Several deliveries at once (concurrent messages) still make one notification.
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.svc.NotifyUnread(ctx, d); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(e.notes.forUser(b.ID.Hex())); n != 1 {
		t.Fatalf("b got %d notifications, want 1", n)
	}
	if n := len(e.notes.forUser(c.ID.Hex())); n != 0 {
		t.Fatalf("c is in the room and got %d notifications", n)
	}
	note := e.notes.forUser(b.ID.Hex())[0]
	if note.Type != NotificationType || note.Data["chatId"] != chatID {
		t.Fatalf("notification %+v", note)
	}
	if err := e.svc.NotifyUnread(ctx, send()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.notes.forUser(b.ID.Hex())); n != 1 {
		t.Fatalf("second message: b has %d notifications, want still 1", n)
	}
	// Reading clears the flag: the next message notifies again.
	if _, err := e.svc.MarkRead(ctx, b.ID.Hex(), chatID, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.NotifyUnread(ctx, send()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.notes.forUser(b.ID.Hex())); n != 2 {
		t.Fatalf("after read: b has %d notifications, want 2", n)
	}
	// Lobby chat shows in b's list (b never joined it) until b is no longer a member.
	list, err := e.svc.List(ctx, b.ID.Hex())
	if err != nil || len(list) != 1 || list[0].ID != chatID || list[0].UnreadCount != 1 {
		t.Fatalf("b's list %+v (%v)", list, err)
	}
	_, err = store.Collection(models.LobbiesCollection).UpdateOne(ctx, bson.M{"_id": lobby},
		bson.M{"$set": bson.M{"members." + b.ID.Hex() + ".status": models.MemberLeft}})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := e.svc.List(ctx, b.ID.Hex()); err != nil || len(list) != 0 {
		t.Fatalf("after leaving the lobby: %+v (%v)", list, err)
	}
}

func TestSubscribeUsesTheBus(t *testing.T) {
	ctx := context.Background()
	bus := events.NewMemory(events.MemoryOptions{})
	defer bus.Close(ctx)
	e := newEnv(t, Config{})
	e.svc.pub = bus
	defer e.svc.Subscribe(bus)()
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	if _, err := e.svc.Send(ctx, ref(a), v.ID, "hi", "text"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.notes.forUser(b.ID.Hex())) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no notification through the bus")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.notes.forUser(b.ID.Hex())[0].Title; got != "New message from "+a.DisplayName {
		t.Fatalf("title %q", got)
	}
}
