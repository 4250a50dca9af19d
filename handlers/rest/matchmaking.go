package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/realtime"
)

// startMatchBody is POST /api/matchmaking.
type startMatchBody struct {
	GameID   string         `json:"gameId"`
	GameMode string         `json:"gameMode"`
	Region   string         `json:"region"`
	Skill    *float64       `json:"skill"`
	Criteria map[string]any `json:"criteria"`
}

// RegisterMatchmaking adds the /api/matchmaking routes: POST (queue a request, 201
// {matchRequestId, status, createdAt}; 409 CONFLICT while searching or in an open lobby),
// GET /:id and DELETE /:id (the owner's request; others' are 404; DELETE answers the cancelled
// request and 409 when it is not searching any more).
func RegisterMatchmaking(api *API, svc *matchmaking.Service) {
	g := api.Authed.Group("/matchmaking")
	g.POST("", func(c echo.Context) error {
		var b startMatchBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		m, err := svc.Start(c.Request().Context(), UserID(c), matchmaking.StartInput{GameID: b.GameID,
			GameMode: b.GameMode, Region: b.Region, Skill: b.Skill, Criteria: b.Criteria})
		if err != nil {
			return err
		}
		return OK(c, http.StatusCreated, map[string]any{"matchRequestId": m.ID.Hex(), "status": m.Status,
			"createdAt": realtime.ISOTime(m.CreatedAt)})
	})
	g.GET("/:id", func(c echo.Context) error {
		v, err := svc.Get(c.Request().Context(), UserID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, v)
	})
	g.DELETE("/:id", func(c echo.Context) error {
		ctx := c.Request().Context()
		m, err := svc.Cancel(ctx, UserID(c), c.Param("id"))
		if err != nil {
			return err
		}
		v, err := svc.Get(ctx, UserID(c), m.ID.Hex())
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, v)
	})
}
