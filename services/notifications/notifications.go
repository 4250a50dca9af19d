// Package notifications stores notifications for users and delivers them:
// in the app over Socket.IO (notification:new and notification:count to the
// user's room), by push (a webhook) and by email (SMTP), each channel with its
// own delivery status on the stored notification.
package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/realtime"
)

// Socket.IO events sent to the user's room (EVENTS.md, Notifications).
const (
	EventNew   = "notification:new"
	EventCount = "notification:count"
)

// Limits of a notification's fields.
const (
	MaxTypeLen    = 64
	MaxTitleLen   = 200
	MaxMessageLen = 2000
	MaxDataBytes  = 16 << 10 // JSON-encoded
	DefaultLimit  = 50
	MaxLimit      = 100
)

// UserLookup finds the recipient of an email (*models.Users satisfies it).
type UserLookup interface {
	ByID(ctx context.Context, id bson.ObjectID) (*models.User, error)
}

// Options wire a Service. Store, Users and Emitter are required; a nil Email
// or Push leaves that channel unconfigured: notifications asking for it get
// the channel marked failed with ErrNotConfigured, never sent.
type Options struct {
	Store   *models.Notifications
	Users   UserLookup
	Emitter realtime.Emitter
	Email   EmailSender
	Push    PushSender
	// Channels gives the channels of a notification type when its Draft names none; a type missing
	// here (or a nil map) is delivered in-app only. DefaultChannels is the platform's choice.
	Channels map[string][]string
	// Rooms, when set, tells whether the recipient has a socket in its user room on any node
	// (handlers/socket.RoomUsers asks the namespace, cluster-wide through the adapter). When nobody is
	// there, Create and MarkRead skip notification:count and its query (two CountDocuments, scans on
	// the embedded store). notification:new is still sent: it costs no query, and a session kept for
	// connection state recovery receives it when it comes back (handlers/socket.NotificationCount
	// then sends such a socket a fresh count). nil: always count. A failed query counts as
	// "someone is there".
	Rooms  realtime.RoomUsers
	Logger *slog.Logger
	// Now is the clock used for sentAt; default time.Now.
	Now func() time.Time
}

// Service is the notification service.
type Service struct {
	store    *models.Notifications
	users    UserLookup
	emit     realtime.Emitter
	email    EmailSender
	push     PushSender
	channels map[string][]string
	rooms    realtime.RoomUsers
	log      *slog.Logger
	now      func() time.Time
	// storeCount is store.Count (tests count the calls).
	storeCount func(ctx context.Context, userID bson.ObjectID) (total, unread int64, err error)
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Store == nil || opts.Users == nil || opts.Emitter == nil {
		panic("notifications: New needs Store, Users and Emitter")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		store: opts.Store, users: opts.Users, emit: opts.Emitter,
		email: opts.Email, push: opts.Push, channels: opts.Channels, rooms: opts.Rooms,
		log: log.With("component", "notifications"), now: now, storeCount: opts.Store.Count,
	}
}

// Draft is a notification to create.
type Draft struct {
	UserID  string
	Type    string // e.g. "friend_request"
	Title   string
	Message string
	Data    map[string]any
	// Channels to deliver on; default: Options.Channels of the type, else inApp only.
	Channels []string
	// ID, when set, makes Create idempotent: a notification with this id that is stored already is
	// not stored again (event handlers derive it from the event, so a retry after a lost answer
	// cannot notify twice).
	ID bson.ObjectID
}

// View is a notification as clients see it (REST).
type View struct {
	ID        string                  `json:"id"`
	Type      string                  `json:"type"`
	Title     string                  `json:"title"`
	Message   string                  `json:"message"`
	Data      map[string]any          `json:"data"`
	Status    string                  `json:"status"`
	Read      bool                    `json:"read"`
	ReadAt    *string                 `json:"readAt"`
	CreatedAt string                  `json:"createdAt"`
	Channels  []string                `json:"channels"`
	Delivery  map[string]DeliveryView `json:"delivery"`
}

// DeliveryView is one channel's state.
type DeliveryView struct {
	Status string `json:"status"`
	SentAt string `json:"sentAt,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Count is the payload of notification:count.
type Count struct {
	Total  int64 `json:"total"`
	Unread int64 `json:"unread"`
	// UnreadCount repeats Unread under the name the planning notes use.
	UnreadCount int64 `json:"unreadCount"`
}

// NewPayload is the payload of notification:new.
type NewPayload struct {
	Notification NewItem `json:"notification"`
}

// NewItem is the notification inside NewPayload.
type NewItem struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Message   string         `json:"message"`
	Data      map[string]any `json:"data"`
	CreatedAt string         `json:"createdAt"`
}

func viewOf(n *models.Notification) View {
	v := View{
		ID: n.ID.Hex(), Type: n.Type, Title: n.Title, Message: n.Message, Data: n.Data,
		Status: n.Status, Read: n.Status == models.NotificationRead,
		CreatedAt: realtime.ISOTime(n.CreatedAt), Channels: n.Channels,
		Delivery: make(map[string]DeliveryView, len(n.Delivery)),
	}
	if v.Data == nil {
		v.Data = map[string]any{}
	}
	if v.Channels == nil {
		v.Channels = []string{}
	}
	if n.ReadAt != nil {
		s := realtime.ISOTime(*n.ReadAt)
		v.ReadAt = &s
	}
	for ch, d := range n.Delivery {
		dv := DeliveryView{Status: d.Status, Error: d.Error}
		if d.SentAt != nil {
			dv.SentAt = realtime.ISOTime(*d.SentAt)
		}
		v.Delivery[ch] = dv
	}
	return v
}

func validChannel(c string) bool {
	return c == models.ChannelInApp || c == models.ChannelPush || c == models.ChannelEmail
}

// check validates a draft and returns the recipient id and channel list.
func (d *Draft) check() (bson.ObjectID, []string, error) {
	fields := map[string]string{}
	uid, ok := models.ParseID(d.UserID)
	if !ok {
		fields["userId"] = "must be a user id"
	}
	if n := utf8.RuneCountInString(d.Type); n == 0 || n > MaxTypeLen {
		fields["type"] = fmt.Sprintf("must be 1 to %d characters", MaxTypeLen)
	}
	if n := utf8.RuneCountInString(d.Title); n == 0 || n > MaxTitleLen {
		fields["title"] = fmt.Sprintf("must be 1 to %d characters", MaxTitleLen)
	}
	if utf8.RuneCountInString(d.Message) > MaxMessageLen {
		fields["message"] = fmt.Sprintf("must be at most %d characters", MaxMessageLen)
	}
	if d.Data != nil {
		raw, err := json.Marshal(d.Data)
		if err != nil {
			fields["data"] = "must be JSON"
		} else if len(raw) > MaxDataBytes {
			fields["data"] = fmt.Sprintf("must be at most %d bytes as JSON", MaxDataBytes)
		}
	}
	channels := d.Channels
	if len(channels) == 0 {
		channels = []string{models.ChannelInApp}
	}
	seen := map[string]bool{}
	for _, c := range channels {
		if !validChannel(c) {
			fields["channels"] = "each must be one of inApp, push, email"
		} else if seen[c] {
			fields["channels"] = "must not repeat a channel"
		}
		seen[c] = true
	}
	if len(fields) > 0 {
		return bson.ObjectID{}, nil, errs.Validation("invalid notification", fields)
	}
	return uid, channels, nil
}

// Create stores the notification first, then delivers it: notification:new
// (inApp) and notification:count (when a socket of the user is there to hear
// it, see Options.Rooms) to the user's room, push and email. Each
// channel's outcome is recorded on the stored notification; a delivery
// failure is logged and recorded, not returned. Outside channels are sent
// before Create returns (bounded by their senders' timeouts), so call it
// from a background context (an event handler), not a request path that
// must answer at once.
func (s *Service) Create(ctx context.Context, d Draft) (*View, error) {
	if len(d.Channels) == 0 {
		d.Channels = s.channels[d.Type]
	}
	uid, channels, err := d.check()
	if err != nil {
		return nil, err
	}
	n := &models.Notification{
		ID: d.ID, UserID: uid, Type: d.Type, Title: d.Title, Message: d.Message, Data: d.Data, Channels: channels,
	}
	if err := s.store.Insert(ctx, n); err != nil {
		if d.ID.IsZero() || !errs.Is(err, errs.CodeConflict) {
			return nil, err
		}
		// Stored by an earlier attempt (whose answer was lost, or that runs right now): never store
		// or send it twice. The user finds it in the list; a fresh count tells the sockets.
		if n, err = s.store.ByID(ctx, uid, d.ID); err != nil {
			return nil, err
		}
		if s.listening(ctx, uid) {
			if _, err := s.sendCount(ctx, uid); err != nil {
				s.log.Error("sending notification count failed", "userId", d.UserID, "err", err)
			}
		}
		v := viewOf(n)
		return &v, nil
	}
	log := s.log.With("notificationId", n.ID.Hex(), "userId", d.UserID, "type", d.Type)

	// In-app first, with the count right after it, so the socket hears at
	// once; the outside channels may take seconds. Without a socket of the
	// user anywhere the count (and its query) is skipped.
	if n.Delivery[models.ChannelInApp].Status == models.DeliveryPending {
		s.record(ctx, log, n, models.ChannelInApp, s.emitNew(n))
	}
	if s.listening(ctx, uid) {
		if _, err := s.sendCount(ctx, uid); err != nil {
			log.Error("sending notification count failed", "err", err)
		}
	}
	for _, ch := range channels {
		switch ch {
		case models.ChannelPush:
			s.record(ctx, log, n, ch, s.sendPush(ctx, n))
		case models.ChannelEmail:
			s.record(ctx, log, n, ch, s.sendEmail(ctx, n))
		}
	}
	v := viewOf(n)
	return &v, nil
}

// record stores the outcome of one channel's delivery on n and in the store.
func (s *Service) record(ctx context.Context, log *slog.Logger, n *models.Notification, ch string, derr error) {
	st := models.Delivery{Status: models.DeliverySent}
	if derr != nil {
		st = models.Delivery{Status: models.DeliveryFailed, Error: derr.Error()}
		log.Warn("notification delivery failed", "channel", ch, "err", derr)
	} else {
		at := s.now().UTC().Truncate(time.Millisecond)
		st.SentAt = &at
	}
	if err := s.store.SetDelivery(ctx, n.UserID, n.ID, ch, st); err != nil {
		log.Error("recording delivery status failed", "channel", ch, "err", err)
	}
	n.Delivery[ch] = st
}

func (s *Service) emitNew(n *models.Notification) error {
	data := n.Data
	if data == nil {
		data = map[string]any{}
	}
	p := NewPayload{Notification: NewItem{
		ID: n.ID.Hex(), Type: n.Type, Title: n.Title, Message: n.Message, Data: data,
		CreatedAt: realtime.ISOTime(n.CreatedAt),
	}}
	if err := s.emit.ToRoom(realtime.UserRoom(n.UserID.Hex())).Emit(EventNew, p); err != nil {
		return fmt.Errorf("emit %s: %w", EventNew, err)
	}
	return nil
}

func messageOf(n *models.Notification) Message {
	return Message{
		NotificationID: n.ID.Hex(), UserID: n.UserID.Hex(), Type: n.Type, Title: n.Title,
		Message: n.Message, Data: n.Data, CreatedAt: realtime.ISOTime(n.CreatedAt),
	}
}

func (s *Service) sendPush(ctx context.Context, n *models.Notification) error {
	if s.push == nil {
		return fmt.Errorf("push channel %w: set PUSH_WEBHOOK_URL", ErrNotConfigured)
	}
	return s.push.SendPush(ctx, messageOf(n))
}

func (s *Service) sendEmail(ctx context.Context, n *models.Notification) error {
	if s.email == nil {
		return fmt.Errorf("email channel %w: set SMTP_URL", ErrNotConfigured)
	}
	u, err := s.users.ByID(ctx, n.UserID)
	if err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	if u.Email == "" {
		return errors.New("recipient has no email address")
	}
	return s.email.SendEmail(ctx, u.Email, messageOf(n))
}

// sendCount reads the user's counts and emits notification:count.
func (s *Service) sendCount(ctx context.Context, uid bson.ObjectID) (Count, error) {
	c, err := s.count(ctx, uid)
	if err != nil {
		return c, err
	}
	if err := s.emit.ToRoom(realtime.UserRoom(uid.Hex())).Emit(EventCount, c); err != nil {
		return c, fmt.Errorf("emit %s: %w", EventCount, err)
	}
	return c, nil
}

// listening reports whether the user has a socket in its user room on any node (always true without
// Options.Rooms, or when the question cannot be answered: then the events go out as before).
func (s *Service) listening(ctx context.Context, uid bson.ObjectID) bool {
	if s.rooms == nil {
		return true
	}
	id := uid.Hex()
	in, err := s.rooms.UsersInRoom(ctx, realtime.UserRoom(id))
	if err != nil {
		s.log.Warn("could not tell whether the user has a socket; sending the notification events anyway",
			"userId", id, "err", err)
		return true
	}
	return in[id]
}

func (s *Service) count(ctx context.Context, uid bson.ObjectID) (Count, error) {
	total, unread, err := s.storeCount(ctx, uid)
	if err != nil {
		return Count{}, err
	}
	return Count{Total: total, Unread: unread, UnreadCount: unread}, nil
}

// Counts returns the user's totals without emitting.
func (s *Service) Counts(ctx context.Context, userID string) (Count, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return Count{}, errs.NotFound("user not found")
	}
	return s.count(ctx, uid)
}

// notFound is the answer for an id that is malformed, missing or someone
// else's: the three are indistinguishable to the caller.
func notFound() error { return errs.NotFound("notification not found") }

// MarkRead marks one of the user's notifications read and sends the user a
// fresh notification:count (when a socket of the user is there to hear it,
// see Options.Rooms). Another user's notification is NOT_FOUND.
func (s *Service) MarkRead(ctx context.Context, userID, id string) (*View, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, notFound()
	}
	nid, ok := models.ParseID(id)
	if !ok {
		return nil, notFound()
	}
	n, err := s.store.MarkRead(ctx, uid, nid)
	if err != nil {
		return nil, err
	}
	if s.listening(ctx, uid) {
		if _, err := s.sendCount(ctx, uid); err != nil {
			s.log.Error("sending notification count failed", "userId", userID, "err", err)
		}
	}
	v := viewOf(n)
	return &v, nil
}

// MarkAllRead marks all of the user's notifications read, sends a fresh
// notification:count and returns it.
func (s *Service) MarkAllRead(ctx context.Context, userID string) (Count, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return Count{}, errs.NotFound("user not found")
	}
	if _, err := s.store.MarkAllRead(ctx, uid); err != nil {
		return Count{}, err
	}
	c, err := s.count(ctx, uid)
	if err != nil {
		return Count{}, err
	}
	if err := s.emit.ToRoom(realtime.UserRoom(uid.Hex())).Emit(EventCount, c); err != nil {
		// The caller still gets the counts; only the socket missed them.
		s.log.Error("sending notification count failed", "userId", userID, "err", err)
	}
	return c, nil
}

// ListOptions select a page of the list.
type ListOptions struct {
	// Status is "", "unread" or "read".
	Status string
	// Limit is the page size: 0 means DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor is the nextCursor of the previous page ("" = first page).
	Cursor string
}

// List returns the user's notifications, newest first, and the cursor of the
// next page ("" when there is none).
func (s *Service) List(ctx context.Context, userID string, o ListOptions) ([]View, string, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, "", errs.NotFound("user not found")
	}
	if o.Status != "" && o.Status != models.NotificationUnread && o.Status != models.NotificationRead {
		return nil, "", errs.Validation("invalid status filter", map[string]string{"status": "must be unread or read"})
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.Limit < 1 || o.Limit > MaxLimit {
		return nil, "", errs.Validation("invalid limit", map[string]string{"limit": fmt.Sprintf("must be 1 to %d", MaxLimit)})
	}
	q := models.NotificationQuery{UserID: uid, Status: o.Status, Limit: o.Limit}
	if o.Cursor != "" {
		c, err := models.ParseNotificationCursor(o.Cursor)
		if err != nil {
			return nil, "", err
		}
		q.After = &c
	}
	list, next, err := s.store.List(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]View, len(list))
	for i := range list {
		out[i] = viewOf(&list[i])
	}
	if next == nil {
		return out, "", nil
	}
	return out, next.String(), nil
}
