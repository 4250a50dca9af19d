package socket

import (
	"context"

	"github.com/maoga/maoga/services/notifications"
)

// NotificationCounter is what NotificationCount needs of the notification service.
type NotificationCounter interface {
	Counts(ctx context.Context, userID string) (notifications.Count, error)
}

// NotificationCount sends a socket restored by connection state recovery a fresh
// notification:count, after the events it missed (they are out before the connection handlers
// run). The notification service counts only while the user has a socket in its user room
// (notifications.Options.Rooms), so a change made while the session was away (a new notification,
// one read over REST) left no count for the session to replay; its notification:new did. A fresh
// connection gets nothing here: clients load the list over REST when they start
// (GET /api/notifications), as before.
func NotificationCount(svc NotificationCounter) Feature {
	return func(c *Conn) {
		if !c.Socket.Recovered() {
			return
		}
		ctx, cancel := context.WithTimeout(c.Context(), recoveryCheckTimeout)
		defer cancel()
		cnt, err := svc.Counts(ctx, c.User.UserID)
		if err != nil {
			c.Logger().Warn("recovered socket: notification count not sent", "err", err)
			return
		}
		if err := c.Emit(notifications.EventCount, cnt); err != nil {
			c.Logger().Warn("recovered socket: notification count not sent", "err", err)
		}
	}
}
