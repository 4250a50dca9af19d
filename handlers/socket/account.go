package socket

import (
	"context"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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
	log = componentLog(log)
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
			return disconnectUser(nsp, d.UserID, d.Status, "event", log)
		},
	})
}

// InactiveAccounts finds, among ids, the accounts that are not active (*models.Users satisfies it).
type InactiveAccounts interface {
	Inactive(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]string, error)
}

// SweepInactiveAccounts is the fallback of DisconnectOnAccountChange for a change that no event
// announced to this node (the admin command run without REDIS_URL, an edit in the database): every
// interval it asks the store which users connected here are no longer active (one query for all of
// them) and disconnects their sockets the same way. A store that does not answer is logged and
// tried again next time. It returns the stop function.
func SweepInactiveAccounts(nsp *socketio.Namespace, accounts InactiveAccounts, interval time.Duration, log *slog.Logger) func() {
	log = componentLog(log)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			err := sweepOnce(nsp, accounts, interval, log)
			if err != nil && !failing {
				log.Warn("account sweep failed; retrying every interval", "interval", interval, "err", err)
			} else if err == nil && failing {
				log.Info("account sweep works again")
			}
			failing = err != nil
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

func sweepOnce(nsp *socketio.Namespace, accounts InactiveAccounts, budget time.Duration, log *slog.Logger) error {
	seen := map[bson.ObjectID]bool{}
	var ids []bson.ObjectID
	for _, s := range nsp.Sockets() {
		if sess := SessionOf(s); sess != nil {
			if id, ok := models.ParseID(sess.UserID); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	inactive, err := accounts.Inactive(ctx, ids)
	if err != nil {
		return err
	}
	for id, status := range inactive {
		if err := disconnectUser(nsp, id.Hex(), status, "sweep", log); err != nil {
			log.Warn("disconnecting an inactive account failed", "userId", id.Hex(), "err", err)
		}
	}
	return nil
}

// disconnectUser tells the sockets of userID on this node why and disconnects them.
func disconnectUser(nsp *socketio.Namespace, userID, status, via string, log *slog.Logger) error {
	room := realtime.UserRoom(userID)
	n := len(nsp.Adapter().Sockets(room))
	if n == 0 {
		return nil
	}
	body := ErrorBody{Code: errs.CodeAccessDenied, Message: msgAccountPrefix + status}
	if err := nsp.In(room).Local().Emit(ErrorEvent, body); err != nil {
		log.Warn("telling a deactivated user failed; disconnecting anyway", "userId", userID, "err", err)
	}
	if err := nsp.In(room).Local().DisconnectSockets(true); err != nil {
		return err
	}
	log.Info("account no longer active: sockets disconnected", "userId", userID, "status", status, "sockets", n, "via", via)
	return nil
}

func componentLog(log *slog.Logger) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return log.With("component", "socket")
}
