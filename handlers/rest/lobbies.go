package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/lobby"
)

// RegisterLobbies adds the /api/lobbies routes (REST.md). Every change is stored by the service, which
// then emits the lobby events to the room lobby:<id>.
func RegisterLobbies(api *API, svc *lobby.Service) {
	g := api.Authed.Group("/lobbies")
	g.POST("", func(c echo.Context) error {
		var in lobby.CreateInput
		if err := Bind(c, &in); err != nil {
			return err
		}
		if in.GameID == "" || in.GameMode == "" {
			return errs.Validation("gameId and gameMode are required", lobbyMissing(map[string]bool{"gameId": in.GameID == "", "gameMode": in.GameMode == ""}))
		}
		l, err := svc.Create(c.Request().Context(), UserID(c), in)
		if err != nil {
			return err
		}
		return OK(c, http.StatusCreated, lobby.NewView(l))
	})
	g.GET("/:id", func(c echo.Context) error {
		l, err := svc.Get(c.Request().Context(), c.Param("id"), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
	g.POST("/:id/join", func(c echo.Context) error {
		l, err := svc.Join(c.Request().Context(), c.Param("id"), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
	g.POST("/:id/leave", func(c echo.Context) error {
		if err := svc.Leave(c.Request().Context(), c.Param("id"), UserID(c)); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	g.PATCH("/:id", func(c echo.Context) error {
		var in lobby.UpdateInput
		if err := Bind(c, &in); err != nil {
			return err
		}
		l, err := svc.Update(c.Request().Context(), c.Param("id"), UserID(c), in)
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
	g.POST("/:id/ready", func(c echo.Context) error {
		var in struct {
			IsReady *bool `json:"isReady"`
		}
		if err := Bind(c, &in); err != nil {
			return err
		}
		if in.IsReady == nil {
			return errs.Validation("isReady is required", map[string]string{"isReady": "is required"})
		}
		l, err := svc.SetReady(c.Request().Context(), c.Param("id"), UserID(c), *in.IsReady)
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
	g.POST("/:id/start", func(c echo.Context) error {
		l, err := svc.Start(c.Request().Context(), c.Param("id"), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
	g.POST("/:id/close", func(c echo.Context) error {
		l, err := svc.Close(c.Request().Context(), c.Param("id"), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, lobby.NewView(l))
	})
}

// lobbyMissing lists the missing fields as details.fields.
func lobbyMissing(missing map[string]bool) map[string]string {
	out := map[string]string{}
	for k, m := range missing {
		if m {
			out[k] = "is required"
		}
	}
	return out
}
