package rest

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/realtime"
	"github.com/maoga/maoga/services/users"
)

type registerBody struct {
	Username    string `json:"username"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"displayName"`
}

type loginBody struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

type refreshBody struct {
	RefreshToken string `json:"refreshToken"`
}

type tokensView struct {
	AccessToken          string `json:"accessToken"`
	RefreshToken         string `json:"refreshToken"`
	AccessTokenExpiresAt string `json:"accessTokenExpiresAt"`
}

type sessionView struct {
	User users.View `json:"user"`
	tokensView
}

func newTokensView(p auth.TokenPair) tokensView {
	return tokensView{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken,
		AccessTokenExpiresAt: realtime.ISOTime(p.AccessExpiresAt)}
}

// RegisterAuth adds POST /api/auth/register, /login and /refresh.
func RegisterAuth(api *API, svc *auth.Service) {
	g := api.Public.Group("/auth")
	g.POST("/register", func(c echo.Context) error {
		var b registerBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		s, err := svc.Register(c.Request().Context(), auth.RegisterInput{Username: b.Username, Email: b.Email,
			Password: b.Password, DisplayName: b.DisplayName})
		if err != nil {
			return err
		}
		return OK(c, http.StatusCreated, sessionView{User: users.NewView(s.User), tokensView: newTokensView(s.TokenPair)})
	})
	g.POST("/login", func(c echo.Context) error {
		var b loginBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		s, err := svc.Login(c.Request().Context(), b.Login, b.Password,
			auth.LoginMeta{IP: c.RealIP(), UserAgent: c.Request().UserAgent()})
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, sessionView{User: users.NewView(s.User), tokensView: newTokensView(s.TokenPair)})
	})
	g.POST("/refresh", func(c echo.Context) error {
		var b refreshBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		p, err := svc.Refresh(c.Request().Context(), b.RefreshToken)
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, newTokensView(*p))
	})
}
