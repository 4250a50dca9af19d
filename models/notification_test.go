package models

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/services/errs"
)

func TestNotificationsStoreListReadCount(t *testing.T) {
	ctx := context.Background()
	r := NewNotifications(testStore)
	alice, bob := bson.NewObjectID(), bson.NewObjectID()

	var ids []bson.ObjectID
	for i := 0; i < 5; i++ {
		n := &Notification{UserID: alice, Type: "t", Title: "title", Message: "m",
			Data: map[string]any{"n": i, "nested": map[string]any{"k": "v"}}, Channels: []string{ChannelInApp, ChannelEmail}}
		if err := r.Insert(ctx, n); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
		if n.Status != NotificationUnread || n.Delivery[ChannelEmail].Status != DeliveryPending {
			t.Fatalf("insert defaults: %+v", n)
		}
		if i == 2 {
			time.Sleep(2 * time.Millisecond) // two distinct createdAt groups; same-ms ties use _id
		}
	}
	other := &Notification{UserID: bob, Type: "t", Title: "bob's", Channels: []string{ChannelInApp}}
	if err := r.Insert(ctx, other); err != nil {
		t.Fatal(err)
	}

	// Pages of two, newest first, no overlap, nothing of bob's.
	var seen []bson.ObjectID
	var after *NotificationCursor
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("cursor never ends")
		}
		if after != nil {
			// The cursor survives its text form.
			c, err := ParseNotificationCursor(after.String())
			if err != nil || !c.CreatedAt.Equal(after.CreatedAt) || c.ID != after.ID {
				t.Fatalf("cursor round trip: %v %+v %+v", err, c, after)
			}
			after = &c
		}
		list, next, err := r.List(ctx, NotificationQuery{UserID: alice, Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range list {
			seen = append(seen, n.ID)
		}
		if next == nil {
			break
		}
		after = next
	}
	if len(seen) != 5 {
		t.Fatalf("paged %d notifications, want 5", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[4-i] {
			t.Fatalf("page order: got %v want reverse of %v", seen, ids)
		}
	}

	// Nested data decodes as objects.
	n, err := r.ByID(ctx, alice, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(n.Data)
	if string(js) != `{"n":0,"nested":{"k":"v"}}` {
		t.Fatalf("data as JSON = %s", js)
	}

	// Another user's notification does not exist for bob, and is not changed.
	if _, err := r.ByID(ctx, bob, ids[0]); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("bob reads alice's: %v", err)
	}
	if _, err := r.MarkRead(ctx, bob, ids[0]); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("bob marks alice's: %v", err)
	}
	if total, unread, _ := r.Count(ctx, alice); total != 5 || unread != 5 {
		t.Fatalf("count after bob's attempt: %d/%d", total, unread)
	}

	read, err := r.MarkRead(ctx, alice, ids[1])
	if err != nil || read.Status != NotificationRead || read.ReadAt == nil {
		t.Fatalf("mark read: %v %+v", err, read)
	}
	first := *read.ReadAt
	time.Sleep(2 * time.Millisecond)
	again, err := r.MarkRead(ctx, alice, ids[1])
	if err != nil || !again.ReadAt.Equal(first) {
		t.Fatalf("second mark read changed readAt: %v %v %v", err, again.ReadAt, first)
	}
	unreadList, _, err := r.List(ctx, NotificationQuery{UserID: alice, Status: NotificationUnread, Limit: 10})
	if err != nil || len(unreadList) != 4 {
		t.Fatalf("unread list: %v %d", err, len(unreadList))
	}
	if total, unread, _ := r.Count(ctx, alice); total != 5 || unread != 4 {
		t.Fatalf("count: %d/%d", total, unread)
	}
	changed, err := r.MarkAllRead(ctx, alice)
	if err != nil || changed != 4 {
		t.Fatalf("mark all: %v %d", err, changed)
	}
	if total, unread, _ := r.Count(ctx, alice); total != 5 || unread != 0 {
		t.Fatalf("count after all read: %d/%d", total, unread)
	}
	if total, unread, _ := r.Count(ctx, bob); total != 1 || unread != 1 {
		t.Fatalf("bob's count touched: %d/%d", total, unread)
	}

	sent := time.Now()
	if err := r.SetDelivery(ctx, alice, ids[0], ChannelEmail, Delivery{Status: DeliverySent, SentAt: &sent}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDelivery(ctx, alice, ids[0], ChannelInApp, Delivery{Status: DeliveryFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	n, _ = r.ByID(ctx, alice, ids[0])
	if n.Delivery[ChannelEmail].Status != DeliverySent || n.Delivery[ChannelEmail].SentAt == nil ||
		n.Delivery[ChannelInApp].Status != DeliveryFailed || n.Delivery[ChannelInApp].Error != "boom" {
		t.Fatalf("delivery = %+v", n.Delivery)
	}
	if err := r.SetDelivery(ctx, alice, bson.NewObjectID(), ChannelEmail, Delivery{Status: DeliverySent}); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("delivery of a missing notification: %v", err)
	}
	if _, _, err := r.List(ctx, NotificationQuery{UserID: alice}); !errs.Is(err, errs.CodeValidation) {
		t.Fatalf("zero limit: %v", err)
	}
}

func TestParseNotificationCursorRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "!!", "bm90LWEtY3Vyc29y", NotificationCursor{ID: bson.NewObjectID()}.String()[:10]} {
		if _, err := ParseNotificationCursor(s); !errs.Is(err, errs.CodeValidation) {
			t.Errorf("cursor %q: %v", s, err)
		}
	}
}

// A delivery update racing MarkRead on the same notification must keep both changes (FerretDB v1
// applies updates as read-modify-write; the per-user LockDoc serialises them).
func TestNotificationDeliveryRacingMarkReadKeepsBoth(t *testing.T) {
	ctx := context.Background()
	r := NewNotifications(testStore)
	user := bson.NewObjectID()
	for i := 0; i < 20; i++ {
		n := &Notification{UserID: user, Type: "t", Title: "race", Channels: []string{ChannelInApp, ChannelEmail}}
		if err := r.Insert(ctx, n); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 2)
		go func() {
			done <- r.SetDelivery(ctx, user, n.ID, ChannelEmail, Delivery{Status: DeliveryFailed, Error: "no smtp"})
		}()
		go func() {
			_, err := r.MarkRead(ctx, user, n.ID)
			done <- err
		}()
		for j := 0; j < 2; j++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.ByID(ctx, user, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != NotificationRead || got.Delivery[ChannelEmail].Status != DeliveryFailed {
			t.Fatalf("round %d lost an update: status=%s delivery=%+v", i, got.Status, got.Delivery[ChannelEmail])
		}
	}
}
