// Package chat is the chat service (EVENTS.md, Chat; REST.md, chats): direct chats between two users
// (created once per pair over REST), lobby chats named "lobby:<lobbyId>" whose access follows the
// lobby's active members, messages (validated, stored, then broadcast to the room "chat:<chatId>"),
// per-user read state with unread counts, history with a cursor, and unread-message notifications for
// recipients who are not in the chat room (one per chat until they read it).
//
// The socket handlers (handlers/socket/chat.go) own the room membership of sockets and the rate limits;
// this package owns the documents and decides access.
package chat

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/notifications"
	"github.com/maoga/maoga/services/realtime"
)

// Socket.IO events the service sends to a chat room.
const EventMessage = "chat:message"

// NotificationType is the type of the unread-message notification.
const NotificationType = "chat_message"

// Defaults of Config.
const (
	DefaultMaxContentLen = 2000
	DefaultHistoryLimit  = 50
	MaxHistoryLimit      = 100
	// MaxChatIDLen bounds chat ids accepted from clients ("lobby:" + 24 hex is 30).
	MaxChatIDLen = 64
	// previewLen is how much of a message a notification quotes.
	previewLen = 100
)

// Room is the Socket.IO room of a chat: "chat:<chatId>".
func Room(chatID string) string { return "chat:" + chatID }

// Lobbies answers lobby membership for lobby chats. services/lobby satisfies it; ModelLobbies reads the
// lobbies collection directly.
type Lobbies interface {
	// IsActiveMember reports whether userID is an active (joined) member of the open lobby lobbyID.
	// A lobby that does not exist is an error with code NOT_FOUND or LOBBY_NOT_FOUND.
	IsActiveMember(ctx context.Context, lobbyID, userID string) (bool, error)
	// ActiveMemberIDs lists the active members of lobbyID (empty for a closed lobby).
	ActiveMemberIDs(ctx context.Context, lobbyID string) ([]string, error)
}

// Notifier creates notifications (*notifications.Service satisfies it).
type Notifier interface {
	Create(ctx context.Context, d notifications.Draft) (*notifications.View, error)
}

// Config holds the chat limits.
type Config struct {
	// MaxContentLen is the longest message in characters (runes) after trimming; default 2000.
	MaxContentLen int
}

// Options wire a Service. Store, Lobbies and Emitter are required. Without Rooms every recipient counts
// as "not in the room"; without Notifier no notification is created; without Events nothing is published.
type Options struct {
	Store    *models.Store
	Lobbies  Lobbies
	Emitter  realtime.Emitter
	Rooms    realtime.RoomUsers
	Notifier Notifier
	Events   events.Publisher
	Config   Config
	Logger   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the chat service.
type Service struct {
	chats    *mongo.Collection
	messages *mongo.Collection
	keys     *mongo.Collection // models.MessageKeysCollection
	users    *models.Users
	lobbies  Lobbies
	emit     realtime.Emitter
	rooms    realtime.RoomUsers
	notifier Notifier
	pub      events.Publisher
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Service.
func New(o Options) *Service {
	if o.Store == nil || o.Lobbies == nil || o.Emitter == nil {
		panic("chat: New needs Store, Lobbies and Emitter")
	}
	if o.Config.MaxContentLen <= 0 {
		o.Config.MaxContentLen = DefaultMaxContentLen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{
		chats: o.Store.Collection(models.ChatsCollection), messages: o.Store.Collection(models.MessagesCollection),
		keys:  o.Store.Collection(models.MessageKeysCollection),
		users: models.NewUsers(o.Store), lobbies: o.Lobbies, emit: o.Emitter, rooms: o.Rooms,
		notifier: o.Notifier, pub: o.Events, cfg: o.Config, log: o.Logger.With("component", "chat"), now: o.Now,
	}
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// clock returns now truncated to milliseconds: BSON dates keep milliseconds, and read state compares
// stored times with times kept in memory.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// UserRef is a user as chat payloads show them.
type UserRef struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
}

// MessageView is a message as clients see it (the `message` of chat:message, history items).
type MessageView struct {
	ID          string  `json:"id"`
	ChatID      string  `json:"chatId"`
	Sender      UserRef `json:"sender"`
	Content     string  `json:"content"`
	ContentType string  `json:"contentType"`
	CreatedAt   string  `json:"createdAt"`
}

// MessagePayload is the payload of the chat:message event.
type MessagePayload struct {
	ChatID  string      `json:"chatId"`
	Message MessageView `json:"message"`
}

// ChatView is a chat in the caller's list (GET /api/chats) or as created (POST /api/chats/direct).
type ChatView struct {
	ID                string    `json:"id"`
	Type              string    `json:"type"`
	LobbyID           *string   `json:"lobbyId"`
	Participants      []UserRef `json:"participants"`
	LastMessageAt     *string   `json:"lastMessageAt"`
	LastMessageID     *string   `json:"lastMessageId"`
	UnreadCount       int64     `json:"unreadCount"`
	LastReadAt        *string   `json:"lastReadAt"`
	LastReadMessageID *string   `json:"lastReadMessageId"`
	CreatedAt         string    `json:"createdAt"`
}

// MessageSentData is the payload of the internal event chat.message.sent.
type MessageSentData struct {
	ChatID      string   `json:"chatId"`
	MessageID   string   `json:"messageId"`
	SenderID    string   `json:"senderId"`
	SenderName  string   `json:"senderName"`
	Preview     string   `json:"preview"`
	ContentType string   `json:"contentType"`
	Recipients  []string `json:"recipients"`
	CreatedAt   string   `json:"createdAt"`
}

func chatNotFound() error { return errs.New(errs.CodeChatNotFound, "Chat not found") }
func accessDenied() error {
	return errs.New(errs.CodeAccessDenied, "You do not have access to this chat")
}

// CheckChatID validates a chat id from a client: non-empty, bounded, printable.
func CheckChatID(id string) error {
	if id == "" {
		return errs.Validation("chatId is required", map[string]string{"chatId": "is required"})
	}
	if len(id) > MaxChatIDLen || !utf8.ValidString(id) || strings.ContainsAny(id, " \t\r\n") {
		return errs.Validation("chatId is not a valid chat id", map[string]string{"chatId": "is not a valid chat id"})
	}
	return nil
}

// lobbyIDOf returns the lobby id of a lobby chat id ("lobby:<lobbyId>").
func lobbyIDOf(chatID string) (string, bool) {
	if !strings.HasPrefix(chatID, "lobby:") {
		return "", false
	}
	return strings.TrimPrefix(chatID, "lobby:"), true
}

// Access loads the chat and checks userID may use it: a direct chat's participant, an active member of
// a lobby chat's lobby. A lobby chat's document is created on first access. Errors: CHAT_NOT_FOUND,
// ACCESS_DENIED, VALIDATION_ERROR (bad id), INTERNAL.
func (s *Service) Access(ctx context.Context, chatID, userID string) (*models.Chat, error) {
	if err := CheckChatID(chatID); err != nil {
		return nil, err
	}
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, accessDenied()
	}
	if lobbyID, ok := lobbyIDOf(chatID); ok {
		lid, ok := models.ParseID(lobbyID)
		if !ok {
			return nil, chatNotFound()
		}
		member, err := s.lobbies.IsActiveMember(ctx, lobbyID, userID)
		if errs.Is(err, errs.CodeNotFound) || errs.Is(err, errs.CodeLobbyNotFound) {
			return nil, chatNotFound()
		}
		if err != nil {
			return nil, err
		}
		if !member {
			return nil, accessDenied()
		}
		return s.ensureLobbyChat(ctx, chatID, lid)
	}
	if _, ok := models.ParseID(chatID); !ok {
		return nil, chatNotFound()
	}
	c, err := s.load(ctx, chatID)
	if err != nil {
		return nil, err
	}
	if c.Type != models.ChatDirect || !containsID(c.Participants, uid) {
		return nil, accessDenied()
	}
	return c, nil
}

func containsID(list []bson.ObjectID, id bson.ObjectID) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

func (s *Service) load(ctx context.Context, chatID string) (*models.Chat, error) {
	var c models.Chat
	if err := s.chats.FindOne(ctx, bson.M{"_id": chatID}).Decode(&c); err != nil {
		if models.IsNoDocuments(err) {
			return nil, chatNotFound()
		}
		return nil, errs.Internal(err)
	}
	return &c, nil
}

// ensureLobbyChat returns the lobby chat's document, creating it the first time (concurrent creators
// meet on the unique key).
func (s *Service) ensureLobbyChat(ctx context.Context, chatID string, lobbyID bson.ObjectID) (*models.Chat, error) {
	c, err := s.load(ctx, chatID)
	if err == nil || !errs.Is(err, errs.CodeChatNotFound) {
		return c, err
	}
	now := s.clock()
	doc := &models.Chat{ID: chatID, Type: models.ChatLobby, Key: chatID, Participants: []bson.ObjectID{},
		LobbyID: &lobbyID, CreatedAt: now, UpdatedAt: now}
	if _, err := s.chats.InsertOne(ctx, doc); err != nil && !models.IsDuplicateKey(err) {
		return nil, errs.Internal(err)
	}
	return s.load(ctx, chatID)
}

// Join checks access like Access and, for a lobby chat, records the user as a participant so that the
// chat appears in the user's chat list.
func (s *Service) Join(ctx context.Context, chatID, userID string) (*models.Chat, error) {
	c, err := s.Access(ctx, chatID, userID)
	if err != nil {
		return nil, err
	}
	uid, _ := models.ParseID(userID)
	if c.Type == models.ChatLobby && !containsID(c.Participants, uid) {
		if err := s.addParticipants(ctx, chatID, []bson.ObjectID{uid}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// addParticipants adds users to a chat's participants (lobby chats).
func (s *Service) addParticipants(ctx context.Context, chatID string, ids []bson.ObjectID) error {
	if len(ids) == 0 {
		return nil
	}
	defer models.LockDoc(models.ChatsCollection, chatID)()
	_, err := s.chats.UpdateOne(ctx, bson.M{"_id": chatID},
		bson.M{"$addToSet": bson.M{"participants": bson.M{"$each": ids}}, "$set": bson.M{"updatedAt": s.clock()}})
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}

// directKey is the unique key of the direct chat of a pair, independent of who asks.
func directKey(a, b bson.ObjectID) string {
	x, y := a.Hex(), b.Hex()
	if y < x {
		x, y = y, x
	}
	return "direct:" + x + ":" + y
}

// CreateDirect returns the direct chat between userID and otherID, creating it the first time. Concurrent
// calls for one pair (either direction) return the same chat. Errors: VALIDATION_ERROR (bad id, self),
// NOT_FOUND (no such user).
func (s *Service) CreateDirect(ctx context.Context, userID, otherID string) (*ChatView, bool, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, false, errs.Validation("invalid user id", map[string]string{"userId": "is not a valid id"})
	}
	oid, ok := models.ParseID(otherID)
	if !ok {
		return nil, false, errs.Validation("invalid user id", map[string]string{"userId": "is not a valid id"})
	}
	if uid == oid {
		return nil, false, errs.Validation("cannot chat with yourself", map[string]string{"userId": "is your own id"})
	}
	if _, err := s.users.ByID(ctx, oid); err != nil {
		return nil, false, err
	}
	key := directKey(uid, oid)
	now := s.clock()
	doc := &models.Chat{ID: bson.NewObjectID().Hex(), Type: models.ChatDirect, Key: key,
		Participants: []bson.ObjectID{uid, oid}, CreatedAt: now, UpdatedAt: now}
	created := true
	if _, err := s.chats.InsertOne(ctx, doc); err != nil {
		if !models.IsDuplicateKey(err) {
			return nil, false, errs.Internal(err)
		}
		created = false
		var existing models.Chat
		if err := s.chats.FindOne(ctx, bson.M{"key": key}).Decode(&existing); err != nil {
			return nil, false, errs.Internal(err)
		}
		doc = &existing
	}
	views, err := s.views(ctx, userID, []*models.Chat{doc})
	if err != nil {
		return nil, false, err
	}
	return &views[0], created, nil
}

// ValidateMessage checks a message's content and type and returns the content to store (trimmed).
// contentType "" means text.
func (s *Service) ValidateMessage(content, contentType string) (string, string, error) {
	if contentType == "" {
		contentType = models.ContentText
	}
	switch contentType {
	case models.ContentText, models.ContentEmoji, models.ContentGIF:
	default:
		return "", "", errs.Validation("contentType must be text, emoji or gif",
			map[string]string{"contentType": "must be text, emoji or gif"})
	}
	if !utf8.ValidString(content) {
		return "", "", errs.Validation("content is not valid UTF-8", map[string]string{"content": "is not valid UTF-8"})
	}
	content = strings.TrimSpace(content)
	n := utf8.RuneCountInString(content)
	if n == 0 {
		return "", "", errs.Validation("content must not be empty", map[string]string{"content": "must not be empty"})
	}
	if n > s.cfg.MaxContentLen {
		return "", "", errs.Validation("content is too long",
			map[string]string{"content": "must be at most " + itoa(s.cfg.MaxContentLen) + " characters"})
	}
	if contentType == models.ContentGIF && !isHTTPURL(content) {
		return "", "", errs.Validation("a gif message must be an http(s) URL",
			map[string]string{"content": "must be an http(s) URL"})
	}
	return content, contentType, nil
}

func isHTTPURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// Send validates, checks access, stores the message, updates the chat, broadcasts chat:message to the
// room (sender included) and publishes chat.message.sent. The caller has checked that the sender's
// socket is in the room. Errors: VALIDATION_ERROR, CHAT_NOT_FOUND, ACCESS_DENIED, INTERNAL (store).
// A failed broadcast is logged, not returned: the message is stored and shows in the history.
// SendOnce is Send with a client key that makes a resend store nothing new.
func (s *Service) Send(ctx context.Context, sender UserRef, chatID, content, contentType string) (*MessageView, error) {
	v, _, err := s.SendOnce(ctx, sender, chatID, content, contentType, "")
	return v, err
}

// newMessage is a message to store now, with its id and time chosen here.
func (s *Service) newMessage(chatID string, sender bson.ObjectID, content, contentType string) *models.Message {
	return &models.Message{ID: bson.NewObjectID(), ChatID: chatID, SenderID: sender, Content: content,
		ContentType: contentType, CreatedAt: s.clock()}
}

// deliver does what follows a stored message: the chat's last message (and a lobby chat's
// participants), the chat:message broadcast and chat.message.sent. Failures are logged: the message is
// stored and shows in the history.
func (s *Service) deliver(ctx context.Context, sender UserRef, c *models.Chat, msg *models.Message) *MessageView {
	recipients, err := s.recipients(ctx, c, msg.SenderID)
	if err != nil {
		s.log.Error("chat recipients lookup failed", "chatId", c.ID, "err", err)
	}
	if err := s.recordLastMessage(ctx, c, msg, recipients); err != nil {
		s.log.Error("chat last message update failed", "chatId", c.ID, "messageId", msg.ID.Hex(), "err", err)
	}
	view := messageView(sender, msg)
	if err := s.emit.ToRoom(Room(c.ID)).Emit(EventMessage, MessagePayload{ChatID: c.ID, Message: view}); err != nil {
		s.log.Error("chat:message broadcast failed", "chatId", c.ID, "messageId", view.ID, "err", err)
	}
	s.publishSent(ctx, sender, view, recipients)
	return &view
}

func messageView(sender UserRef, m *models.Message) MessageView {
	return MessageView{ID: m.ID.Hex(), ChatID: m.ChatID, Sender: sender, Content: m.Content,
		ContentType: m.ContentType, CreatedAt: realtime.ISOTime(m.CreatedAt)}
}

// recipients are the users a message is for, the sender excluded: the other participant of a direct
// chat, the active members of a lobby.
func (s *Service) recipients(ctx context.Context, c *models.Chat, sender bson.ObjectID) ([]bson.ObjectID, error) {
	var all []bson.ObjectID
	if c.Type == models.ChatLobby && c.LobbyID != nil {
		ids, err := s.lobbies.ActiveMemberIDs(ctx, c.LobbyID.Hex())
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if oid, ok := models.ParseID(id); ok {
				all = append(all, oid)
			}
		}
	} else {
		all = c.Participants
	}
	out := make([]bson.ObjectID, 0, len(all))
	for _, id := range all {
		if id != sender {
			out = append(out, id)
		}
	}
	return out, nil
}

// recordLastMessage moves the chat's last message forward (never back: concurrent sends may finish out
// of order) and, for a lobby chat, adds the recipients to its participants.
func (s *Service) recordLastMessage(ctx context.Context, c *models.Chat, msg *models.Message, recipients []bson.ObjectID) error {
	if c.Type == models.ChatLobby {
		missing := []bson.ObjectID{}
		for _, id := range append(recipients, msg.SenderID) {
			if !containsID(c.Participants, id) {
				missing = append(missing, id)
			}
		}
		if err := s.addParticipants(ctx, c.ID, missing); err != nil {
			return err
		}
	}
	defer models.LockDoc(models.ChatsCollection, c.ID)()
	filter := bson.M{"_id": c.ID, "$or": bson.A{
		bson.M{"lastMessageAt": bson.M{"$exists": false}},
		bson.M{"lastMessageAt": bson.M{"$lt": msg.CreatedAt}},
		bson.M{"lastMessageAt": msg.CreatedAt, "lastMessageId": bson.M{"$lt": msg.ID}},
	}}
	_, err := s.chats.UpdateOne(ctx, filter, bson.M{"$set": bson.M{
		"lastMessageAt": msg.CreatedAt, "lastMessageId": msg.ID, "updatedAt": s.clock()}})
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}

func (s *Service) publishSent(ctx context.Context, sender UserRef, m MessageView, recipients []bson.ObjectID) {
	if s.pub == nil {
		return
	}
	name := sender.DisplayName
	if name == "" {
		name = sender.Username
	}
	d := MessageSentData{ChatID: m.ChatID, MessageID: m.ID, SenderID: sender.ID, SenderName: name,
		Preview: preview(m.Content, m.ContentType), ContentType: m.ContentType, CreatedAt: m.CreatedAt}
	for _, r := range recipients {
		d.Recipients = append(d.Recipients, r.Hex())
	}
	e, err := events.New(events.ChatMessageSent, d)
	if err == nil {
		err = s.pub.Publish(ctx, e)
	}
	if err != nil {
		s.log.Error("publish chat.message.sent failed", "chatId", m.ChatID, "messageId", m.ID, "err", err)
	}
}

func preview(content, contentType string) string {
	switch contentType {
	case models.ContentGIF:
		return "sent a GIF"
	}
	if utf8.RuneCountInString(content) <= previewLen {
		return content
	}
	r := []rune(content)
	return string(r[:previewLen]) + "…"
}

// MarkRead marks the chat read for userID up to lastMessageID (a message of this chat), or up to the
// chat's newest message when lastMessageID is empty. Read state never moves back. It clears the user's
// pending unread notification flag. Errors: CHAT_NOT_FOUND, ACCESS_DENIED, VALIDATION_ERROR.
func (s *Service) MarkRead(ctx context.Context, userID, chatID, lastMessageID string) (models.ReadState, error) {
	if _, err := s.Access(ctx, chatID, userID); err != nil {
		return models.ReadState{}, err
	}
	var target models.ReadState
	if lastMessageID != "" {
		mid, ok := models.ParseID(lastMessageID)
		if !ok {
			return models.ReadState{}, errs.Validation("lastMessageId is not a valid id",
				map[string]string{"lastMessageId": "is not a valid id"})
		}
		var m models.Message
		if err := s.messages.FindOne(ctx, bson.M{"_id": mid, "chatId": chatID}).Decode(&m); err != nil {
			if models.IsNoDocuments(err) {
				return models.ReadState{}, errs.Validation("lastMessageId is not a message of this chat",
					map[string]string{"lastMessageId": "is not a message of this chat"})
			}
			return models.ReadState{}, errs.Internal(err)
		}
		target = models.ReadState{At: m.CreatedAt.UTC(), MessageID: m.ID}
	} else {
		// Newest message as stored now (the chat's lastMessage fields may lag a concurrent send).
		var m models.Message
		err := s.messages.FindOne(ctx, bson.M{"chatId": chatID},
			options.FindOne().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}})).Decode(&m)
		switch {
		case err == nil:
			target = models.ReadState{At: m.CreatedAt.UTC(), MessageID: m.ID}
		case models.IsNoDocuments(err):
			target = models.ReadState{At: s.clock()}
		default:
			return models.ReadState{}, errs.Internal(err)
		}
	}
	defer models.LockDoc(models.ChatsCollection, chatID)()
	cur, err := s.load(ctx, chatID)
	if err != nil {
		return models.ReadState{}, err
	}
	if prev, ok := cur.LastRead[userID]; ok && !after(target, prev) {
		target = prev
	}
	_, err = s.chats.UpdateOne(ctx, bson.M{"_id": chatID}, bson.M{
		"$set":   bson.M{"lastRead." + userID: target},
		"$unset": bson.M{"notified." + userID: ""},
	})
	if err != nil {
		return models.ReadState{}, errs.Internal(err)
	}
	return target, nil
}

// after reports whether a is later than b in (createdAt, _id) order.
func after(a, b models.ReadState) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	return a.MessageID.Hex() > b.MessageID.Hex()
}

// unreadFilter selects the messages of chatID not sent by uid after read state rs.
func unreadFilter(chatID string, uid bson.ObjectID, rs *models.ReadState) bson.M {
	f := bson.M{"chatId": chatID, "senderId": bson.M{"$ne": uid}}
	if rs != nil {
		f["$or"] = bson.A{
			bson.M{"createdAt": bson.M{"$gt": rs.At}},
			bson.M{"createdAt": rs.At, "_id": bson.M{"$gt": rs.MessageID}},
		}
	}
	return f
}

// UnreadCount counts the messages of a chat userID has not read (their own messages never count).
func (s *Service) UnreadCount(ctx context.Context, c *models.Chat, userID string) (int64, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return 0, errs.Validation("invalid user id", nil)
	}
	var rs *models.ReadState
	if r, ok := c.LastRead[userID]; ok {
		rs = &r
	}
	n, err := s.messages.CountDocuments(ctx, unreadFilter(c.ID, uid, rs))
	if err != nil {
		return 0, errs.Internal(err)
	}
	return n, nil
}

// List returns userID's chats, most recent activity first, with unread counts. Lobby chats of lobbies
// the user is no longer an active member of are left out.
func (s *Service) List(ctx context.Context, userID string) ([]ChatView, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Validation("invalid user id", nil)
	}
	cur, err := s.chats.Find(ctx, bson.M{"participants": uid})
	if err != nil {
		return nil, errs.Internal(err)
	}
	var all []*models.Chat
	if err := cur.All(ctx, &all); err != nil {
		return nil, errs.Internal(err)
	}
	keep := all[:0]
	for _, c := range all {
		if c.Type == models.ChatLobby && c.LobbyID != nil {
			member, err := s.lobbies.IsActiveMember(ctx, c.LobbyID.Hex(), userID)
			if err != nil && !errs.Is(err, errs.CodeNotFound) && !errs.Is(err, errs.CodeLobbyNotFound) {
				return nil, err
			}
			if !member {
				continue
			}
		}
		keep = append(keep, c)
	}
	sort.SliceStable(keep, func(i, j int) bool { return activity(keep[i]).After(activity(keep[j])) })
	return s.views(ctx, userID, keep)
}

func activity(c *models.Chat) time.Time {
	if c.LastMessageAt != nil {
		return *c.LastMessageAt
	}
	return c.CreatedAt
}

// views builds the list views of chats as userID sees them.
func (s *Service) views(ctx context.Context, userID string, list []*models.Chat) ([]ChatView, error) {
	var ids []bson.ObjectID
	seen := map[bson.ObjectID]bool{}
	for _, c := range list {
		for _, p := range c.Participants {
			if !seen[p] {
				seen[p] = true
				ids = append(ids, p)
			}
		}
	}
	users, err := s.users.ByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]ChatView, 0, len(list))
	for _, c := range list {
		n, err := s.UnreadCount(ctx, c, userID)
		if err != nil {
			return nil, err
		}
		v := ChatView{ID: c.ID, Type: c.Type, Participants: []UserRef{}, UnreadCount: n,
			CreatedAt: realtime.ISOTime(c.CreatedAt)}
		if c.LobbyID != nil {
			l := c.LobbyID.Hex()
			v.LobbyID = &l
		}
		for _, p := range c.Participants {
			ref := UserRef{ID: p.Hex()}
			if u := users[p]; u != nil {
				ref.Username, ref.DisplayName = u.Username, u.Name()
			}
			v.Participants = append(v.Participants, ref)
		}
		if c.LastMessageAt != nil {
			t := realtime.ISOTime(*c.LastMessageAt)
			v.LastMessageAt = &t
		}
		if c.LastMessageID != nil {
			id := c.LastMessageID.Hex()
			v.LastMessageID = &id
		}
		if rs, ok := c.LastRead[userID]; ok {
			t := realtime.ISOTime(rs.At)
			v.LastReadAt = &t
			if !rs.MessageID.IsZero() {
				id := rs.MessageID.Hex()
				v.LastReadMessageID = &id
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// History returns up to limit messages of the chat, newest first, older than the message before (empty:
// from the newest). next is the cursor for the following page (nil on the last page). Errors:
// CHAT_NOT_FOUND, ACCESS_DENIED, VALIDATION_ERROR (limit, cursor).
func (s *Service) History(ctx context.Context, userID, chatID, before string, limit int) ([]MessageView, *string, error) {
	if limit == 0 {
		limit = DefaultHistoryLimit
	}
	if limit < 1 || limit > MaxHistoryLimit {
		return nil, nil, errs.Validation("invalid limit", map[string]string{"limit": "must be between 1 and " + itoa(MaxHistoryLimit)})
	}
	if _, err := s.Access(ctx, chatID, userID); err != nil {
		return nil, nil, err
	}
	filter := bson.M{"chatId": chatID}
	if before != "" {
		bid, ok := models.ParseID(before)
		if !ok {
			return nil, nil, errs.Validation("invalid cursor", map[string]string{"before": "is not a message id"})
		}
		var b models.Message
		if err := s.messages.FindOne(ctx, bson.M{"_id": bid, "chatId": chatID}).Decode(&b); err != nil {
			if models.IsNoDocuments(err) {
				return nil, nil, errs.Validation("invalid cursor", map[string]string{"before": "is not a message of this chat"})
			}
			return nil, nil, errs.Internal(err)
		}
		filter["$or"] = bson.A{
			bson.M{"createdAt": bson.M{"$lt": b.CreatedAt}},
			bson.M{"createdAt": b.CreatedAt, "_id": bson.M{"$lt": b.ID}},
		}
	}
	cur, err := s.messages.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, nil, errs.Internal(err)
	}
	var msgs []models.Message
	if err := cur.All(ctx, &msgs); err != nil {
		return nil, nil, errs.Internal(err)
	}
	var next *string
	if len(msgs) > limit {
		msgs = msgs[:limit]
		id := msgs[limit-1].ID.Hex()
		next = &id
	}
	var ids []bson.ObjectID
	for _, m := range msgs {
		ids = append(ids, m.SenderID)
	}
	users, err := s.users.ByIDs(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]MessageView, 0, len(msgs))
	for _, m := range msgs {
		ref := UserRef{ID: m.SenderID.Hex()}
		if u := users[m.SenderID]; u != nil {
			ref.Username, ref.DisplayName = u.Username, u.Name()
		}
		out = append(out, MessageView{ID: m.ID.Hex(), ChatID: m.ChatID, Sender: ref, Content: m.Content,
			ContentType: m.ContentType, CreatedAt: realtime.ISOTime(m.CreatedAt)})
	}
	return out, next, nil
}

// Subscribe makes the service create unread-message notifications from chat.message.sent. The effect
// (a stored notification) is global, so the handler runs once per cluster. The returned func
// unsubscribes.
func (s *Service) Subscribe(bus events.Bus) (unsubscribe func()) {
	return bus.Subscribe(events.ChatMessageSent, events.Handler{
		Name: "chat.unread-notification", Scope: events.ClusterOnce, Handle: s.onMessageSent})
}

func (s *Service) onMessageSent(ctx context.Context, e events.Event) error {
	var d MessageSentData
	if err := e.Decode(&d); err != nil {
		return err
	}
	return s.NotifyUnread(ctx, d)
}

// NotifyUnread gives each recipient of a sent message who has no socket in the chat room a notification,
// unless they already hold one for this chat that they have not read yet (the flag is claimed with a
// conditional update, so concurrent messages create one notification, not several).
func (s *Service) NotifyUnread(ctx context.Context, d MessageSentData) error {
	if s.notifier == nil || len(d.Recipients) == 0 {
		return nil
	}
	inRoom := map[string]bool{}
	if s.rooms != nil {
		var err error
		if inRoom, err = s.rooms.UsersInRoom(ctx, Room(d.ChatID)); err != nil {
			return err
		}
	}
	var errList []error
	for _, uid := range d.Recipients {
		if inRoom[uid] {
			continue
		}
		claimed, err := s.claimNotified(ctx, d.ChatID, uid, true)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if !claimed {
			continue
		}
		_, err = s.notifier.Create(ctx, notifications.Draft{
			UserID: uid, Type: NotificationType, Title: "New message from " + d.SenderName, Message: d.Preview,
			Data: map[string]any{"chatId": d.ChatID, "messageId": d.MessageID, "senderId": d.SenderID},
		})
		if err != nil {
			// Give the flag back so that the next message tries again.
			if _, rerr := s.claimNotified(ctx, d.ChatID, uid, false); rerr != nil {
				s.log.Error("releasing chat notification flag failed", "chatId", d.ChatID, "userId", uid, "err", rerr)
			}
			errList = append(errList, err)
		}
	}
	return errors.Join(errList...)
}

// claimNotified sets (set=true: only when not set yet) or clears the user's notified flag on the chat
// and reports whether it changed.
func (s *Service) claimNotified(ctx context.Context, chatID, userID string, set bool) (bool, error) {
	if _, ok := models.ParseID(userID); !ok {
		return false, errs.Validation("invalid user id", nil)
	}
	defer models.LockDoc(models.ChatsCollection, chatID)()
	field := "notified." + userID
	var res *mongo.UpdateResult
	var err error
	if set {
		res, err = s.chats.UpdateOne(ctx, bson.M{"_id": chatID, field: bson.M{"$ne": true}},
			bson.M{"$set": bson.M{field: true}})
	} else {
		res, err = s.chats.UpdateOne(ctx, bson.M{"_id": chatID}, bson.M{"$unset": bson.M{field: ""}})
	}
	if err != nil {
		return false, errs.Internal(err)
	}
	return res.ModifiedCount == 1, nil
}
