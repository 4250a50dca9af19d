package notifications

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/notifications/notifytest"
	"github.com/maoga/maoga/services/realtime"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "notifications_test", &store) }

func newUser(t *testing.T, name string) *models.User {
	t.Helper()
	u := &models.User{Username: name + bson.NewObjectID().Hex()[16:], Email: name + bson.NewObjectID().Hex()[16:] + "@example.com",
		DisplayName: strings.ToUpper(name[:1]) + name[1:], PasswordHash: "x"}
	if err := models.NewUsers(store).Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func newService(t *testing.T, email EmailSender, push PushSender) (*Service, *realtime.Recorder) {
	t.Helper()
	rec := &realtime.Recorder{}
	return New(Options{
		Store: models.NewNotifications(store), Users: models.NewUsers(store), Emitter: rec,
		Email: email, Push: push,
	}), rec
}

func stored(t *testing.T, userID bson.ObjectID, id string) *models.Notification {
	t.Helper()
	nid, _ := models.ParseID(id)
	n, err := models.NewNotifications(store).ByID(context.Background(), userID, nid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateDeliversOnEveryChannel(t *testing.T) {
	ctx := context.Background()
	smtpSrv := notifytest.NewSMTPServer(t, "u", "p")
	hook := notifytest.NewWebhook(t, http.StatusOK)
	mail, err := NewSMTPSender(smtpSrv.URL(), "no-reply@maoga.test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	push, _ := NewWebhookPush(hook.URL, 5*time.Second)
	svc, rec := newService(t, mail, push)
	ann := newUser(t, "ann")

	v, err := svc.Create(ctx, Draft{
		UserID: ann.ID.Hex(), Type: "test", Title: "Hello", Message: "Body text",
		Data: map[string]any{"k": "v"}, Channels: []string{"inApp", "push", "email"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"inApp", "push", "email"} {
		if d := v.Delivery[ch]; d.Status != "sent" || d.SentAt == "" || d.Error != "" {
			t.Fatalf("returned delivery %s = %+v", ch, d)
		}
	}
	n := stored(t, ann.ID, v.ID)
	for _, ch := range []string{"inApp", "push", "email"} {
		if d := n.Delivery[ch]; d.Status != "sent" || d.SentAt == nil {
			t.Fatalf("stored delivery %s = %+v", ch, d)
		}
	}

	got := rec.Events()
	if len(got) != 2 || got[0].Event != "notification:new" || got[1].Event != "notification:count" {
		t.Fatalf("emits = %+v", got)
	}
	room := "user:" + ann.ID.Hex()
	js, _ := json.Marshal(got[0].Args[0])
	want := `{"notification":{"id":"` + v.ID + `","type":"test","title":"Hello","message":"Body text","data":{"k":"v"},"createdAt":"` + v.CreatedAt + `"}}`
	if got[0].Room != room || string(js) != want {
		t.Fatalf("notification:new to %s = %s\nwant %s", got[0].Room, js, want)
	}
	js, _ = json.Marshal(got[1].Args[0])
	if got[1].Room != room || string(js) != `{"total":1,"unread":1,"unreadCount":1}` {
		t.Fatalf("notification:count to %s = %s", got[1].Room, js)
	}

	m := smtpSrv.WaitMail(t, 5*time.Second)
	if len(m.To) != 1 || m.To[0] != ann.Email || !strings.Contains(m.Data, "Subject: Hello\r\n") || !strings.Contains(m.Data, "Body text") {
		t.Fatalf("mail = %+v", m)
	}
	r := hook.WaitRequest(t, 5*time.Second)
	var body PushBody
	if err := json.Unmarshal(r.Body, &body); err != nil || body.UserID != ann.ID.Hex() || body.Notification.NotificationID != v.ID {
		t.Fatalf("push body %s (%v)", r.Body, err)
	}
}

func TestUnconfiguredAndFailingChannelsAreMarkedFailed(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, nil, nil)
	bo := newUser(t, "bo")
	v, err := svc.Create(ctx, Draft{UserID: bo.ID.Hex(), Type: "t", Title: "x", Channels: []string{"email", "push"}})
	if err != nil {
		t.Fatal(err)
	}
	n := stored(t, bo.ID, v.ID)
	if d := n.Delivery["email"]; d.Status != "failed" || d.SentAt != nil || !strings.Contains(d.Error, "not configured") || !strings.Contains(d.Error, "SMTP_URL") {
		t.Fatalf("email without SMTP = %+v", d)
	}
	if d := n.Delivery["push"]; d.Status != "failed" || !strings.Contains(d.Error, "PUSH_WEBHOOK_URL") {
		t.Fatalf("push without webhook = %+v", d)
	}
	if _, ok := n.Delivery["inApp"]; ok {
		t.Fatal("inApp delivery recorded though not asked for")
	}

	hook := notifytest.NewWebhook(t, http.StatusBadGateway)
	push, _ := NewWebhookPush(hook.URL, 5*time.Second)
	smtpSrv := notifytest.NewSMTPServer(t, "", "")
	smtpSrv.RejectRcpt = "@"
	mail, _ := NewSMTPSender(smtpSrv.URL(), "no-reply@maoga.test", 5*time.Second)
	svc2, _ := newService(t, mail, push)
	v, err = svc2.Create(ctx, Draft{UserID: bo.ID.Hex(), Type: "t", Title: "x", Channels: []string{"push", "email"}})
	if err != nil {
		t.Fatal(err)
	}
	n = stored(t, bo.ID, v.ID)
	if d := n.Delivery["push"]; d.Status != "failed" || !strings.Contains(d.Error, "502") {
		t.Fatalf("push to failing webhook = %+v", d)
	}
	if d := n.Delivery["email"]; d.Status != "failed" || !strings.Contains(d.Error, "550") {
		t.Fatalf("email to rejected address = %+v", d)
	}
}

func TestCreateValidatesAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	svc, rec := newService(t, nil, nil)
	cy := newUser(t, "cy")
	ok := Draft{UserID: cy.ID.Hex(), Type: "t", Title: "x"}
	cases := map[string]func(d *Draft){
		"bad user id":      func(d *Draft) { d.UserID = "nope" },
		"empty type":       func(d *Draft) { d.Type = "" },
		"long type":        func(d *Draft) { d.Type = strings.Repeat("t", MaxTypeLen+1) },
		"empty title":      func(d *Draft) { d.Title = "" },
		"long title":       func(d *Draft) { d.Title = strings.Repeat("é", MaxTitleLen+1) },
		"long message":     func(d *Draft) { d.Message = strings.Repeat("m", MaxMessageLen+1) },
		"big data":         func(d *Draft) { d.Data = map[string]any{"x": strings.Repeat("d", MaxDataBytes)} },
		"unknown channel":  func(d *Draft) { d.Channels = []string{"sms"} },
		"repeated channel": func(d *Draft) { d.Channels = []string{"inApp", "inApp"} },
	}
	for name, mutate := range cases {
		d := ok
		mutate(&d)
		if _, err := svc.Create(ctx, d); !errs.Is(err, errs.CodeValidation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// At the limits it is accepted.
	edge := ok
	edge.Type, edge.Title, edge.Message = strings.Repeat("t", MaxTypeLen), strings.Repeat("é", MaxTitleLen), strings.Repeat("m", MaxMessageLen)
	if _, err := svc.Create(ctx, edge); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	c, _ := svc.Counts(ctx, cy.ID.Hex())
	if c.Total != 1 {
		t.Fatalf("stored %d notifications, want only the valid one", c.Total)
	}
	if n := len(rec.Events()); n != 2 {
		t.Fatalf("emitted %d events, want new+count of the valid one", n)
	}
}

func TestReadOneAndAllSendFreshCounts(t *testing.T) {
	ctx := context.Background()
	svc, rec := newService(t, nil, nil)
	dee, eve := newUser(t, "dee"), newUser(t, "eve")
	var ids []string
	for i := 0; i < 3; i++ {
		v, err := svc.Create(ctx, Draft{UserID: dee.ID.Hex(), Type: "t", Title: "x"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	rec.Reset()

	// Eve cannot read Dee's notification, nor guess with garbage ids.
	for _, id := range []string{ids[0], "garbage", bson.NewObjectID().Hex()} {
		if _, err := svc.MarkRead(ctx, eve.ID.Hex(), id); !errs.Is(err, errs.CodeNotFound) {
			t.Fatalf("eve reads %s: %v", id, err)
		}
	}
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("failed reads emitted %d events", n)
	}
	if n := stored(t, dee.ID, ids[0]); n.Status != "unread" {
		t.Fatal("eve's attempt marked dee's notification read")
	}

	v, err := svc.MarkRead(ctx, dee.ID.Hex(), ids[0])
	if err != nil || !v.Read || v.Status != "read" || v.ReadAt == nil {
		t.Fatalf("mark read: %v %+v", err, v)
	}
	got := rec.Events()
	if len(got) != 1 || got[0].Event != "notification:count" || got[0].Room != "user:"+dee.ID.Hex() ||
		got[0].Args[0] != (Count{Total: 3, Unread: 2, UnreadCount: 2}) {
		t.Fatalf("after read one: %+v", got)
	}
	rec.Reset()
	c, err := svc.MarkAllRead(ctx, dee.ID.Hex())
	if err != nil || c != (Count{Total: 3, Unread: 0, UnreadCount: 0}) {
		t.Fatalf("mark all: %v %+v", err, c)
	}
	got = rec.Events()
	if len(got) != 1 || got[0].Event != "notification:count" || got[0].Args[0] != c {
		t.Fatalf("after read all: %+v", got)
	}
}

func TestListPagesAndFilters(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t, nil, nil)
	fay := newUser(t, "fay")
	var ids []string
	for i := 0; i < 5; i++ {
		v, err := svc.Create(ctx, Draft{UserID: fay.ID.Hex(), Type: "t", Title: "x"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	if _, err := svc.MarkRead(ctx, fay.ID.Hex(), ids[4]); err != nil {
		t.Fatal(err)
	}
	var all []string
	cursor := ""
	for i := 0; i < 10; i++ {
		page, next, err := svc.List(ctx, fay.ID.Hex(), ListOptions{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			all = append(all, v.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(all, ",") != strings.Join([]string{ids[4], ids[3], ids[2], ids[1], ids[0]}, ",") {
		t.Fatalf("paged %v", all)
	}
	unread, next, err := svc.List(ctx, fay.ID.Hex(), ListOptions{Status: "unread"})
	if err != nil || len(unread) != 4 || next != "" {
		t.Fatalf("unread: %v %d %q", err, len(unread), next)
	}
	for _, v := range unread {
		if v.Read || v.ID == ids[4] {
			t.Fatalf("read notification in unread list: %+v", v)
		}
	}
	for name, o := range map[string]ListOptions{
		"status": {Status: "new"}, "limit high": {Limit: MaxLimit + 1}, "limit negative": {Limit: -1},
		"cursor": {Cursor: "garbage"},
	} {
		if _, _, err := svc.List(ctx, fay.ID.Hex(), o); !errs.Is(err, errs.CodeValidation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if page, _, err := svc.List(ctx, fay.ID.Hex(), ListOptions{Limit: MaxLimit}); err != nil || len(page) != 5 {
		t.Fatalf("limit at max: %v %d", err, len(page))
	}
}

func TestEventsCreateNotifications(t *testing.T) {
	ctx := context.Background()
	svc, rec := newService(t, nil, nil)
	bus := events.NewMemory(events.MemoryOptions{})
	defer bus.Close(ctx)
	off := svc.Subscribe(bus)
	defer off()
	gus, hal := newUser(t, "gus"), newUser(t, "hal")

	e, _ := events.New(events.FriendshipRequested, events.FriendshipData{
		FriendshipID: "f1", RequesterID: gus.ID.Hex(), AddresseeID: hal.ID.Hex()})
	if err := bus.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	e, _ = events.New(events.UserRegistered, events.UserRegisteredData{UserID: gus.ID.Hex(), Username: gus.Username})
	if err := bus.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	e, _ = events.New(events.FriendshipAccepted, events.FriendshipData{
		FriendshipID: "f1", RequesterID: gus.ID.Hex(), AddresseeID: hal.ID.Hex(), AddresseeName: "Hal H."})
	if err := bus.Publish(ctx, e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Events()) < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	halList, _, _ := svc.List(ctx, hal.ID.Hex(), ListOptions{})
	if len(halList) != 1 || halList[0].Type != TypeFriendRequest || halList[0].Message != gus.DisplayName+" sent you a friend request." ||
		halList[0].Data["friendshipId"] != "f1" || halList[0].Data["requesterId"] != gus.ID.Hex() {
		t.Fatalf("hal's notifications: %+v", halList)
	}
	gusList, _, _ := svc.List(ctx, gus.ID.Hex(), ListOptions{})
	types := map[string]string{}
	for _, v := range gusList {
		types[v.Type] = v.Message
	}
	if len(gusList) != 2 || !strings.Contains(types[TypeWelcome], gus.Username) || types[TypeFriendAccepted] != "Hal H. accepted your friend request." {
		t.Fatalf("gus's notifications: %+v", gusList)
	}
	newTo := map[string]int{}
	for _, e := range rec.Events() {
		if e.Event == EventNew {
			newTo[e.Room]++
		}
	}
	if newTo["user:"+hal.ID.Hex()] != 1 || newTo["user:"+gus.ID.Hex()] != 2 {
		t.Fatalf("notification:new rooms = %v", newTo)
	}
}

// An event delivered several times (a retry after a lost answer, a redelivery) creates its
// notification once and sends notification:new once: the id comes from the event and the handler.
func TestEventNotificationsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	svc, rec := newService(t, nil, nil)
	bus := events.NewMemory(events.MemoryOptions{})
	defer bus.Close(ctx)
	off := svc.Subscribe(bus)
	defer off()
	ida := newUser(t, "ida")
	e, _ := events.New(events.UserRegistered, events.UserRegisteredData{UserID: ida.ID.Hex(), Username: ida.Username})
	e = events.Stamp(e, "test")
	for i := 0; i < 3; i++ {
		if err := bus.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.onUserRegistered(ctx, e); err != nil { // and once more, concurrently with the queue
		t.Fatal(err)
	}
	count := func(name string) int {
		n := 0
		for _, ev := range rec.Events() {
			if ev.Event == name {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for count(EventCount) < 4 { // every delivery ends with a fresh count
		if time.Now().After(deadline) {
			t.Fatalf("%d counts sent, want 4", count(EventCount))
		}
		time.Sleep(10 * time.Millisecond)
	}
	list, _, err := svc.List(ctx, ida.ID.Hex(), ListOptions{})
	if err != nil || len(list) != 1 || list[0].ID != EventNotificationID(e, handlerWelcome).Hex() {
		t.Fatalf("%d notifications (%v): %+v", len(list), err, list)
	}
	if n := count(EventNew); n != 1 {
		t.Fatalf("notification:new sent %d times", n)
	}
	if a, b := EventNotificationID(e, handlerWelcome), EventNotificationID(e, handlerFriendRequest); a == b {
		t.Fatal("two handlers of one event share a notification id")
	}
}
