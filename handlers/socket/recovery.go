package socket

// Connection state recovery (RECOVERY_MAX_DISCONNECTION): a client whose transport dropped and that
// comes back to the same node within the window gets its socket back — same id, same rooms, and
// the broadcasts it missed. The rooms of this app stand for permissions (a lobby, a chat, a
// matchmaking request, the user's own room), and a user may have lost some of them while away
// (kicked, left the lobby for good). So before a restored session is taken up, every room it would
// rejoin is checked against the store; one that is no longer allowed makes the socket start afresh
// (new id, no rooms, no missed packets), and the client re-joins what it may, as after any
// reconnection. The handshake middleware runs for recovered sessions too (token and account are
// checked on every connect).

import (
	"context"
	"strings"
	"time"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/chat"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/lobby"
	"github.com/maoga/maoga/services/matchmaking"
	"github.com/maoga/maoga/services/realtime"
)

// RoomCheck tells whether a user may be in a room that a recovered socket would rejoin. known is
// false for rooms the check does not cover (another check, or none: then the session is refused).
type RoomCheck func(ctx context.Context, userID, room string) (known, allowed bool, err error)

// recoveryCheckTimeout bounds the store reads of one recovery.
const recoveryCheckTimeout = 5 * time.Second

// vetRecovery is the namespace's socketio.RecoveryVetter.
func (h *handlers) vetRecovery(s *socketio.Socket, rooms []string) bool {
	sess := SessionOf(s)
	if sess == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoveryCheckTimeout)
	defer cancel()
	log := h.log.With("socket", s.ID(), "userId", sess.UserID)
	for _, room := range rooms {
		if room == s.ID() || room == realtime.UserRoom(sess.UserID) {
			continue
		}
		// Every other room needs a check that knows it; a user room of someone else (the client
		// changed users: a new token with the old pid) has none, so it is refused too.
		known, allowed := false, false
		for _, check := range h.opts.RecoveryChecks {
			var err error
			known, allowed, err = check(ctx, sess.UserID, room)
			if err != nil {
				log.Warn("recovered session refused: a room could not be checked", "room", room, "err", err)
				return false
			}
			if known {
				break
			}
		}
		if !known || !allowed {
			log.Info("recovered session refused: the user may no longer be in one of its rooms", "room", room, "known", known)
			return false
		}
	}
	return true
}

// LobbyRoomCheck covers lobby:<id> and its chat room chat:lobby:<id>: allowed while the user is a
// joined member, also of a lobby that closed meanwhile (its last events, lobby:closed among them, are
// among the missed ones; the room gets nothing after). Kicked or left: refused.
func LobbyRoomCheck(svc *lobby.Service) RoomCheck {
	return func(ctx context.Context, userID, room string) (bool, bool, error) {
		id, ok := strings.CutPrefix(room, "lobby:")
		if !ok {
			id, ok = strings.CutPrefix(room, "chat:lobby:")
		}
		if !ok {
			return false, false, nil
		}
		l, err := svc.Find(ctx, id)
		if err != nil {
			return refusal(err)
		}
		m := l.Members[userID]
		return true, m != nil && m.Status == models.MemberJoined, nil
	}
}

// ChatRoomCheck covers chat:<chatId> of direct chats: allowed for the chat's participants.
func ChatRoomCheck(svc *chat.Service) RoomCheck {
	return func(ctx context.Context, userID, room string) (bool, bool, error) {
		id, ok := strings.CutPrefix(room, "chat:")
		if !ok || strings.HasPrefix(id, "lobby:") {
			return false, false, nil
		}
		_, err := svc.Access(ctx, id, userID)
		return refusal(err)
	}
}

// MatchRequests reads a user's own match request (*matchmaking.Service): NOT_FOUND for another
// user's or a missing one.
type MatchRequests interface {
	Get(ctx context.Context, userID, requestID string) (matchmaking.View, error)
}

// MatchRoomCheck covers match:<requestId>: allowed for the request's owner, whatever its status (a
// request matched while the client was away is why its missed matchmaking:matched matters).
func MatchRoomCheck(svc MatchRequests) RoomCheck {
	return func(ctx context.Context, userID, room string) (bool, bool, error) {
		id, ok := strings.CutPrefix(room, "match:")
		if !ok {
			return false, false, nil
		}
		_, err := svc.Get(ctx, userID, id)
		return refusal(err)
	}
}

// refusal maps a check's error: none → allowed; a coded answer of the store's content (not found,
// access denied, invalid id) → not allowed; a failure to answer → the error.
func refusal(err error) (known, allowed bool, _ error) {
	if err == nil {
		return true, true, nil
	}
	if e, ok := errs.As(err); ok && e.Code != errs.CodeInternal && e.Code != errs.CodeServiceUnavailable {
		return true, false, nil
	}
	return true, false, err
}
