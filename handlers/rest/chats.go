package rest

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/chat"
	"github.com/maoga/maoga/services/errs"
)

type directChatBody struct {
	UserID *string `json:"userId"`
}

// RegisterChats adds the /api/chats routes (REST.md): the caller's chats with unread counts, the direct
// chat with a user (created once per pair: 201 the first time, 200 after), and a chat's history.
// The chat codes of the socket contract become the REST codes: CHAT_NOT_FOUND → NOT_FOUND,
// ACCESS_DENIED → FORBIDDEN.
func RegisterChats(api *API, svc *chat.Service) {
	g := api.Authed.Group("/chats")
	g.GET("", func(c echo.Context) error {
		list, err := svc.List(c.Request().Context(), UserID(c))
		if err != nil {
			return err
		}
		return List(c, list, nil)
	})
	g.POST("/direct", func(c echo.Context) error {
		var b directChatBody
		if err := Bind(c, &b); err != nil {
			return err
		}
		if b.UserID == nil || *b.UserID == "" {
			return errs.Validation("invalid direct chat", map[string]string{"userId": "is required"})
		}
		v, created, err := svc.CreateDirect(c.Request().Context(), UserID(c), *b.UserID)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return OK(c, status, v)
	})
	g.GET("/:chatId/messages", func(c echo.Context) error {
		limit := 0
		if s := c.QueryParam("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return errs.Validation("invalid query", map[string]string{"limit": "must be a number"})
			}
			if n == 0 {
				return errs.Validation("invalid query", map[string]string{"limit": "must be between 1 and 100"})
			}
			limit = n
		}
		items, next, err := svc.History(c.Request().Context(), UserID(c), pathParam(c, "chatId"), c.QueryParam("before"), limit)
		if err != nil {
			return restChatError(err)
		}
		return List(c, items, next)
	})
}

// restChatError maps the socket chat codes to the REST codes.
func restChatError(err error) error {
	switch errs.CodeOf(err) {
	case errs.CodeChatNotFound:
		return errs.Wrap(errs.CodeNotFound, "chat not found", err)
	case errs.CodeAccessDenied:
		return errs.Wrap(errs.CodeForbidden, "you do not have access to this chat", err)
	}
	return err
}

// pathParam is a path parameter percent-decoded: Echo hands over the raw value when the request path
// holds escapes, and fetch clients send a lobby chat id "lobby:<id>" as "lobby%3A<id>".
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
