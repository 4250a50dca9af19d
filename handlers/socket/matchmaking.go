package socket

import (
	"context"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/realtime"
)

// MatchmakingService is what the matchmaking socket events need (*matchmaking.Service).
type MatchmakingService interface {
	Status(ctx context.Context, userID, requestID string) (matchmaking.StatusPayload, error)
	Cancel(ctx context.Context, userID, requestID string) (*models.MatchRequest, error)
}

// maxRequestIDLen bounds a request id from a client (an ObjectID is 24 characters).
const maxRequestIDLen = 64

// matchRef is the payload of the matchmaking events: requestId, or matchRequestId as the planning
// notes name it.
type matchRef struct {
	RequestID      *string `json:"requestId"`
	MatchRequestID *string `json:"matchRequestId"`
}

func (r matchRef) id() string {
	if r.RequestID != nil && *r.RequestID != "" {
		return *r.RequestID
	}
	if r.MatchRequestID != nil {
		return *r.MatchRequestID
	}
	return ""
}

// Matchmaking registers matchmaking:subscribe, matchmaking:unsubscribe and matchmaking:cancel
// (EVENTS.md, Matchmaking). A failure answers with `matchmaking:error {requestId, code, message}`,
// `error {code, message}` and a failed ack; codes MATCH_NOT_FOUND, SUBSCRIPTION_ERROR,
// CANCEL_ERROR, VALIDATION_ERROR.
func Matchmaking(svc MatchmakingService) Feature {
	return func(c *Conn) {
		c.On("matchmaking:subscribe", func(ctx context.Context, ev *socketio.Event) error {
			id, err := decodeMatchRef(ev)
			if err != nil {
				return matchFail(c, id, err)
			}
			// Status checks the owner; the status sent right after joining is the current one.
			st, err := svc.Status(ctx, c.User.UserID, id)
			if err != nil {
				return matchFail(c, id, subscribeError(c, id, err))
			}
			if err := c.Socket.Join(matchmaking.MatchRoom(id)); err != nil { // LIMIT_ROOMS_PER_SOCKET
				return matchFail(c, id, tooManyRooms(errs.CodeSubscriptionError, "Failed to subscribe to matchmaking updates"))
			}
			if err := c.Emit(matchmaking.EventStatus, st); err != nil {
				c.Logger().Warn("sending the first matchmaking:status failed", "requestId", id, "err", err)
			}
			return OK(ev, map[string]any{"requestId": id})
		})
		c.On("matchmaking:unsubscribe", func(ctx context.Context, ev *socketio.Event) error {
			id, err := decodeMatchRef(ev)
			if err != nil {
				return matchFail(c, id, err)
			}
			c.Socket.Leave(matchmaking.MatchRoom(id))
			return OK(ev, map[string]any{"requestId": id})
		})
		c.On("matchmaking:cancel", func(ctx context.Context, ev *socketio.Event) error {
			id, err := decodeMatchRef(ev)
			if err != nil {
				return matchFail(c, id, err)
			}
			m, err := svc.Cancel(ctx, c.User.UserID, id)
			if err != nil {
				return matchFail(c, id, cancelError(c, id, err))
			}
			// The service sent matchmaking:cancelled to the user's sockets (this one included).
			cancelledAt := ""
			if m.CancelledAt != nil {
				cancelledAt = realtime.ISOTime(*m.CancelledAt)
			}
			return OK(ev, map[string]any{"requestId": id, "cancelledAt": cancelledAt})
		})
	}
}

func decodeMatchRef(ev *socketio.Event) (string, error) {
	var in matchRef
	if err := Decode(ev, &in); err != nil {
		return "", err
	}
	id := in.id()
	if id == "" {
		return "", errs.Validation("requestId is required", map[string]string{"requestId": "is required"})
	}
	// Ids are 24 hex characters; a long one is refused here so that it is never echoed back in the
	// ack or carried into a room name (hardening: a 900 KB id used to come back in full).
	if len(id) > maxRequestIDLen {
		return "", errs.Validation("requestId is too long", map[string]string{"requestId": "is too long"})
	}
	return id, nil
}

// subscribeError maps the service's answer: unknown or foreign → MATCH_NOT_FOUND; a finished
// request, or anything that went wrong → SUBSCRIPTION_ERROR (the cause of the latter is logged);
// SERVICE_UNAVAILABLE (store down) stays itself so that the client retries.
func subscribeError(c *Conn, id string, err error) error {
	e := errs.From(err)
	switch e.Code {
	case errs.CodeNotFound, errs.CodeMatchNotFound:
		return errs.New(errs.CodeMatchNotFound, "Match request not found")
	case errs.CodeConflict:
		return errs.New(errs.CodeSubscriptionError, "Cannot subscribe: "+e.Message)
	case errs.CodeValidation, errs.CodeServiceUnavailable:
		return e
	}
	c.Logger().Error("matchmaking:subscribe failed", "requestId", id, "err", err)
	return errs.New(errs.CodeSubscriptionError, "Failed to subscribe to matchmaking updates")
}

// cancelError: unknown or foreign → MATCH_NOT_FOUND; not searching any more, or anything that went
// wrong → CANCEL_ERROR (the cause of the latter is logged); SERVICE_UNAVAILABLE stays itself.
func cancelError(c *Conn, id string, err error) error {
	e := errs.From(err)
	switch e.Code {
	case errs.CodeNotFound, errs.CodeMatchNotFound:
		return errs.New(errs.CodeMatchNotFound, "Match request not found")
	case errs.CodeConflict:
		return errs.New(errs.CodeCancelError, "Match request not found or already matched/cancelled: "+e.Message)
	case errs.CodeValidation, errs.CodeServiceUnavailable:
		return e
	}
	c.Logger().Error("matchmaking:cancel failed", "requestId", id, "err", err)
	return errs.New(errs.CodeCancelError, "Failed to cancel matchmaking")
}

// matchFail sends matchmaking:error to the socket and returns the error for the toolkit, which
// answers with `error` and the failed ack.
func matchFail(c *Conn, requestID string, err error) error {
	e := errs.From(err)
	if e.Code == errs.CodeInternal {
		return err // logged by Fail; clients see INTERNAL
	}
	if serr := c.Emit(matchmaking.EventError, matchmaking.ErrorPayload{RequestID: requestID, Code: e.Code,
		Message: e.Message}); serr != nil {
		c.Logger().Debug("sending matchmaking:error failed", "err", serr)
	}
	return e
}
