package socket

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/chat"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/ratelimit"
	"github.com/maoga/maoga/services/realtime"
)

// Chat events (EVENTS.md, Chat).
const (
	EventChatJoin         = "chat:join"
	EventChatJoined       = "chat:joined"
	EventChatLeave        = "chat:leave"
	EventChatMemberJoined = "chat:member:joined"
	EventChatMemberLeft   = "chat:member:left"
	EventChatMessage      = "chat:message"
	EventChatTyping       = "chat:typing"
	EventChatRead         = "chat:read"
)

// DefaultMaxJoinedChats bounds the chat rooms one socket may be in at once.
const DefaultMaxJoinedChats = 50

// ChatOptions wire the chat handlers. Service is required; a nil limiter means no limit.
type ChatOptions struct {
	Service *chat.Service
	// MessageLimit and TypingLimit are per user (all sockets of a user share the budget).
	MessageLimit ratelimit.Limiter
	TypingLimit  ratelimit.Limiter
	// MaxJoinedChats bounds the chat rooms per socket; past it chat:join answers JOIN_ERROR. Default 50.
	MaxJoinedChats int
}

// Chat returns the Feature that handles chat:join, chat:leave, chat:message, chat:typing and chat:read.
// Answers to the caller: chat:joined, the error event and the ack envelope; to the others in the room:
// chat:member:joined/left, chat:typing, chat:read. chat:message to the whole room is sent by the service
// after the message is stored.
func Chat(o ChatOptions) Feature {
	if o.Service == nil {
		panic("socket: Chat needs a Service")
	}
	if o.MaxJoinedChats <= 0 {
		o.MaxJoinedChats = DefaultMaxJoinedChats
	}
	return func(c *Conn) {
		h := &chatHandlers{o: o, c: c}
		c.On(EventChatJoin, h.join)
		c.On(EventChatLeave, h.leave)
		c.On(EventChatMessage, h.message)
		c.OnUnadmitted(EventChatTyping, h.typing) // no store work: not refused under overload
		c.On(EventChatRead, h.read)
		// A socket restored by connection state recovery is back in the chat rooms its dropped
		// transport left (and announced as left, below): tell the others it is back.
		if c.Socket.Recovered() {
			for _, room := range c.Socket.Rooms() {
				if id, ok := strings.CutPrefix(room, "chat:"); ok {
					h.announce(room, EventChatMemberJoined, id)
				}
			}
		}
		// A socket that goes away leaves its chat rooms: tell the others like chat:leave does.
		c.Socket.OnDisconnecting(func(string) {
			for _, room := range c.Socket.Rooms() {
				if id, ok := strings.CutPrefix(room, "chat:"); ok {
					h.announce(room, EventChatMemberLeft, id)
				}
			}
		})
	}
}

type chatHandlers struct {
	o ChatOptions
	c *Conn
}

// userRef is the short user form of member and typing events.
type userRef struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type memberPayload struct {
	ChatID string  `json:"chatId"`
	User   userRef `json:"user"`
}

func (h *chatHandlers) me() userRef { return userRef{ID: h.c.User.UserID, Username: h.c.User.Username} }

// inRoom reports whether this socket joined the chat's room.
func (h *chatHandlers) inRoom(room string) bool {
	for _, r := range h.c.Socket.Rooms() {
		if r == room {
			return true
		}
	}
	return false
}

func (h *chatHandlers) joinedChats() int {
	n := 0
	for _, r := range h.c.Socket.Rooms() {
		if strings.HasPrefix(r, "chat:") {
			n++
		}
	}
	return n
}

// announce sends a member event to the others in room (never fails the action: the caller's part is done).
func (h *chatHandlers) announce(room, event, chatID string) {
	if err := h.c.EmitToRoom(room, event, memberPayload{ChatID: chatID, User: h.me()}); err != nil {
		h.c.Logger().Error("chat announce failed", "event", event, "chatId", chatID, "err", err)
	}
}

// asCode turns an internal failure into the feature's error code (JOIN_ERROR, MESSAGE_ERROR) with a
// fixed message, logging the cause once here; coded errors pass through, SERVICE_UNAVAILABLE too (the
// store is down: the client should retry, and Fail logs it at debug level).
func (h *chatHandlers) asCode(err error, code, message, event string) error {
	if e := errs.From(err); e.Code != errs.CodeInternal {
		return e
	}
	h.c.Logger().Error("chat action failed", "event", event, "code", code, "err", err)
	return errs.New(code, message)
}

// limited checks the user's budget for an action.
func (h *chatHandlers) limited(l ratelimit.Limiter, what string) error {
	if l == nil {
		return nil
	}
	ok, retry := l.Allow(h.c.User.UserID)
	if ok {
		return nil
	}
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return errs.New(errs.CodeRateLimited, fmt.Sprintf("Too many %s: try again in %d s", what, secs)).
		WithDetails(map[string]any{"retryAfterMs": retry.Milliseconds()})
}

type chatIDIn struct {
	ChatID *string `json:"chatId"`
}

func requireChatID(id *string) (string, error) {
	if id == nil {
		return "", errs.Validation("chatId is required", map[string]string{"chatId": "is required"})
	}
	return *id, chat.CheckChatID(*id)
}

func (h *chatHandlers) join(ctx context.Context, ev *socketio.Event) error {
	var in chatIDIn
	if err := Decode(ev, &in); err != nil {
		return err
	}
	chatID, err := requireChatID(in.ChatID)
	if err != nil {
		return err
	}
	if _, err := h.o.Service.Join(ctx, chatID, h.c.User.UserID); err != nil {
		return h.asCode(err, errs.CodeJoinError, "Failed to join chat", EventChatJoin)
	}
	room := chat.Room(chatID)
	already := h.inRoom(room)
	if !already && h.joinedChats() >= h.o.MaxJoinedChats {
		return errs.New(errs.CodeJoinError,
			fmt.Sprintf("Failed to join chat: a connection may be in at most %d chats", h.o.MaxJoinedChats))
	}
	if err := h.c.Socket.Join(room); err != nil { // LIMIT_ROOMS_PER_SOCKET
		return tooManyRooms(errs.CodeJoinError, "Failed to join chat")
	}
	if err := h.c.Emit(EventChatJoined, map[string]string{"chatId": chatID}); err != nil {
		h.c.Logger().Warn("chat:joined not sent", "chatId", chatID, "err", err)
	}
	if !already {
		h.announce(room, EventChatMemberJoined, chatID)
	}
	return OK(ev, map[string]string{"chatId": chatID})
}

func (h *chatHandlers) leave(ctx context.Context, ev *socketio.Event) error {
	var in chatIDIn
	if err := Decode(ev, &in); err != nil {
		return err
	}
	chatID, err := requireChatID(in.ChatID)
	if err != nil {
		return err
	}
	room := chat.Room(chatID)
	// Leaving a chat one is not in is a no-op (idempotent), not an error.
	if h.inRoom(room) {
		h.c.Socket.Leave(room)
		h.announce(room, EventChatMemberLeft, chatID)
	}
	return OK(ev, map[string]string{"chatId": chatID})
}

// message stores and broadcasts a chat message. With the optional clientMessageId a resend of a message
// already stored (its ack was lost) is answered with that message before the rate limit and the room
// check: it stores and broadcasts nothing and does not count against MessageLimit. A resend racing its
// original is caught by the service (counted then, as it was not known to be one).
func (h *chatHandlers) message(ctx context.Context, ev *socketio.Event) error {
	var in struct {
		ChatID          *string `json:"chatId"`
		Content         *string `json:"content"`
		ContentType     *string `json:"contentType"`
		ClientMessageID *string `json:"clientMessageId"`
	}
	if err := Decode(ev, &in); err != nil {
		return err
	}
	chatID, err := requireChatID(in.ChatID)
	if err != nil {
		return err
	}
	if in.Content == nil {
		return errs.Validation("content is required", map[string]string{"content": "is required"})
	}
	contentType := ""
	if in.ContentType != nil {
		if *in.ContentType == "" {
			return errs.Validation("contentType must be text, emoji or gif",
				map[string]string{"contentType": "must be text, emoji or gif"})
		}
		contentType = *in.ContentType
	}
	key := ""
	if in.ClientMessageID != nil {
		if err := chat.CheckClientMessageID(*in.ClientMessageID); err != nil {
			return err
		}
		key = *in.ClientMessageID
	}
	sess := h.c.User
	sender := chat.UserRef{ID: sess.UserID, Username: sess.Username, DisplayName: sess.DisplayName}
	if key != "" {
		msg, err := h.o.Service.Sent(ctx, sender, chatID, *in.Content, contentType, key)
		if err != nil {
			return h.asCode(err, errs.CodeMessageError, "Failed to send message", EventChatMessage)
		}
		if msg != nil {
			return OK(ev, map[string]any{"message": msg})
		}
	}
	if err := h.limited(h.o.MessageLimit, "messages"); err != nil {
		return err
	}
	if !h.inRoom(chat.Room(chatID)) {
		return errs.New(errs.CodeNotInChat, "You must join the chat before sending messages")
	}
	msg, _, err := h.o.Service.SendOnce(ctx, sender, chatID, *in.Content, contentType, key)
	if err != nil {
		return h.asCode(err, errs.CodeMessageError, "Failed to send message", EventChatMessage)
	}
	return OK(ev, map[string]any{"message": msg})
}

func (h *chatHandlers) typing(ctx context.Context, ev *socketio.Event) error {
	var in struct {
		ChatID   *string `json:"chatId"`
		IsTyping *bool   `json:"isTyping"`
	}
	if err := Decode(ev, &in); err != nil {
		return err
	}
	chatID, err := requireChatID(in.ChatID)
	if err != nil {
		return err
	}
	if in.IsTyping == nil {
		return errs.Validation("isTyping is required", map[string]string{"isTyping": "is required"})
	}
	if err := h.limited(h.o.TypingLimit, "typing events"); err != nil {
		return err
	}
	room := chat.Room(chatID)
	if !h.inRoom(room) {
		return errs.New(errs.CodeNotInChat, "You must join the chat before typing in it")
	}
	payload := struct {
		ChatID   string  `json:"chatId"`
		User     userRef `json:"user"`
		IsTyping bool    `json:"isTyping"`
	}{chatID, h.me(), *in.IsTyping}
	if err := h.c.EmitToRoom(room, EventChatTyping, payload); err != nil {
		return h.asCode(errs.Internal(err), errs.CodeMessageError, "Failed to send typing indicator", EventChatTyping)
	}
	return OK(ev, map[string]string{"chatId": chatID})
}

func (h *chatHandlers) read(ctx context.Context, ev *socketio.Event) error {
	var in struct {
		ChatID        *string `json:"chatId"`
		LastMessageID *string `json:"lastMessageId"`
	}
	if err := Decode(ev, &in); err != nil {
		return err
	}
	chatID, err := requireChatID(in.ChatID)
	if err != nil {
		return err
	}
	last := ""
	if in.LastMessageID != nil {
		last = *in.LastMessageID
		if last == "" {
			return errs.Validation("lastMessageId must not be empty", map[string]string{"lastMessageId": "must not be empty"})
		}
	}
	rs, err := h.o.Service.MarkRead(ctx, h.c.User.UserID, chatID, last)
	if err != nil {
		return h.asCode(err, errs.CodeMessageError, "Failed to mark the chat read", EventChatRead)
	}
	if err := h.c.EmitToRoom(chat.Room(chatID), EventChatRead,
		map[string]string{"chatId": chatID, "userId": h.c.User.UserID}); err != nil {
		h.c.Logger().Error("chat:read broadcast failed", "chatId", chatID, "err", err)
	}
	out := map[string]any{"chatId": chatID, "lastReadAt": realtime.ISOTime(rs.At)}
	if !rs.MessageID.IsZero() {
		out["lastReadMessageId"] = rs.MessageID.Hex()
	}
	return OK(ev, out)
}
