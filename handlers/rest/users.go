package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/users"
)

type patchMeBody struct {
	DisplayName *string `json:"displayName"`
	Bio         *string `json:"bio"`
	AvatarURL   *string `json:"avatarUrl"`
}

// RegisterUsers adds GET/PATCH /api/users/me and GET /api/users/:id.
func RegisterUsers(api *API, svc *users.Service) {
	g := api.Authed.Group("/users")
	g.GET("/me", func(c echo.Context) error {
		u, err := svc.Me(c.Request().Context(), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, users.NewView(u))
	})
	g.PATCH("/me", func(c echo.Context) error {
		var b patchMeBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		u, err := svc.UpdateMe(c.Request().Context(), UserID(c), users.Patch{DisplayName: b.DisplayName, Bio: b.Bio, AvatarURL: b.AvatarURL})
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, users.NewView(u))
	})
	g.GET("/:id", func(c echo.Context) error {
		p, err := svc.Profile(c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, p)
	})
}
