package rest

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/notifications"
)

// RegisterNotifications adds the /api/notifications routes. A user only
// ever sees their own notifications: any other id is NOT_FOUND.
func RegisterNotifications(api *API, svc *notifications.Service) {
	g := api.Authed.Group("/notifications")

	// GET /api/notifications?status=unread&limit=50&cursor=
	g.GET("", func(c echo.Context) error {
		o := notifications.ListOptions{Status: c.QueryParam("status"), Cursor: c.QueryParam("cursor")}
		if l := c.QueryParam("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				return errs.Validation("invalid limit", map[string]string{"limit": "must be an integer"})
			}
			if n == 0 { // 0 would mean "default" to the service; on the wire it is out of range
				return errs.Validation("invalid limit", map[string]string{"limit": "must be 1 to 100"})
			}
			o.Limit = n
		}
		list, next, err := svc.List(c.Request().Context(), UserID(c), o)
		if err != nil {
			return err
		}
		var cursor *string
		if next != "" {
			cursor = &next
		}
		return List(c, list, cursor)
	})

	// PATCH /api/notifications/:id/read → the notification; the user's
	// sockets get notification:count.
	g.PATCH("/:id/read", func(c echo.Context) error {
		v, err := svc.MarkRead(c.Request().Context(), UserID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, v)
	})

	// POST /api/notifications/read-all → { total, unread }; the user's
	// sockets get notification:count.
	g.POST("/read-all", func(c echo.Context) error {
		cnt, err := svc.MarkAllRead(c.Request().Context(), UserID(c))
		if err != nil {
			return err
		}
		return OK(c, http.StatusOK, cnt)
	})
}
