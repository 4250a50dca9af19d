package models

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// NotificationsCollection holds one document per notification.
const NotificationsCollection = "notifications"

// Notification read states.
const (
	NotificationUnread = "unread"
	NotificationRead   = "read"
)

// Delivery channels and their states.
const (
	ChannelInApp = "inApp"
	ChannelPush  = "push"
	ChannelEmail = "email"

	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed"
)

// Delivery is the state of one channel of a notification.
type Delivery struct {
	Status string     `bson:"status" json:"status"`
	SentAt *time.Time `bson:"sentAt,omitempty" json:"sentAt,omitempty"`
	Error  string     `bson:"error,omitempty" json:"error,omitempty"`
}

// Notification is a message to one user. Delivery is keyed by channel (not a
// list) so that one channel's state is updated with a plain $set on
// "delivery.<channel>", which FerretDB v1 supports (no positional $).
type Notification struct {
	ID        bson.ObjectID       `bson:"_id"`
	UserID    bson.ObjectID       `bson:"userId"`
	Type      string              `bson:"type"`
	Title     string              `bson:"title"`
	Message   string              `bson:"message"`
	Data      map[string]any      `bson:"data,omitempty"`
	Channels  []string            `bson:"channels"`
	Delivery  map[string]Delivery `bson:"delivery"`
	Status    string              `bson:"status"`
	ReadAt    *time.Time          `bson:"readAt,omitempty"`
	CreatedAt time.Time           `bson:"createdAt"`
	UpdatedAt time.Time           `bson:"updatedAt"`
}

func init() {
	RegisterIndexes(NotificationsCollection,
		// The list, newest first, with the keyset cursor.
		mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName("user_created")},
		// Unread counts and "mark all read".
		mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "status", Value: 1}},
			Options: options.Index().SetName("user_status")},
	)
}

// Notifications is the notifications collection.
type Notifications struct{ c *mongo.Collection }

// NewNotifications binds the notifications collection of s. Embedded
// documents in Data decode as maps (not bson.D) so they marshal to JSON
// objects.
func NewNotifications(s *Store) *Notifications {
	return &Notifications{c: s.DB().Collection(NotificationsCollection,
		options.Collection().SetBSONOptions(&options.BSONOptions{DefaultDocumentM: true}))}
}

// Insert stores n, filling ID (unless set), timestamps (millisecond precision,
// as the database keeps them), status unread and a pending delivery per
// channel. An ID that is taken already is CONFLICT.
func (r *Notifications) Insert(ctx context.Context, n *Notification) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if n.ID.IsZero() {
		n.ID = bson.NewObjectID()
	}
	n.CreatedAt, n.UpdatedAt = now, now
	n.Status = NotificationUnread
	n.Delivery = make(map[string]Delivery, len(n.Channels))
	for _, ch := range n.Channels {
		n.Delivery[ch] = Delivery{Status: DeliveryPending}
	}
	if _, err := r.c.InsertOne(ctx, n); err != nil {
		if IsDuplicateKey(err) { // a caller-chosen ID that is stored already (an idempotent retry)
			return errs.Wrap(errs.CodeConflict, "notification exists", err)
		}
		return errs.Internal(fmt.Errorf("insert notification: %w", err))
	}
	return nil
}

// SetDelivery records the state of one channel of a notification of userID.
// Notification writes of one user hold the user's LockDoc: FerretDB v1 applies updates as
// read-modify-write, so a delivery update racing MarkRead would otherwise lose one of them.
func (r *Notifications) SetDelivery(ctx context.Context, userID, id bson.ObjectID, channel string, d Delivery) error {
	defer LockDoc(NotificationsCollection, userID)()
	if d.SentAt != nil {
		t := d.SentAt.UTC().Truncate(time.Millisecond)
		d.SentAt = &t
	}
	res, err := r.c.UpdateOne(ctx, bson.M{"_id": id, "userId": userID},
		bson.M{"$set": bson.M{"delivery." + channel: d, "updatedAt": time.Now().UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return errs.Internal(fmt.Errorf("set delivery %s of %s: %w", channel, id.Hex(), err))
	}
	if res.MatchedCount == 0 {
		return errs.NotFound("notification not found")
	}
	return nil
}

// ByID loads a notification of user; another user's notification is NOT_FOUND.
func (r *Notifications) ByID(ctx context.Context, userID, id bson.ObjectID) (*Notification, error) {
	var n Notification
	if err := r.c.FindOne(ctx, bson.M{"_id": id, "userId": userID}).Decode(&n); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("notification not found")
		}
		return nil, errs.Internal(err)
	}
	return &n, nil
}

// MarkRead marks one notification of user read (idempotent) and returns it.
func (r *Notifications) MarkRead(ctx context.Context, userID, id bson.ObjectID) (*Notification, error) {
	unlock := LockDoc(NotificationsCollection, userID)
	now := time.Now().UTC().Truncate(time.Millisecond)
	// Only unread ones change, so readAt keeps the first read.
	_, err := r.c.UpdateOne(ctx, bson.M{"_id": id, "userId": userID, "status": NotificationUnread},
		bson.M{"$set": bson.M{"status": NotificationRead, "readAt": now, "updatedAt": now}})
	unlock()
	if err != nil {
		return nil, errs.Internal(err)
	}
	return r.ByID(ctx, userID, id)
}

// MarkAllRead marks every unread notification of user read; it returns how many changed.
func (r *Notifications) MarkAllRead(ctx context.Context, userID bson.ObjectID) (int64, error) {
	defer LockDoc(NotificationsCollection, userID)()
	now := time.Now().UTC().Truncate(time.Millisecond)
	res, err := r.c.UpdateMany(ctx, bson.M{"userId": userID, "status": NotificationUnread},
		bson.M{"$set": bson.M{"status": NotificationRead, "readAt": now, "updatedAt": now}})
	if err != nil {
		return 0, errs.Internal(err)
	}
	return res.ModifiedCount, nil
}

// Count returns how many notifications user has, and how many are unread.
func (r *Notifications) Count(ctx context.Context, userID bson.ObjectID) (total, unread int64, err error) {
	total, err = r.c.CountDocuments(ctx, bson.M{"userId": userID})
	if err != nil {
		return 0, 0, errs.Internal(err)
	}
	unread, err = r.c.CountDocuments(ctx, bson.M{"userId": userID, "status": NotificationUnread})
	if err != nil {
		return 0, 0, errs.Internal(err)
	}
	return total, unread, nil
}

// NotificationCursor is the position after the last item of a page: the
// list is ordered by (createdAt, _id) descending.
type NotificationCursor struct {
	CreatedAt time.Time
	ID        bson.ObjectID
}

// String encodes the cursor opaquely for clients.
func (c NotificationCursor) String() string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMilli(), 10) + "." + c.ID.Hex()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseNotificationCursor decodes String's output; anything else is VALIDATION_ERROR.
func ParseNotificationCursor(s string) (NotificationCursor, error) {
	bad := errs.Validation("invalid cursor", map[string]string{"cursor": "is not a cursor this API returned"})
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return NotificationCursor{}, bad
	}
	ms, hex, ok := strings.Cut(string(raw), ".")
	if !ok {
		return NotificationCursor{}, bad
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n < 0 {
		return NotificationCursor{}, bad
	}
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		return NotificationCursor{}, bad
	}
	return NotificationCursor{CreatedAt: time.UnixMilli(n).UTC(), ID: id}, nil
}

// NotificationQuery selects a page of a user's notifications.
type NotificationQuery struct {
	UserID bson.ObjectID
	// Status filters by read state ("" = all).
	Status string
	// Limit is the page size (> 0).
	Limit int
	// After continues after this cursor (nil = first page).
	After *NotificationCursor
}

// List returns one page, newest first, and the cursor of the next page (nil
// when this is the last one).
func (r *Notifications) List(ctx context.Context, q NotificationQuery) ([]Notification, *NotificationCursor, error) {
	if q.Limit <= 0 {
		return nil, nil, errs.Validation("limit must be positive", map[string]string{"limit": "must be positive"})
	}
	filter := bson.M{"userId": q.UserID}
	if q.Status != "" {
		filter["status"] = q.Status
	}
	if q.After != nil {
		filter["$or"] = bson.A{
			bson.M{"createdAt": bson.M{"$lt": q.After.CreatedAt}},
			bson.M{"createdAt": q.After.CreatedAt, "_id": bson.M{"$lt": q.After.ID}},
		}
	}
	// One more than asked tells whether there is a next page.
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit) + 1)
	cur, err := r.c.Find(ctx, filter, opts)
	if err != nil {
		return nil, nil, errs.Internal(err)
	}
	var list []Notification
	if err := cur.All(ctx, &list); err != nil {
		return nil, nil, errs.Internal(err)
	}
	if len(list) <= q.Limit {
		return list, nil, nil
	}
	list = list[:q.Limit]
	last := list[len(list)-1]
	return list, &NotificationCursor{CreatedAt: last.CreatedAt, ID: last.ID}, nil
}
