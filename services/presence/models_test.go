package presence

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
)

func TestModelsBackend(t *testing.T) {
	ctx := context.Background()
	st, err := models.Open(ctx, models.Config{DataDir: t.TempDir(), Database: "presence_test"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	users, fr := models.NewUsers(st), models.NewFriendships(st)
	mk := func(name string) *models.User {
		u := &models.User{Username: name, Email: name + "@example.com", PasswordHash: "x"}
		if err := users.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	a, b, c, d := mk("a"), mk("b"), mk("c"), mk("d")
	for _, f := range []*models.Friendship{
		{RequesterID: a.ID, AddresseeID: b.ID, Status: models.FriendshipAccepted},
		{RequesterID: c.ID, AddresseeID: a.ID, Status: models.FriendshipAccepted},
		{RequesterID: a.ID, AddresseeID: d.ID}, // pending: not a friend yet
	} {
		if err := fr.Insert(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	be := FromModels(users, fr)
	ids, err := be.FriendIDs(ctx, a.ID.Hex())
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	want := []string{b.ID.Hex(), c.ID.Hex()}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("friends of a = %v want %v", ids, want)
	}

	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	if err := be.SavePresence(ctx, a.ID.Hex(), Away, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := be.SavePresence(ctx, a.ID.Hex(), Offline, at); err != nil {
		t.Fatal(err)
	}
	got, _ := users.ByID(ctx, a.ID)
	if got.Status != Offline || got.LastActive == nil || !got.LastActive.Equal(at) {
		t.Fatalf("saved presence: %q %v", got.Status, got.LastActive)
	}
	if err := be.SavePresence(ctx, "not-an-id", Online, time.Time{}); err == nil {
		t.Fatal("bad id accepted")
	}
	if err := be.SavePresence(ctx, bson.NewObjectID().Hex(), Online, time.Time{}); err == nil {
		t.Fatal("missing user accepted")
	}
	if _, err := be.FriendIDs(ctx, "zzz"); err == nil {
		t.Fatal("bad id accepted")
	}
}
