package chat

import (
	"context"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
)

// ModelLobbies answers Lobbies from the lobbies collection (models.Lobby) with the lobby service's rule
// (services/lobby.IsActiveMember): a member is active when the lobby is not closed and the member's
// status is joined. It reads the same documents the lobby service writes, so chat needs no import of
// services/lobby.
type ModelLobbies struct {
	coll *mongo.Collection
}

// NewModelLobbies returns a ModelLobbies on the store.
func NewModelLobbies(store *models.Store) *ModelLobbies {
	return &ModelLobbies{coll: store.Collection(models.LobbiesCollection)}
}

type lobbyMembers struct {
	Status  string                         `bson:"status"`
	Members map[string]*models.LobbyMember `bson:"members"`
}

func (m *ModelLobbies) load(ctx context.Context, lobbyID string) (*lobbyMembers, error) {
	id, ok := models.ParseID(lobbyID)
	if !ok {
		return nil, errs.New(errs.CodeLobbyNotFound, "Lobby not found")
	}
	var l lobbyMembers
	err := m.coll.FindOne(ctx, bson.M{"_id": id},
		options.FindOne().SetProjection(bson.M{"status": 1, "members": 1})).Decode(&l)
	if models.IsNoDocuments(err) {
		return nil, errs.New(errs.CodeLobbyNotFound, "Lobby not found")
	}
	if err != nil {
		return nil, errs.Internal(err)
	}
	return &l, nil
}

// IsActiveMember implements Lobbies.
func (m *ModelLobbies) IsActiveMember(ctx context.Context, lobbyID, userID string) (bool, error) {
	l, err := m.load(ctx, lobbyID)
	if err != nil {
		return false, err
	}
	if l.Status == models.LobbyClosed {
		return false, nil
	}
	mem := l.Members[userID]
	return mem != nil && mem.Status == models.MemberJoined, nil
}

// ActiveMemberIDs implements Lobbies.
func (m *ModelLobbies) ActiveMemberIDs(ctx context.Context, lobbyID string) ([]string, error) {
	l, err := m.load(ctx, lobbyID)
	if err != nil {
		return nil, err
	}
	if l.Status == models.LobbyClosed {
		return []string{}, nil
	}
	out := make([]string, 0, len(l.Members))
	for id, mem := range l.Members {
		if mem != nil && mem.Status == models.MemberJoined {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}
