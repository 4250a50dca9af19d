package socket

import (
	"context"
	"log/slog"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
)

// DisconnectOnAccountChange makes a suspension or ban take effect on open sockets at once: on
// user.account.status.changed to a status other than active, each socket of that user on this node
// gets the event `error` {code: ACCESS_DENIED, message: "Account is <status>"} and is disconnected
// (the client sees "io server disconnect"; a reconnect is refused by the handshake with the same
// message). The handler is Local: a cluster bus runs it on every node, each for its own sockets.
// It returns the unsubscribe function.
func DisconnectOnAccountChange(bus events.Bus, nsp *socketio.Namespace, log *slog.Logger) func() {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "socket")
	return bus.Subscribe(events.UserAccountStatusChanged, events.Handler{
		Name:  "socket.disconnect-inactive-account",
		Scope: events.Local,
		Handle: func(_ context.Context, e events.Event) error {
			var d events.UserAccountStatusData
			if err := e.Decode(&d); err != nil {
				return err
			}
			if d.Status == models.AccountActive || d.UserID == "" {
				return nil
			}
			room := realtime.UserRoom(d.UserID)
			n := len(nsp.Adapter().Sockets(room))
			if n == 0 {
				return nil
			}
			body := ErrorBody{Code: errs.CodeAccessDenied, Message: msgAccountPrefix + d.Status}
			if err := nsp.In(room).Local().Emit(ErrorEvent, body); err != nil {
				log.Warn("telling a deactivated user failed; disconnecting anyway", "userId", d.UserID, "err", err)
			}
			if err := nsp.In(room).Local().DisconnectSockets(true); err != nil {
				return err
			}
			log.Info("account no longer active: sockets disconnected", "userId", d.UserID, "status", d.Status,
				"sockets", n, "reason", d.Reason)
			return nil
		},
	})
}
