// Package friends manages friend requests and friendships. A request publishes the internal event
// friendship.requested (the notifications service turns it into a notification for the addressee);
// accept and reject publish friendship.accepted / friendship.rejected.
package friends

import (
	"context"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
	"github.com/maoga/maoga/services/users"
)

// Service is the friends service.
type Service struct {
	users  *models.Users
	fr     *models.Friendships
	status *users.Service
	events events.Publisher
	log    *slog.Logger
	now    func() time.Time
}

// New builds the service; pub may be nil (no events).
func New(store *models.Store, status *users.Service, pub events.Publisher, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{users: models.NewUsers(store), fr: models.NewFriendships(store), status: status,
		events: pub, log: log, now: time.Now}
}

// View is a friendship as JSON.
type View struct {
	ID          string  `json:"id"`
	RequesterID string  `json:"requesterId"`
	AddresseeID string  `json:"addresseeId"`
	Status      string  `json:"status"`
	CreatedAt   string  `json:"createdAt"`
	UpdatedAt   string  `json:"updatedAt"`
	AcceptedAt  *string `json:"acceptedAt"`
}

// NewView renders f.
func NewView(f *models.Friendship) View {
	v := View{ID: f.ID.Hex(), RequesterID: f.RequesterID.Hex(), AddresseeID: f.AddresseeID.Hex(), Status: f.Status,
		CreatedAt: realtime.ISOTime(f.CreatedAt), UpdatedAt: realtime.ISOTime(f.UpdatedAt)}
	if f.AcceptedAt != nil {
		s := realtime.ISOTime(*f.AcceptedAt)
		v.AcceptedAt = &s
	}
	return v
}

// Friend is one entry of the friends list: `{ user, status, since }`.
type Friend struct {
	User   users.PublicView `json:"user"`
	Status string           `json:"status"`
	Since  string           `json:"since"`
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Request sends a friend request from requesterID to addresseeID. A pair that was rejected before may
// ask again (the old document is reused); pending or accepted pairs are CONFLICT.
func (s *Service) Request(ctx context.Context, requesterID, addresseeID string) (*models.Friendship, error) {
	me, ok := models.ParseID(requesterID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	other, ok := models.ParseID(addresseeID)
	if !ok {
		return nil, errs.Validation("invalid friend request", map[string]string{"userId": "must be a user id"})
	}
	if me == other {
		return nil, errs.Validation("invalid friend request", map[string]string{"userId": "cannot befriend yourself"})
	}
	requester, err := s.users.ByID(ctx, me)
	if err != nil {
		return nil, err
	}
	if _, err := s.users.ByID(ctx, other); err != nil {
		return nil, err
	}
	f := &models.Friendship{RequesterID: me, AddresseeID: other}
	err = s.fr.Insert(ctx, f)
	if errs.Is(err, errs.CodeConflict) {
		f, err = s.renew(ctx, me, other)
	}
	if err != nil {
		return nil, err
	}
	s.publish(ctx, events.FriendshipRequested, events.FriendshipData{FriendshipID: f.ID.Hex(),
		RequesterID: me.Hex(), AddresseeID: other.Hex(), RequesterName: requester.Name()})
	return f, nil
}

// renew turns the pair's existing friendship back into a pending request from me, if it was rejected.
func (s *Service) renew(ctx context.Context, me, other bson.ObjectID) (*models.Friendship, error) {
	cur, err := s.fr.ByPair(ctx, me, other)
	if err != nil {
		return nil, err
	}
	return models.UpdateVersioned(ctx, s.fr.Collection(), cur.ID, 0, func(f *models.Friendship) (bson.M, error) {
		switch f.Status {
		case models.FriendshipAccepted:
			return nil, errs.Conflict("you are already friends").WithDetails(map[string]any{"friendshipId": f.ID.Hex()})
		case models.FriendshipPending:
			if f.RequesterID == me {
				return nil, errs.Conflict("friend request already sent").WithDetails(map[string]any{"friendshipId": f.ID.Hex()})
			}
			return nil, errs.Conflict("this user already sent you a friend request").WithDetails(map[string]any{"friendshipId": f.ID.Hex()})
		}
		now := s.stamp()
		return bson.M{"$set": bson.M{"requesterId": me, "addresseeId": other, "status": models.FriendshipPending,
			"createdAt": now, "updatedAt": now}}, nil
	})
}

// Accept accepts a pending request addressed to userID.
func (s *Service) Accept(ctx context.Context, userID, friendshipID string) (*models.Friendship, error) {
	return s.answer(ctx, userID, friendshipID, models.FriendshipAccepted)
}

// Reject rejects a pending request addressed to userID.
func (s *Service) Reject(ctx context.Context, userID, friendshipID string) (*models.Friendship, error) {
	return s.answer(ctx, userID, friendshipID, models.FriendshipRejected)
}

func (s *Service) answer(ctx context.Context, userID, friendshipID, to string) (*models.Friendship, error) {
	me, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	id, ok := models.ParseID(friendshipID)
	if !ok {
		return nil, errs.NotFound("friend request not found")
	}
	f, err := models.UpdateVersioned(ctx, s.fr.Collection(), id, 0, func(f *models.Friendship) (bson.M, error) {
		if !f.Involves(me) {
			return nil, errs.NotFound("friend request not found") // other people's requests do not exist for me
		}
		if f.AddresseeID != me {
			return nil, errs.Forbidden("only the addressee can answer a friend request")
		}
		if f.Status != models.FriendshipPending {
			return nil, errs.Conflict("friend request is not pending").WithDetails(map[string]any{"status": f.Status})
		}
		now := s.stamp()
		set := bson.M{"status": to, "updatedAt": now}
		if to == models.FriendshipAccepted {
			set["acceptedAt"] = now
		}
		return bson.M{"$set": set}, nil
	})
	if errs.Is(err, errs.CodeNotFound) {
		return nil, errs.NotFound("friend request not found")
	}
	if err != nil {
		return nil, err
	}
	name := ""
	if u, err := s.users.ByID(ctx, me); err == nil {
		name = u.Name()
	}
	ev := events.FriendshipRejected
	if to == models.FriendshipAccepted {
		ev = events.FriendshipAccepted
	}
	s.publish(ctx, ev, events.FriendshipData{FriendshipID: f.ID.Hex(), RequesterID: f.RequesterID.Hex(),
		AddresseeID: f.AddresseeID.Hex(), AddresseeName: name})
	return f, nil
}

// Remove ends the friendship (or withdraws/declines a pending request) between userID and otherID.
func (s *Service) Remove(ctx context.Context, userID, otherID string) error {
	me, ok := models.ParseID(userID)
	if !ok {
		return errs.Unauthorized("Invalid token")
	}
	other, ok := models.ParseID(otherID)
	if !ok {
		return errs.NotFound("friendship not found")
	}
	f, err := s.fr.ByPair(ctx, me, other)
	if err != nil {
		return err
	}
	if f.Status == models.FriendshipRejected {
		return errs.NotFound("friendship not found")
	}
	return s.fr.Delete(ctx, f.ID)
}

// List is the caller's accepted friends with each friend's live status, oldest friendship first.
func (s *Service) List(ctx context.Context, userID string) ([]Friend, error) {
	me, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	fs, err := s.fr.Accepted(ctx, me)
	if err != nil {
		return nil, err
	}
	ids := make([]bson.ObjectID, 0, len(fs))
	hex := make([]string, 0, len(fs))
	for i := range fs {
		o := fs[i].Other(me)
		ids = append(ids, o)
		hex = append(hex, o.Hex())
	}
	us, err := s.users.ByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	st, err := s.status.Statuses(ctx, hex)
	if err != nil {
		return nil, err
	}
	out := make([]Friend, 0, len(fs))
	for i := range fs {
		u := us[ids[i]]
		if u == nil { // account deleted; the friendship is dangling
			continue
		}
		since := fs[i].UpdatedAt
		if fs[i].AcceptedAt != nil {
			since = *fs[i].AcceptedAt
		}
		s.status.ApplyUnsaved(u)
		status := st[hex[i]]
		out = append(out, Friend{User: users.NewPublicView(u, status), Status: status, Since: realtime.ISOTime(since)})
	}
	return out, nil
}

// FriendIDs implements presence.FriendLister and users.FriendLister.
func (s *Service) FriendIDs(ctx context.Context, userID string) ([]string, error) {
	me, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.NotFound("user not found")
	}
	fs, err := s.fr.Accepted(ctx, me)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(fs))
	for i := range fs {
		out = append(out, fs[i].Other(me).Hex())
	}
	return out, nil
}

func (s *Service) publish(ctx context.Context, name string, data any) {
	if s.events == nil {
		return
	}
	e, err := events.New(name, data)
	if err == nil {
		err = s.events.Publish(ctx, e)
	}
	if err != nil {
		s.log.Error("publish event failed", "event", name, "err", err)
	}
}

// Pending lists the pending requests addressed to the user (incoming) or sent by them.
func (s *Service) Pending(ctx context.Context, userID string, incoming bool) ([]models.Friendship, error) {
	me, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	return s.fr.Pending(ctx, me, incoming)
}
