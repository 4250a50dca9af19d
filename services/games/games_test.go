package games_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/models/storetest"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/games"
)

var store *models.Store

func TestMain(m *testing.M) { storetest.Main(m, "games_test", &store) }

func TestSeedIsIdempotentAndLoads(t *testing.T) {
	ctx := context.Background()
	svc := games.New(store)
	for i := 0; i < 2; i++ {
		if err := svc.Seed(ctx, games.Defaults); err != nil {
			t.Fatal(err)
		}
	}
	n, err := store.Collection(games.Collection).CountDocuments(ctx, bson.M{})
	if err != nil || n != int64(len(games.Defaults)) {
		t.Fatalf("%d games stored after two seeds (%v), want %d", n, err, len(games.Defaults))
	}
	list := svc.List()
	if len(list) != len(games.Defaults) || list[0].ID > list[1].ID {
		t.Fatalf("list: %+v", list)
	}
	// A fresh service over the same store sees the seeded catalogue; a changed default is written over.
	changed := []games.Game{{ID: "party-trivia", Name: "Trivia Night", Modes: games.Defaults[2].Modes}}
	if err := svc.Seed(ctx, changed); err != nil {
		t.Fatal(err)
	}
	other := games.New(store)
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if g, ok := other.Game("party-trivia"); !ok || g.Name != "Trivia Night" {
		t.Fatalf("reloaded: %+v", g)
	}
	if err := svc.Seed(ctx, games.Defaults); err != nil {
		t.Fatal(err)
	}
}

func TestMode(t *testing.T) {
	svc := games.New(store)
	if err := svc.Seed(context.Background(), games.Defaults); err != nil {
		t.Fatal(err)
	}
	m, err := svc.Mode("arena-shooter", "5v5")
	if err != nil || m.TeamSize != 5 || m.Capacity != (models.Capacity{Min: 10, Max: 10}) {
		t.Fatalf("5v5: %+v %v", m, err)
	}
	_, err = svc.Mode("nope", "5v5")
	if e, _ := errs.As(err); e == nil || e.Code != errs.CodeValidation || e.Details["fields"].(map[string]any)["gameId"] == nil {
		t.Fatalf("unknown game: %v", err)
	}
	_, err = svc.Mode("arena-shooter", "nope")
	if e, _ := errs.As(err); e == nil || e.Details["fields"].(map[string]any)["gameMode"] == nil {
		t.Fatalf("unknown mode: %v", err)
	}
}

func TestSeedRefusesBadGames(t *testing.T) {
	svc := games.New(store)
	for _, g := range []games.Game{
		{ID: "", Name: "x", Modes: []games.Mode{{ID: "m", TeamSize: 1, Capacity: models.Capacity{Min: 1, Max: 1}}}},
		{ID: "x", Name: "x"},
		{ID: "x", Name: "x", Modes: []games.Mode{{ID: "m", TeamSize: 0, Capacity: models.Capacity{Min: 1, Max: 1}}}},
		{ID: "x", Name: "x", Modes: []games.Mode{{ID: "m", TeamSize: 1, Capacity: models.Capacity{Min: 3, Max: 2}}}},
	} {
		if err := svc.Seed(context.Background(), []games.Game{g}); err == nil {
			t.Fatalf("seeded %+v", g)
		}
	}
}
