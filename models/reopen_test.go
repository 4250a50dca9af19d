package models

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Restarting on the same data dir must work: `make run` twice. (FerretDB v1.24 breaks the connection
// when createIndexes repeats existing compound indexes; EnsureIndexes only sends missing ones.)
func TestReopenSameDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().UTC()
	for round := 0; round < 3; round++ {
		s, err := Open(ctx, Config{DataDir: dir})
		if err != nil {
			t.Fatalf("open #%d: %v", round, err)
		}
		u := &User{Username: "reopen" + string(rune('a'+round)), Email: "reopen" + string(rune('a'+round)) + "@example.com"}
		if err := NewUsers(s).Create(ctx, u); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		chatID := bson.NewObjectID().Hex()
		if _, err := s.Collection(ChatsCollection).InsertOne(ctx, Chat{ID: chatID, Type: ChatDirect, Key: chatID,
			Participants: []bson.ObjectID{u.ID}, LastMessageAt: &now, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatalf("round %d chat: %v", round, err)
		}
		if _, err := s.Collection(MessagesCollection).InsertOne(ctx, Message{ID: bson.NewObjectID(), ChatID: chatID,
			SenderID: u.ID, Content: "hi", ContentType: ContentText, CreatedAt: now}); err != nil {
			t.Fatalf("round %d message: %v", round, err)
		}
		n, err := s.Collection(ChatsCollection).CountDocuments(ctx, bson.M{"participants": u.ID})
		if err != nil || n != 1 {
			t.Fatalf("round %d chats by participant: %d %v", round, n, err)
		}
		users, err := s.Collection(UsersCollection).CountDocuments(ctx, bson.M{})
		if err != nil || users != int64(round+1) {
			t.Fatalf("round %d: %d users (%v): data did not survive the restart", round, users, err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
