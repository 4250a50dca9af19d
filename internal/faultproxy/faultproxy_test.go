package faultproxy

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/internal/sharedstore"
)

// Through the proxy a real client works; CutBefore stops exactly the matching command (nothing of it
// is stored) and cuts the link; Cut refuses new connections; Restore brings the database back.
func TestProxyCutsAtTheMatchingCommand(t *testing.T) {
	ctx := context.Background()
	store, err := sharedstore.Start(ctx, t.TempDir(), "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Stop()
	p, err := Start(strings.TrimSuffix(strings.TrimPrefix(store.URI(), "mongodb://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + p.Addr() + "/").
		SetTimeout(time.Second).SetServerSelectionTimeout(time.Second).SetHeartbeatInterval(500 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	db := client.Database("proxytest")
	if _, err := db.Collection("a").InsertOne(ctx, bson.M{"n": 1}); err != nil {
		t.Fatal(err)
	}
	fired := p.CutBefore(func(c Command) bool { return c.Name == "insert" && c.Collection == "b" })
	if _, err := db.Collection("a").InsertOne(ctx, bson.M{"n": 2}); err != nil {
		t.Fatalf("a non-matching command was stopped: %v", err)
	}
	if _, err := db.Collection("b").InsertOne(ctx, bson.M{"n": 1}); err == nil {
		t.Fatal("the matching insert went through")
	}
	select {
	case c := <-fired:
		if c != (Command{Name: "insert", Collection: "b"}) {
			t.Fatalf("fired on %+v", c)
		}
	default:
		t.Fatal("trigger did not report")
	}
	if !p.IsCut() {
		t.Fatal("link not cut after the trigger")
	}
	start := time.Now()
	if _, err := db.Collection("a").CountDocuments(ctx, bson.M{}); err == nil {
		t.Fatal("a command went through a cut link")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failing took %v", d)
	}
	p.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := db.Collection("b").CountDocuments(ctx, bson.M{})
		if err == nil {
			if n != 0 {
				t.Fatalf("%d documents in b: the stopped insert was stored", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Restore: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, _ := db.Collection("a").CountDocuments(ctx, bson.M{}); n != 2 {
		t.Fatalf("a has %d documents, want 2", n)
	}
}
