package models

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/services/errs"
)

func TestUsersUniqueCaseInsensitive(t *testing.T) {
	ctx := context.Background()
	users := NewUsers(testStore)
	u := &User{Username: "Alice", Email: "Alice@Example.com", PasswordHash: "h"}
	if err := users.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		u     User
		field string
	}{
		{User{Username: "aLiCe", Email: "other@example.com"}, "username"},
		{User{Username: "alice2", Email: "alice@EXAMPLE.com"}, "email"},
	} {
		err := users.Create(ctx, &tc.u)
		e, ok := errs.As(err)
		if !ok || e.Code != errs.CodeConflict {
			t.Fatalf("%+v: want CONFLICT, got %v", tc.u, err)
		}
		if f := e.Details["fields"].(map[string]any); f[tc.field] == nil {
			t.Fatalf("conflict details %v do not name %s", e.Details, tc.field)
		}
	}
	got, err := users.ByLogin(ctx, "ALICE@example.com")
	if err != nil || got.ID != u.ID {
		t.Fatalf("by email: %v %v", got, err)
	}
	got, err = users.ByLogin(ctx, "alice")
	if err != nil || got.ID != u.ID || got.AccountStatus != AccountActive || got.Status != StatusOffline {
		t.Fatalf("by username: %+v %v", got, err)
	}
	if _, err := users.ByLogin(ctx, "nobody"); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("unknown login: %v", err)
	}
	upd, err := users.Update(ctx, u.ID, bson.M{"displayName": "Al"})
	if err != nil || upd.DisplayName != "Al" || upd.Version != 2 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if err := users.SetPresence(ctx, u.ID, StatusOffline, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPresence(ctx, bson.NewObjectID(), StatusOffline, time.Now()); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("presence of missing user: %v", err)
	}
}

func TestFriendshipPairUnique(t *testing.T) {
	ctx := context.Background()
	fr := NewFriendships(testStore)
	a, b := bson.NewObjectID(), bson.NewObjectID()
	if err := fr.Insert(ctx, &Friendship{RequesterID: a, AddresseeID: b}); err != nil {
		t.Fatal(err)
	}
	// The other direction is the same pair.
	if err := fr.Insert(ctx, &Friendship{RequesterID: b, AddresseeID: a}); !errs.Is(err, errs.CodeConflict) {
		t.Fatalf("want CONFLICT, got %v", err)
	}
	f, err := fr.ByPair(ctx, b, a)
	if err != nil || f.Status != FriendshipPending || f.Other(a) != b {
		t.Fatalf("%+v %v", f, err)
	}
	if _, err := UpdateVersioned(ctx, fr.Collection(), f.ID, 0, func(f *Friendship) (bson.M, error) {
		return bson.M{"$set": bson.M{"status": FriendshipAccepted, "acceptedAt": time.Now()}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	list, err := fr.Accepted(ctx, b)
	if err != nil || len(list) != 1 {
		t.Fatalf("accepted: %v %v", list, err)
	}
	if err := fr.Delete(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if err := fr.Delete(ctx, f.ID); !errs.Is(err, errs.CodeNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestRefreshTokenRotatesOnce(t *testing.T) {
	ctx := context.Background()
	rt := NewRefreshTokens(testStore)
	tok := &RefreshToken{UserID: bson.NewObjectID(), FamilyID: bson.NewObjectID(), TokenHash: bson.NewObjectID().Hex(),
		ExpiresAt: time.Now().Add(time.Hour)}
	if err := rt.Insert(ctx, tok); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := rt.MarkRotated(ctx, tok, time.Now())
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent rotations won, want exactly 1", wins.Load())
	}
	if err := rt.RevokeFamily(ctx, tok.FamilyID); err != nil {
		t.Fatal(err)
	}
	got, err := rt.ByHash(ctx, tok.TokenHash)
	if err != nil || !got.Revoked || !got.Rotated {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestAllCollectionsDeclared(t *testing.T) {
	have := map[string]bool{}
	for _, c := range RegisteredCollections() {
		have[c] = true
	}
	for _, c := range []string{UsersCollection, FriendshipsCollection, RefreshTokensCollection, ChatsCollection,
		MessagesCollection, MessageKeysCollection, LobbiesCollection, MatchRequestsCollection} {
		if !have[c] {
			t.Errorf("collection %s declares no indexes", c)
		}
	}
}

// A revocation racing a rotation of the same family is never undone by it.
func TestRevokeFamilyRacingRotation(t *testing.T) {
	ctx := context.Background()
	rt := NewRefreshTokens(testStore)
	for i := 0; i < 20; i++ {
		tok := &RefreshToken{UserID: bson.NewObjectID(), FamilyID: bson.NewObjectID(), TokenHash: bson.NewObjectID().Hex(),
			ExpiresAt: time.Now().Add(time.Hour)}
		if err := rt.Insert(ctx, tok); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = rt.MarkRotated(ctx, tok, time.Now()) }()
		go func() { defer wg.Done(); _ = rt.RevokeFamily(ctx, tok.FamilyID) }()
		wg.Wait()
		got, err := rt.ByHash(ctx, tok.TokenHash)
		if err != nil || !got.Revoked {
			t.Fatalf("round %d: revocation lost: %+v %v", i, got, err)
		}
	}
}
