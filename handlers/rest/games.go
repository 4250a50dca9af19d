package rest

import (
	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/games"
)

// RegisterGames adds GET /api/games: the seeded catalogue, each game with its modes (team size, capacity).
func RegisterGames(api *API, svc *games.Service) {
	api.Authed.GET("/games", func(c echo.Context) error {
		return List(c, svc.List(), nil)
	})
}
