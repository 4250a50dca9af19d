package models

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// FriendshipsCollection holds one document per pair of users that ever had a friend request.
const FriendshipsCollection = "friendships"

// Friendship statuses.
const (
	FriendshipPending  = "pending"
	FriendshipAccepted = "accepted"
	FriendshipRejected = "rejected"
)

// Friendship links two users. PairKey is the two ids sorted and joined, unique, so a pair has at most
// one document whoever asked first; a rejected request is reused when either side asks again.
type Friendship struct {
	ID          bson.ObjectID `bson:"_id"`
	RequesterID bson.ObjectID `bson:"requesterId"`
	AddresseeID bson.ObjectID `bson:"addresseeId"`
	PairKey     string        `bson:"pairKey"`
	Status      string        `bson:"status"`
	CreatedAt   time.Time     `bson:"createdAt"`
	UpdatedAt   time.Time     `bson:"updatedAt"`
	AcceptedAt  *time.Time    `bson:"acceptedAt,omitempty"`
	Version     int64         `bson:"version"`
}

// CurrentVersion implements Versioned.
func (f *Friendship) CurrentVersion() int64 { return f.Version }

// Other returns the id of the user in f who is not me.
func (f *Friendship) Other(me bson.ObjectID) bson.ObjectID {
	if f.RequesterID == me {
		return f.AddresseeID
	}
	return f.RequesterID
}

// Involves reports whether u is one of the pair.
func (f *Friendship) Involves(u bson.ObjectID) bool { return f.RequesterID == u || f.AddresseeID == u }

// PairKey is the order-independent key of two users.
func PairKey(a, b bson.ObjectID) string {
	x, y := a.Hex(), b.Hex()
	if x > y {
		x, y = y, x
	}
	return x + ":" + y
}

func init() {
	RegisterIndexes(FriendshipsCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "pairKey", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("pair_unique")},
		mongo.IndexModel{Keys: bson.D{{Key: "requesterId", Value: 1}, {Key: "status", Value: 1}},
			Options: options.Index().SetName("requester_status")},
		mongo.IndexModel{Keys: bson.D{{Key: "addresseeId", Value: 1}, {Key: "status", Value: 1}},
			Options: options.Index().SetName("addressee_status")},
	)
}

// Friendships is the friendships collection.
type Friendships struct{ c *mongo.Collection }

// NewFriendships binds the friendships collection of s.
func NewFriendships(s *Store) *Friendships {
	return &Friendships{c: s.Collection(FriendshipsCollection)}
}

// Collection exposes the raw collection.
func (r *Friendships) Collection() *mongo.Collection { return r.c }

// Insert stores a new pending friendship; CONFLICT if the pair already has one.
func (r *Friendships) Insert(ctx context.Context, f *Friendship) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if f.ID.IsZero() {
		f.ID = bson.NewObjectID()
	}
	f.PairKey = PairKey(f.RequesterID, f.AddresseeID)
	if f.Status == "" {
		f.Status = FriendshipPending
	}
	f.CreatedAt, f.UpdatedAt, f.Version = now, now, 1
	_, err := r.c.InsertOne(ctx, f)
	return ConflictOnDuplicate(err, "a friendship between these users already exists")
}

// ByID loads one friendship; NOT_FOUND if missing.
func (r *Friendships) ByID(ctx context.Context, id bson.ObjectID) (*Friendship, error) {
	return r.findOne(ctx, bson.M{"_id": id})
}

// ByPair loads the friendship of two users; NOT_FOUND if they have none.
func (r *Friendships) ByPair(ctx context.Context, a, b bson.ObjectID) (*Friendship, error) {
	return r.findOne(ctx, bson.M{"pairKey": PairKey(a, b)})
}

func (r *Friendships) findOne(ctx context.Context, filter bson.M) (*Friendship, error) {
	var f Friendship
	if err := r.c.FindOne(ctx, filter).Decode(&f); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("friendship not found")
		}
		return nil, errs.Internal(err)
	}
	return &f, nil
}

// Accepted lists the accepted friendships of a user, oldest first.
func (r *Friendships) Accepted(ctx context.Context, user bson.ObjectID) ([]Friendship, error) {
	cur, err := r.c.Find(ctx, bson.M{"status": FriendshipAccepted,
		"$or": bson.A{bson.M{"requesterId": user}, bson.M{"addresseeId": user}}},
		options.Find().SetSort(bson.D{{Key: "acceptedAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, errs.Internal(err)
	}
	out := []Friendship{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, errs.Internal(err)
	}
	return out, nil
}

// Pending lists pending requests addressed to (incoming) or sent by (outgoing) a user, newest first.
func (r *Friendships) Pending(ctx context.Context, user bson.ObjectID, incoming bool) ([]Friendship, error) {
	key := "requesterId"
	if incoming {
		key = "addresseeId"
	}
	cur, err := r.c.Find(ctx, bson.M{"status": FriendshipPending, key: user},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}, {Key: "_id", Value: -1}}))
	if err != nil {
		return nil, errs.Internal(err)
	}
	out := []Friendship{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, errs.Internal(err)
	}
	return out, nil
}

// Delete removes the friendship document; NOT_FOUND if it was already gone.
func (r *Friendships) Delete(ctx context.Context, id bson.ObjectID) error {
	defer LockDoc(FriendshipsCollection, id)()
	res, err := r.c.DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return errs.Internal(err)
	}
	if res.DeletedCount == 0 {
		return errs.NotFound("friendship not found")
	}
	return nil
}
