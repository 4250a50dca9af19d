package models

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// RefreshTokensCollection holds the refresh tokens handed out at login, register and refresh.
const RefreshTokensCollection = "refresh_tokens"

// RefreshToken is one issued refresh token. Only the SHA-256 of the token is stored. Every login
// starts a family; each refresh rotates within it (the presented token is marked Rotated and a new
// one issued). Presenting a rotated token again means it leaked: the whole family is revoked.
type RefreshToken struct {
	ID        bson.ObjectID `bson:"_id"`
	UserID    bson.ObjectID `bson:"userId"`
	FamilyID  bson.ObjectID `bson:"familyId"`
	TokenHash string        `bson:"tokenHash"`
	Rotated   bool          `bson:"rotated"`
	Revoked   bool          `bson:"revoked"`
	ExpiresAt time.Time     `bson:"expiresAt"`
	CreatedAt time.Time     `bson:"createdAt"`
	RotatedAt *time.Time    `bson:"rotatedAt,omitempty"`
}

func init() {
	RegisterIndexes(RefreshTokensCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "tokenHash", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("token_hash_unique")},
		mongo.IndexModel{Keys: bson.D{{Key: "familyId", Value: 1}},
			Options: options.Index().SetName("family")},
		mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}},
			Options: options.Index().SetName("user")},
	)
}

// RefreshTokens is the refresh token collection.
type RefreshTokens struct{ c *mongo.Collection }

// NewRefreshTokens binds the collection of s.
func NewRefreshTokens(s *Store) *RefreshTokens {
	return &RefreshTokens{c: s.Collection(RefreshTokensCollection)}
}

// Insert stores a new token record.
func (r *RefreshTokens) Insert(ctx context.Context, t *RefreshToken) error {
	if t.ID.IsZero() {
		t.ID = bson.NewObjectID()
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	_, err := r.c.InsertOne(ctx, t)
	return ConflictOnDuplicate(err, "refresh token collision")
}

// ByHash finds a token by the hash of its value; NOT_FOUND if unknown.
func (r *RefreshTokens) ByHash(ctx context.Context, hash string) (*RefreshToken, error) {
	var t RefreshToken
	if err := r.c.FindOne(ctx, bson.M{"tokenHash": hash}).Decode(&t); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("refresh token not found")
		}
		return nil, errs.Internal(err)
	}
	return &t, nil
}

// MarkRotated flips a live token to rotated. It reports false when the token was already rotated or
// revoked: exactly one of two concurrent refreshes with the same token wins. Writes of one family are
// serialised on the family id (RevokeFamily racing a rotation must not be undone by it).
func (r *RefreshTokens) MarkRotated(ctx context.Context, t *RefreshToken, at time.Time) (bool, error) {
	defer LockDoc(RefreshTokensCollection, t.FamilyID)()
	res, err := r.c.UpdateOne(ctx, bson.M{"_id": t.ID, "rotated": false, "revoked": false},
		bson.M{"$set": bson.M{"rotated": true, "rotatedAt": at.UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return false, errs.Internal(err)
	}
	return res.ModifiedCount == 1, nil
}

// RevokeFamily revokes every token of a family.
func (r *RefreshTokens) RevokeFamily(ctx context.Context, family bson.ObjectID) error {
	defer LockDoc(RefreshTokensCollection, family)()
	_, err := r.c.UpdateMany(ctx, bson.M{"familyId": family}, bson.M{"$set": bson.M{"revoked": true}})
	if err != nil {
		return errs.Internal(err)
	}
	return nil
}

// RevokeUser revokes every token of a user (the account was suspended or banned): a refresh with any
// of them fails from now on, also after the account is active again.
func (r *RefreshTokens) RevokeUser(ctx context.Context, userID bson.ObjectID) (int64, error) {
	res, err := r.c.UpdateMany(ctx, bson.M{"userId": userID, "revoked": false}, bson.M{"$set": bson.M{"revoked": true}})
	if err != nil {
		return 0, errs.Internal(err)
	}
	return res.ModifiedCount, nil
}
