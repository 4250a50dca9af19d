package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/friends"
)

type friendRequestBody struct {
	UserID string `json:"userId"`
}

// RegisterFriends adds the /api/friends routes.
func RegisterFriends(api *API, svc *friends.Service) {
	g := api.Authed.Group("/friends")
	g.GET("", func(c echo.Context) error {
		list, err := svc.List(c.Request().Context(), UserID(c))
		if err != nil {
			return err
		}
		return List(c, list, nil)
	})
	g.GET("/requests", func(c echo.Context) error {
		dir := c.QueryParam("direction")
		if dir == "" {
			dir = "incoming"
		}
		if dir != "incoming" && dir != "outgoing" {
			return errs.Validation("invalid query", map[string]string{"direction": "must be incoming or outgoing"})
		}
		list, err := svc.Pending(c.Request().Context(), UserID(c), dir == "incoming")
		if err != nil {
			return err
		}
		out := make([]friends.View, 0, len(list))
		for i := range list {
			out = append(out, friends.NewView(&list[i]))
		}
		return List(c, out, nil)
	})
	g.POST("/requests", func(c echo.Context) error {
		var b friendRequestBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		if b.UserID == "" {
			return errs.Validation("invalid friend request", map[string]string{"userId": "is required"})
		}
		f, err := svc.Request(c.Request().Context(), UserID(c), b.UserID)
		if err != nil {
			return err
		}
		return OK(c, http.StatusCreated, friends.NewView(f))
	})
	g.POST("/requests/:id/accept", func(c echo.Context) error {
		f, err := svc.Accept(c.Request().Context(), UserID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, friends.NewView(f))
	})
	g.POST("/requests/:id/reject", func(c echo.Context) error {
		f, err := svc.Reject(c.Request().Context(), UserID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, friends.NewView(f))
	})
	g.DELETE("/:userId", func(c echo.Context) error {
		if err := svc.Remove(c.Request().Context(), UserID(c), c.Param("userId")); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
}
