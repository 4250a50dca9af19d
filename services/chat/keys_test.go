package chat

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/realtime"
)

func keyCount(t *testing.T, filter bson.M) int64 {
	t.Helper()
	n, err := store.Collection(models.MessageKeysCollection).CountDocuments(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// wantField checks a VALIDATION_ERROR / MESSAGE_ERROR names field in details.fields.
func wantField(t *testing.T, err error, code, field string) {
	t.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	fields, _ := e.Details["fields"].(map[string]any)
	if _, ok := fields[field]; !ok {
		t.Fatalf("%s does not name %s: %+v", code, field, e.Details)
	}
}

func TestCheckClientMessageID(t *testing.T) {
	good := []string{"a", "A-z_09", strings.Repeat("x", MaxClientMessageIDLen), "0b0d5c3e-1f2a-4b3c-9d8e-7f6a5b4c3d2e"}
	for _, id := range good {
		if err := CheckClientMessageID(id); err != nil {
			t.Errorf("%q refused: %v", id, err)
		}
	}
	bad := []string{"", strings.Repeat("x", MaxClientMessageIDLen+1), "a b", "a|b", "a.b", "é", "$ne", "a\x00b", "a\n", "{}"}
	for _, id := range bad {
		wantField(t, CheckClientMessageID(id), errs.CodeValidation, "clientMessageId")
	}
}

// The same sender and key twice: one stored message, one broadcast, one event; the resend answers the
// first message (same id, content and time). The same key from the other sender is another message.
func TestSendOnceSameKeyStoresOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())

	first, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "hello", "text", "k-1")
	if err != nil || resent {
		t.Fatalf("first send: resent=%v %v", resent, err)
	}
	// The resend as a client sends it: same payload (content trimmed the same way, contentType omitted).
	again, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "  hello ", "", "k-1")
	if err != nil || !resent {
		t.Fatalf("resend: resent=%v %v", resent, err)
	}
	if *again != *first {
		t.Fatalf("resend answered %+v, first was %+v", again, first)
	}
	got, err := e.svc.Sent(ctx, ref(a), v.ID, "hello", "text", "k-1")
	if err != nil || got == nil || *got != *first {
		t.Fatalf("Sent: %+v %v", got, err)
	}
	if n := messageCount(t, v.ID); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	if n := len(e.emit.Events()); n != 1 {
		t.Fatalf("%d broadcasts, want 1", n)
	}
	if n := len(e.pub.evs); n != 1 {
		t.Fatalf("%d chat.message.sent events, want 1", n)
	}

	// Another sender, same key: a message of its own.
	other, resent, err := e.svc.SendOnce(ctx, ref(b), v.ID, "hello", "text", "k-1")
	if err != nil || resent || other.ID == first.ID {
		t.Fatalf("other sender: %+v resent=%v %v", other, resent, err)
	}
	if n := messageCount(t, v.ID); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	if n := keyCount(t, bson.M{"chatId": v.ID}); n != 2 {
		t.Fatalf("%d keys stored, want 2", n)
	}

	// Without a key nothing changes: the same content twice is two messages.
	for i := 0; i < 2; i++ {
		if _, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "hello", "text", ""); err != nil || resent {
			t.Fatalf("unkeyed send: resent=%v %v", resent, err)
		}
	}
	if _, err := e.svc.Send(ctx, ref(a), v.ID, "hello", "text"); err != nil {
		t.Fatal(err)
	}
	if n := messageCount(t, v.ID); n != 5 {
		t.Fatalf("%d messages stored, want 5", n)
	}
	if n := keyCount(t, bson.M{"chatId": v.ID}); n != 2 {
		t.Fatalf("unkeyed sends stored keys: %d", n)
	}
}

// A key used again for other content, another type or another chat is refused, and nothing is stored;
// bad keys are refused before anything is read or written; so is a key in a chat one may not use.
func TestSendOnceRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b, c, out := newUser(t), newUser(t), newUser(t), newUser(t)
	ab, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	ac, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), c.ID.Hex())
	if _, _, err := e.svc.SendOnce(ctx, ref(a), ab.ID, "hello", "text", "k"); err != nil {
		t.Fatal(err)
	}
	e.emit.Reset()
	reuse := []struct{ chatID, content, typ string }{
		{ab.ID, "hello!", "text"}, // other content
		{ab.ID, "hello", "emoji"}, // other type
		{ac.ID, "hello", "text"},  // other chat
	}
	for _, r := range reuse {
		_, _, err := e.svc.SendOnce(ctx, ref(a), r.chatID, r.content, r.typ, "k")
		wantField(t, err, errs.CodeMessageError, "clientMessageId")
		_, err = e.svc.Sent(ctx, ref(a), r.chatID, r.content, r.typ, "k")
		wantField(t, err, errs.CodeMessageError, "clientMessageId")
	}
	for _, bad := range []string{"a b", strings.Repeat("k", 65), "k|x"} {
		_, _, err := e.svc.SendOnce(ctx, ref(a), ab.ID, "hello", "text", bad)
		wantField(t, err, errs.CodeValidation, "clientMessageId")
	}
	_, _, err := e.svc.SendOnce(ctx, ref(out), ab.ID, "hello", "text", "k-out")
	wantCode(t, err, errs.CodeAccessDenied)
	_, _, err = e.svc.SendOnce(ctx, ref(a), ab.ID, strings.Repeat("x", DefaultMaxContentLen+1), "text", "k-long")
	wantCode(t, err, errs.CodeValidation)
	if n := messageCount(t, ab.ID) + messageCount(t, ac.ID); n != 1 {
		t.Fatalf("refused sends stored messages: %d, want 1", n)
	}
	if n := keyCount(t, bson.M{"senderId": bson.M{"$in": bson.A{a.ID, out.ID}}}); n != 1 {
		t.Fatalf("refused sends stored keys: %d, want 1", n)
	}
	if n := len(e.emit.Events()); n != 0 {
		t.Fatalf("refused sends broadcast %d", n)
	}
}

// The key was claimed but the message insert failed (or its outcome was unknown and it did not
// happen): the retry stores the message with the recorded id and time and delivers it once.
func TestSendOnceKeyWithoutMessage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	mid := bson.NewObjectID()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	key := models.MessageKey{ID: models.MessageKeyID(a.ID, "lost-1"), SenderID: a.ID, ChatID: v.ID, MessageID: mid,
		ContentHash: contentHash("hello", "text"), CreatedAt: at}
	if _, err := store.Collection(models.MessageKeysCollection).InsertOne(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.Sent(ctx, ref(a), v.ID, "hello", "text", "lost-1"); err != nil || got != nil {
		t.Fatalf("Sent before the message is stored: %+v %v", got, err)
	}
	// Other content under that key is refused even though the message is missing.
	_, _, err := e.svc.SendOnce(ctx, ref(a), v.ID, "hullo", "text", "lost-1")
	wantField(t, err, errs.CodeMessageError, "clientMessageId")

	m, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "hello", "text", "lost-1")
	if err != nil || resent {
		t.Fatalf("retry: resent=%v %v", resent, err)
	}
	if m.ID != mid.Hex() || m.CreatedAt != realtime.ISOTime(at) || m.Content != "hello" {
		t.Fatalf("retry stored %+v, want id %s at %s", m, mid.Hex(), at)
	}
	var doc models.Message
	if err := store.Collection(models.MessagesCollection).FindOne(ctx, bson.M{"_id": mid}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.SenderID != a.ID || doc.ChatID != v.ID || !doc.CreatedAt.Equal(at) {
		t.Fatalf("stored %+v", doc)
	}
	if n := len(e.emit.Events()); n != 1 {
		t.Fatalf("%d broadcasts, want 1", n)
	}
	again, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "hello", "text", "lost-1")
	if err != nil || !resent || again.ID != mid.Hex() {
		t.Fatalf("second retry: %+v resent=%v %v", again, resent, err)
	}
	if n, b := messageCount(t, v.ID), len(e.emit.Events()); n != 1 || b != 1 {
		t.Fatalf("%d messages, %d broadcasts, want 1 and 1", n, b)
	}
}

// Concurrent sends with one key (a resend racing its original, on any node: they share the store)
// store one message, broadcast it once, and all answer its id.
func TestSendOnceConcurrent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	a, b := newUser(t), newUser(t)
	v, _, _ := e.svc.CreateDirect(ctx, a.ID.Hex(), b.ID.Hex())
	const n = 8
	ids := make([]string, n)
	fresh := make([]bool, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, resent, err := e.svc.SendOnce(ctx, ref(a), v.ID, "race", "text", "same-key")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], fresh[i] = m.ID, !resent
		}(i)
	}
	wg.Wait()
	nFresh := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("different ids for one key: %v", ids)
		}
		if fresh[i] {
			nFresh++
		}
	}
	if nFresh != 1 {
		t.Fatalf("%d sends reported a new message, want 1", nFresh)
	}
	if c, b := messageCount(t, v.ID), len(e.emit.Events()); c != 1 || b != 1 {
		t.Fatalf("%d messages, %d broadcasts, want 1 and 1", c, b)
	}
}
