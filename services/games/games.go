// Package games is the games catalogue (GET /api/games): the games players can form lobbies and
// search matches for, each with its modes (team size and lobby capacity). It is seeded at start-up
// from Defaults and drives the lobby capacity defaults and the validation of gameId/gameMode.
//
// The catalogue is small and changes only with a deploy, so it is read from the store once (Seed/Load)
// and served from memory afterwards.
package games

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
)

// Collection holds the catalogue.
const Collection = "games"

// Mode is one way to play a game.
type Mode struct {
	ID   string `bson:"id" json:"id"`
	Name string `bson:"name" json:"name"`
	// TeamSize is the number of players per team.
	TeamSize int `bson:"teamSize" json:"teamSize"`
	// Capacity bounds the players of one lobby: Max is a full match, Min the fewest to start.
	Capacity models.Capacity `bson:"capacity" json:"capacity"`
}

// Game is one catalogue entry.
type Game struct {
	ID    string `bson:"_id" json:"id"`
	Name  string `bson:"name" json:"name"`
	Modes []Mode `bson:"modes" json:"modes"`
}

// Defaults is the catalogue seeded at start-up.
var Defaults = []Game{
	{ID: "arena-shooter", Name: "Arena Shooter", Modes: []Mode{
		{ID: "1v1", Name: "Duel", TeamSize: 1, Capacity: models.Capacity{Min: 2, Max: 2}},
		{ID: "2v2", Name: "Two versus two", TeamSize: 2, Capacity: models.Capacity{Min: 4, Max: 4}},
		{ID: "5v5", Name: "Five versus five", TeamSize: 5, Capacity: models.Capacity{Min: 10, Max: 10}},
	}},
	{ID: "battle-royale", Name: "Battle Royale", Modes: []Mode{
		{ID: "duo", Name: "Duo", TeamSize: 2, Capacity: models.Capacity{Min: 2, Max: 2}},
		{ID: "squad", Name: "Squad", TeamSize: 4, Capacity: models.Capacity{Min: 2, Max: 4}},
	}},
	{ID: "party-trivia", Name: "Party Trivia", Modes: []Mode{
		{ID: "casual", Name: "Casual", TeamSize: 1, Capacity: models.Capacity{Min: 2, Max: 8}},
	}},
}

// Service reads the catalogue.
type Service struct {
	coll *mongo.Collection

	mu    sync.RWMutex
	games []Game // sorted by id
}

// New returns a catalogue over the store; call Seed (or Load) before use.
func New(store *models.Store) *Service { return &Service{coll: store.Collection(Collection)} }

// Seed writes games into the store (insert or overwrite by id, so running it at every start-up is
// idempotent and a changed default reaches the store with the next deploy) and loads the catalogue.
func (s *Service) Seed(ctx context.Context, games []Game) error {
	for _, g := range games {
		if err := validGame(g); err != nil {
			return err
		}
		_, err := s.coll.UpdateOne(ctx, bson.M{"_id": g.ID},
			bson.M{"$set": bson.M{"name": g.Name, "modes": g.Modes}}, options.UpdateOne().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("games: seed %s: %w", g.ID, err)
		}
	}
	return s.Load(ctx)
}

// Load reads the catalogue from the store into memory.
func (s *Service) Load(ctx context.Context) error {
	cur, err := s.coll.Find(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("games: load: %w", err)
	}
	var list []Game
	if err := cur.All(ctx, &list); err != nil {
		return fmt.Errorf("games: load: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	s.mu.Lock()
	s.games = list
	s.mu.Unlock()
	return nil
}

// List returns the catalogue, sorted by game id.
func (s *Service) List() []Game {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Game, len(s.games))
	copy(out, s.games)
	return out
}

// Game returns one game.
func (s *Service) Game(id string) (Game, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.games {
		if g.ID == id {
			return g, true
		}
	}
	return Game{}, false
}

// Mode returns a game's mode, or a VALIDATION_ERROR naming the unknown field (gameId or gameMode).
func (s *Service) Mode(gameID, modeID string) (Mode, error) {
	g, ok := s.Game(gameID)
	if !ok {
		return Mode{}, errs.Validation("unknown game", map[string]string{"gameId": "is not in the games catalogue"})
	}
	for _, m := range g.Modes {
		if m.ID == modeID {
			return m, nil
		}
	}
	return Mode{}, errs.Validation("unknown game mode", map[string]string{"gameMode": "is not a mode of " + gameID})
}

func validGame(g Game) error {
	if g.ID == "" || g.Name == "" || len(g.Modes) == 0 {
		return fmt.Errorf("games: %q needs an id, a name and modes", g.ID)
	}
	for _, m := range g.Modes {
		if m.ID == "" || m.TeamSize < 1 || m.Capacity.Min < 1 || m.Capacity.Max < m.Capacity.Min {
			return fmt.Errorf("games: %s/%s: bad mode %+v", g.ID, m.ID, m)
		}
	}
	return nil
}
