package matchmaking

import (
	"context"

	"github.com/maoga/maoga/models"
)

// LobbyService is the part of *lobby.Service the matcher uses.
type LobbyService interface {
	CreateForMatch(ctx context.Context, gameID, mode string, userIDs, matchRequestIDs []string) (*models.Lobby, error)
	OpenLobbyOf(ctx context.Context, userID string) (*models.Lobby, error)
}

// FromLobbyService adapts the lobby service to Lobbies.
func FromLobbyService(l LobbyService) Lobbies { return lobbyAdapter{l} }

type lobbyAdapter struct{ l LobbyService }

func (a lobbyAdapter) CreateForMatch(ctx context.Context, gameID, gameMode string, userIDs, matchRequestIDs []string) (string, error) {
	lb, err := a.l.CreateForMatch(ctx, gameID, gameMode, userIDs, matchRequestIDs)
	if err != nil {
		return "", err
	}
	return lb.ID.Hex(), nil
}

func (a lobbyAdapter) InOpenLobby(ctx context.Context, userID string) (bool, error) {
	lb, err := a.l.OpenLobbyOf(ctx, userID)
	return lb != nil, err
}
