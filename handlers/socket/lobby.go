package socket

import (
	"context"
	"slices"
	"strings"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/lobby"
)

// Client events of the lobby feature (EVENTS.md, Lobby).
const (
	EventLobbyJoin      = "lobby:join"
	EventLobbySubscribe = "lobby:subscribe" // alias of lobby:join
	EventLobbyLeave     = "lobby:leave"
	EventLobbyReady     = "lobby:ready"
	EventLobbyKick      = "lobby:kick"
)

// maxLobbyIDLen bounds lobbyId in lobby:leave, which accepts any id (it only leaves rooms).
const maxLobbyIDLen = 64

// Lobby registers lobby:join (and lobby:subscribe), lobby:leave, lobby:ready and lobby:kick.
// Membership for good changes over REST; these events follow a lobby (rooms) and act in it.
func Lobby(svc *lobby.Service) Feature {
	return func(c *Conn) {
		h := lobbyHandlers{svc: svc, c: c}
		c.On(EventLobbyJoin, h.join)
		c.On(EventLobbySubscribe, h.join)
		c.On(EventLobbyLeave, h.leave)
		c.On(EventLobbyReady, h.ready)
		c.On(EventLobbyKick, h.kick)
		if c.Socket.Recovered() {
			h.leaveClosed()
		}
	}
}

// leaveClosed runs for a socket restored by connection state recovery: lobbies that closed while it
// was away stay in its rooms only until their missed events (lobby:closed) are out, which happened
// before the connection handlers ran; then it leaves them as a live socket did at the close.
func (h lobbyHandlers) leaveClosed() {
	ctx, cancel := context.WithTimeout(h.c.Context(), recoveryCheckTimeout)
	defer cancel()
	for _, room := range h.c.Socket.Rooms() {
		id, ok := strings.CutPrefix(room, "lobby:")
		if !ok {
			continue
		}
		l, err := h.svc.Find(ctx, id)
		if err != nil && !errs.Is(err, errs.CodeLobbyNotFound) {
			h.c.Logger().Warn("recovered socket: lobby not checked", "lobbyId", id, "err", err)
			continue
		}
		if err != nil || l.Status == models.LobbyClosed {
			h.c.Socket.Leave(room, lobby.ChatRoom(id))
		}
	}
}

type lobbyHandlers struct {
	svc *lobby.Service
	c   *Conn
}

type lobbyIDInput struct {
	LobbyID *string `json:"lobbyId"`
}

func requireLobbyID(p *string) (string, error) {
	if p == nil || strings.TrimSpace(*p) == "" {
		return "", errs.Validation("lobbyId is required", map[string]string{"lobbyId": "is required"})
	}
	if len(*p) > maxLobbyIDLen {
		return "", errs.Validation("lobbyId is too long", map[string]string{"lobbyId": "is too long"})
	}
	return *p, nil
}

// failAs keeps coded errors and turns anything else into the event's own failure code (the documents'
// catch-all: JOIN_ERROR, READY_ERROR, KICK_ERROR), logging the cause once here. SERVICE_UNAVAILABLE
// (the store is down) keeps its code: the client should retry.
func (h lobbyHandlers) failAs(event, code, message string, err error) error {
	if e := errs.From(err); e.Code != errs.CodeInternal {
		return e
	}
	h.c.Logger().Error("lobby event failed", "event", event, "err", err)
	return errs.New(code, message)
}

// join: the caller (a joined member) follows the lobby: room lobby:<id>, then lobby:joined and
// lobby:update to the caller and lobby:member:joined to the others.
func (h lobbyHandlers) join(ctx context.Context, ev *socketio.Event) error {
	var in lobbyIDInput
	if err := Decode(ev, &in); err != nil {
		return err
	}
	id, err := requireLobbyID(in.LobbyID)
	if err != nil {
		return err
	}
	uid := h.c.User.UserID
	if _, err := h.svc.Subscribe(ctx, id, uid); err != nil {
		return h.failAs(ev.Name(), errs.CodeJoinError, "Failed to join lobby", err)
	}
	room := lobby.Room(id)
	if err := h.c.Socket.Join(room); err != nil { // LIMIT_ROOMS_PER_SOCKET
		return tooManyRooms(errs.CodeJoinError, "Failed to join lobby")
	}
	// Checked again after joining the room: a kick stored between the first check and the join took
	// the user's sockets out of the room before this one was in it.
	l, err := h.svc.Subscribe(ctx, id, uid)
	if err != nil {
		h.c.Socket.Leave(room)
		return h.failAs(ev.Name(), errs.CodeJoinError, "Failed to join lobby", err)
	}
	view := lobby.NewView(l)
	_ = h.c.Emit(lobby.EventJoined, map[string]any{"lobbyId": id})
	_ = h.c.Emit(lobby.EventUpdate, map[string]any{"lobbyId": id, "update": view})
	if err := h.c.EmitToRoom(room, lobby.EventMemberJoined, map[string]any{"lobbyId": id,
		"user": map[string]any{"id": uid, "username": h.c.User.Username, "displayName": h.c.User.DisplayName}}); err != nil {
		h.c.Logger().Error("lobby:member:joined broadcast failed", "lobbyId", id, "err", err)
	}
	return OK(ev, map[string]any{"lobbyId": id, "lobby": view})
}

// leave: the socket stops following the lobby (and its chat); the user stays a member.
func (h lobbyHandlers) leave(ctx context.Context, ev *socketio.Event) error {
	var in lobbyIDInput
	if err := Decode(ev, &in); err != nil {
		return err
	}
	id, err := requireLobbyID(in.LobbyID)
	if err != nil {
		return err
	}
	room := lobby.Room(id)
	wasIn := slices.Contains(h.c.Socket.Rooms(), room)
	h.c.Socket.Leave(room, lobby.ChatRoom(id))
	if wasIn {
		if err := h.c.EmitToRoom(room, lobby.EventMemberLeft, map[string]any{"lobbyId": id,
			"user": map[string]any{"id": h.c.User.UserID, "username": h.c.User.Username}}); err != nil {
			h.c.Logger().Error("lobby:member:left broadcast failed", "lobbyId", id, "err", err)
		}
	}
	return OK(ev, map[string]any{"lobbyId": id})
}

// ready: {lobbyId, isReady}; the service emits lobby:member:ready (and lobby:ready, lobby:update).
func (h lobbyHandlers) ready(ctx context.Context, ev *socketio.Event) error {
	var in struct {
		LobbyID *string `json:"lobbyId"`
		IsReady *bool   `json:"isReady"`
	}
	if err := Decode(ev, &in); err != nil {
		return err
	}
	id, err := requireLobbyID(in.LobbyID)
	if err != nil {
		return err
	}
	if in.IsReady == nil {
		return errs.Validation("isReady is required", map[string]string{"isReady": "is required"})
	}
	l, err := h.svc.SetReady(ctx, id, h.c.User.UserID, *in.IsReady)
	if err != nil {
		return h.failAs(ev.Name(), errs.CodeReadyError, "Failed to update ready status", err)
	}
	return OK(ev, map[string]any{"lobbyId": id, "isReady": *in.IsReady, "status": l.Status})
}

// kick: {lobbyId, userId}, host only; the service emits lobby:member:kicked, lobby:kicked and moves the
// kicked user's sockets out of the lobby rooms.
func (h lobbyHandlers) kick(ctx context.Context, ev *socketio.Event) error {
	var in struct {
		LobbyID *string `json:"lobbyId"`
		UserID  *string `json:"userId"`
	}
	if err := Decode(ev, &in); err != nil {
		return err
	}
	id, err := requireLobbyID(in.LobbyID)
	if err != nil {
		return err
	}
	if in.UserID == nil || *in.UserID == "" {
		return errs.Validation("userId is required", map[string]string{"userId": "is required"})
	}
	if _, err := h.svc.Kick(ctx, id, h.c.User.UserID, *in.UserID); err != nil {
		return h.failAs(ev.Name(), errs.CodeKickError, "Failed to kick member", err)
	}
	return OK(ev, map[string]any{"lobbyId": id, "userId": *in.UserID})
}
