package models

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// UsersCollection holds one document per account.
const UsersCollection = "users"

// Account statuses (the design documents' accountStatus). Only active accounts may log in or connect.
const (
	AccountActive    = "active"
	AccountSuspended = "suspended"
	AccountBanned    = "banned"
)

// Presence statuses (EVENTS.md, Presence).
const (
	StatusOnline  = "online"
	StatusAway    = "away"
	StatusBusy    = "busy"
	StatusInGame  = "in-game"
	StatusOffline = "offline"
)

// ValidAccountStatus reports whether s is one of the three account statuses.
func ValidAccountStatus(s string) bool {
	switch s {
	case AccountActive, AccountSuspended, AccountBanned:
		return true
	}
	return false
}

// ValidPresenceStatus reports whether s is one of the five presence statuses.
func ValidPresenceStatus(s string) bool {
	switch s {
	case StatusOnline, StatusAway, StatusBusy, StatusInGame, StatusOffline:
		return true
	}
	return false
}

// User is an account. Username and email keep the case the user typed; uniqueness is on the
// lowercased copies so that "Alice" and "alice" cannot both exist.
type User struct {
	ID            bson.ObjectID `bson:"_id"`
	Username      string        `bson:"username"`
	UsernameLower string        `bson:"usernameLower"`
	Email         string        `bson:"email"`
	EmailLower    string        `bson:"emailLower"`
	PasswordHash  string        `bson:"passwordHash"`
	DisplayName   string        `bson:"displayName"`
	Bio           string        `bson:"bio,omitempty"`
	AvatarURL     string        `bson:"avatarUrl,omitempty"`
	AccountStatus string        `bson:"accountStatus"`
	// AccountStatusReason says why an admin last changed AccountStatus (users.SetAccountStatus).
	AccountStatusReason string `bson:"accountStatusReason,omitempty"`
	// Status is the last presence status written by the presence service; LastActive is when the
	// user was last seen (set when the last socket closes and at login).
	Status     string     `bson:"status"`
	LastActive *time.Time `bson:"lastActive,omitempty"`
	// DeviceTokens are push targets registered by clients (the push notification channel).
	DeviceTokens       []string  `bson:"deviceTokens,omitempty"`
	LastLoginIP        string    `bson:"lastLoginIp,omitempty"`
	LastLoginUserAgent string    `bson:"lastLoginUserAgent,omitempty"`
	CreatedAt          time.Time `bson:"createdAt"`
	UpdatedAt          time.Time `bson:"updatedAt"`
	Version            int64     `bson:"version"`
}

// CurrentVersion implements Versioned.
func (u *User) CurrentVersion() int64 { return u.Version }

// Name is what to call the user in messages: the display name, else the username.
func (u *User) Name() string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Username
}

func init() {
	RegisterIndexes(UsersCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "usernameLower", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("username_lower_unique")},
		mongo.IndexModel{Keys: bson.D{{Key: "emailLower", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("email_lower_unique")},
	)
}

// Users is the users collection.
type Users struct{ c *mongo.Collection }

// NewUsers binds the users collection of s.
func NewUsers(s *Store) *Users { return &Users{c: s.Collection(UsersCollection)} }

// Collection exposes the raw collection (for services that need a query not offered here).
func (r *Users) Collection() *mongo.Collection { return r.c }

// Create inserts u, filling ID, lowercased keys, status defaults and timestamps. A taken username or
// email is CONFLICT with details.fields naming which one.
func (r *Users) Create(ctx context.Context, u *User) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if u.ID.IsZero() {
		u.ID = bson.NewObjectID()
	}
	u.UsernameLower = strings.ToLower(u.Username)
	u.EmailLower = strings.ToLower(u.Email)
	if u.AccountStatus == "" {
		u.AccountStatus = AccountActive
	}
	if u.Status == "" {
		u.Status = StatusOffline
	}
	u.CreatedAt, u.UpdatedAt = now, now
	u.Version = 1
	// Look first to say which field is taken; the unique indexes still decide under races.
	if field, err := r.takenField(ctx, u.UsernameLower, u.EmailLower); err != nil {
		return err
	} else if field != "" {
		return takenError(field)
	}
	if _, err := r.c.InsertOne(ctx, u); err != nil {
		if IsDuplicateKey(err) {
			field, _ := r.takenField(ctx, u.UsernameLower, u.EmailLower)
			if field == "" {
				field = "username"
			}
			return takenError(field)
		}
		return errs.Internal(err)
	}
	return nil
}

func takenError(field string) error {
	return errs.Conflict(field + " is already taken").WithDetails(map[string]any{
		"fields": map[string]any{field: "is already taken"}})
}

func (r *Users) takenField(ctx context.Context, usernameLower, emailLower string) (string, error) {
	for _, f := range []struct{ key, val, name string }{
		{"usernameLower", usernameLower, "username"}, {"emailLower", emailLower, "email"},
	} {
		n, err := r.c.CountDocuments(ctx, bson.M{f.key: f.val}, options.Count().SetLimit(1))
		if err != nil {
			return "", errs.Internal(err)
		}
		if n > 0 {
			return f.name, nil
		}
	}
	return "", nil
}

// ByID loads a user; NOT_FOUND if there is none.
func (r *Users) ByID(ctx context.Context, id bson.ObjectID) (*User, error) {
	return r.findOne(ctx, bson.M{"_id": id})
}

// ByLogin finds a user by username or email, case-insensitively.
func (r *Users) ByLogin(ctx context.Context, login string) (*User, error) {
	l := strings.ToLower(login)
	if strings.Contains(l, "@") {
		return r.findOne(ctx, bson.M{"emailLower": l})
	}
	return r.findOne(ctx, bson.M{"usernameLower": l})
}

// ByIDs loads the users with the given ids (missing ones are skipped), keyed by id.
func (r *Users) ByIDs(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]*User, error) {
	out := make(map[bson.ObjectID]*User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := r.c.Find(ctx, bson.M{"_id": bson.M{"$in": ids}})
	if err != nil {
		return nil, errs.Internal(err)
	}
	var list []*User
	if err := cur.All(ctx, &list); err != nil {
		return nil, errs.Internal(err)
	}
	for _, u := range list {
		out[u.ID] = u
	}
	return out, nil
}

func (r *Users) findOne(ctx context.Context, filter bson.M) (*User, error) {
	var u User
	if err := r.c.FindOne(ctx, filter).Decode(&u); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("user not found")
		}
		return nil, errs.Internal(err)
	}
	return &u, nil
}

// Update applies $set fields to the user (updatedAt and version maintained here) and returns the new
// document. Concurrent profile edits are last-writer-wins per field, which is what a profile wants.
func (r *Users) Update(ctx context.Context, id bson.ObjectID, set bson.M) (*User, error) {
	s := bson.M{"updatedAt": time.Now().UTC().Truncate(time.Millisecond)}
	for k, v := range set {
		s[k] = v
	}
	defer LockDoc(UsersCollection, id)()
	var u User
	err := r.c.FindOneAndUpdate(ctx, bson.M{"_id": id},
		bson.M{"$set": s, "$inc": bson.M{"version": 1}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&u)
	if err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("user not found")
		}
		return nil, errs.Internal(err)
	}
	return &u, nil
}

// SetPresence stores the presence status and, when lastActive is non-zero, when the user was last seen.
func (r *Users) SetPresence(ctx context.Context, id bson.ObjectID, status string, lastActive time.Time) error {
	set := bson.M{"status": status}
	if !lastActive.IsZero() {
		set["lastActive"] = lastActive.UTC().Truncate(time.Millisecond)
	}
	defer LockDoc(UsersCollection, id)()
	res, err := r.c.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": set})
	if err != nil {
		return errs.Internal(err)
	}
	if res.MatchedCount == 0 {
		return errs.NotFound("user not found")
	}
	return nil
}

// Inactive returns the accountStatus of those of ids whose account is not active (suspended or
// banned), in one query per 500 ids that reads only the status. Unknown ids are not reported.
func (r *Users) Inactive(ctx context.Context, ids []bson.ObjectID) (map[bson.ObjectID]string, error) {
	out := map[bson.ObjectID]string{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		cur, err := r.c.Find(ctx, bson.M{"_id": bson.M{"$in": chunk}, "accountStatus": bson.M{"$ne": AccountActive}},
			options.Find().SetProjection(bson.M{"accountStatus": 1}))
		if err != nil {
			return nil, errs.Internal(err)
		}
		var docs []struct {
			ID            bson.ObjectID `bson:"_id"`
			AccountStatus string        `bson:"accountStatus"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, errs.Internal(err)
		}
		for _, d := range docs {
			out[d.ID] = d.AccountStatus
		}
	}
	return out, nil
}
