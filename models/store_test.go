package models

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// One store for the whole package keeps the run fast; each test uses its own collections.
var testStore *Store

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "maoga-models-*")
	if err != nil {
		panic(err)
	}
	s, err := Open(context.Background(), Config{URI: os.Getenv("MAOGA_TEST_MONGODB_URI"), DataDir: dir, Database: "models_test"})
	if err != nil {
		panic(err)
	}
	testStore = s
	code := m.Run()
	_ = s.Close(context.Background())
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func TestOpenEmbeddedInTempDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if !s.Embedded() {
		t.Fatal("expected embedded store without URI")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Collection("things").InsertOne(ctx, bson.M{"a": 1}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("no SQLite files written to the data dir")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil { // second close is a no-op
		t.Fatal(err)
	}
}

func TestRegisteredIndexesExist(t *testing.T) {
	ctx := context.Background()
	cur, err := testStore.Collection(UsersCollection).Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var idx []bson.M
	if err := cur.All(ctx, &idx); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, i := range idx {
		names[i["name"].(string)] = true
	}
	for _, want := range []string{"username_lower_unique", "email_lower_unique"} {
		if !names[want] {
			t.Errorf("index %s missing; have %v", want, names)
		}
	}
}

func TestUniqueIndexViolationIsConflict(t *testing.T) {
	ctx := context.Background()
	c := testStore.Collection("uniq_test")
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("k_unique")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InsertOne(ctx, bson.M{"k": "x"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.InsertOne(ctx, bson.M{"k": "x"})
	if !IsDuplicateKey(err) {
		t.Fatalf("want duplicate key error, got %v", err)
	}
	if e := ConflictOnDuplicate(err, "k taken"); !errs.Is(e, errs.CodeConflict) {
		t.Fatalf("want CONFLICT, got %v", e)
	}
	if e := ConflictOnDuplicate(errors.New("boom"), "k taken"); !errs.Is(e, errs.CodeInternal) {
		t.Fatalf("want INTERNAL, got %v", e)
	}
	if n, _ := c.CountDocuments(ctx, bson.M{"k": "x"}); n != 1 {
		t.Fatalf("duplicate was written: %d docs", n)
	}
}

type counterDoc struct {
	ID      bson.ObjectID `bson:"_id"`
	N       int           `bson:"n"`
	Version int64         `bson:"version"`
}

func (d *counterDoc) CurrentVersion() int64 { return d.Version }

func TestConditionalUpdateConflict(t *testing.T) {
	ctx := context.Background()
	c := testStore.Collection("versioned_test")
	id := bson.NewObjectID()
	if _, err := c.InsertOne(ctx, counterDoc{ID: id, Version: 1}); err != nil {
		t.Fatal(err)
	}
	var out counterDoc
	if err := UpdateIfVersion(ctx, c, id, 1, bson.M{"$set": bson.M{"n": 5}}, &out); err != nil {
		t.Fatal(err)
	}
	if out.N != 5 || out.Version != 2 {
		t.Fatalf("after update: %+v", out)
	}
	// A writer that still holds version 1 loses.
	err := UpdateIfVersion(ctx, c, id, 1, bson.M{"$set": bson.M{"n": 7}}, nil)
	if !errors.Is(err, ErrConcurrentUpdate) || !errs.Is(err, errs.CodeConflict) {
		t.Fatalf("stale write: want concurrent-update CONFLICT, got %v", err)
	}
	if err := UpdateIfVersion(ctx, c, bson.NewObjectID(), 1, bson.M{"$set": bson.M{"n": 1}}, nil); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("missing doc: want NOT_FOUND, got %v", err)
	}
	if err := c.FindOne(ctx, bson.M{"_id": id}).Decode(&out); err != nil || out.N != 5 {
		t.Fatalf("stale write changed the doc: %+v %v", out, err)
	}
}

func TestUpdateVersionedRetriesConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	c := testStore.Collection("versioned_retry_test")
	id := bson.NewObjectID()
	if _, err := c.InsertOne(ctx, counterDoc{ID: id}); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	var wg sync.WaitGroup
	errCh := make(chan error, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// read n, write n+1: lost updates would leave n < writers
			_, err := UpdateVersioned(ctx, c, id, 50, func(d *counterDoc) (bson.M, error) {
				time.Sleep(time.Millisecond)
				return bson.M{"$set": bson.M{"n": d.N + 1}}, nil
			})
			errCh <- err
		}()
	}
	wg.Wait()
	close(errCh)
	for err := range errCh {
		if err != nil {
			t.Fatal(err)
		}
	}
	var out counterDoc
	if err := c.FindOne(ctx, bson.M{"_id": id}).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.N != writers || out.Version != writers {
		t.Fatalf("lost update: %+v", out)
	}
	// mutate may refuse; nothing is written then.
	_, err := UpdateVersioned(ctx, c, id, 0, func(d *counterDoc) (bson.M, error) {
		return nil, errs.Conflict("full")
	})
	if !errs.Is(err, errs.CodeConflict) {
		t.Fatalf("refusal not passed through: %v", err)
	}
}
