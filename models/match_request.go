package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/maoga/maoga/services/errs"
)

// MatchRequestsCollection holds matchmaking requests (EVENTS.md, Matchmaking). services/matchmaking
// owns the queries; they all live in this file.
const MatchRequestsCollection = "match_requests"

// Match request statuses as stored. A request moves
//
//	pending → searching → matching → matched
//	             │  ↑ (claim released)
//	             ├→ cancelled
//	             └→ expired
//
// pending: just inserted, not yet visible to the matcher (the "already in a lobby" check runs between
// insert and searching, see services/matchmaking). matching: claimed by one matcher round, which either
// finishes it (matched) or releases it (searching). Every transition is a conditional update on the
// current status, so a cancel and a claim of the same request can never both succeed.
//
// MatchRelaxingCriteria is never stored: it is what status events and views show for a searching
// request whose relaxation level is above 0.
const (
	MatchPending          = "pending"
	MatchSearching        = "searching"
	MatchRelaxingCriteria = "relaxing_criteria"
	MatchMatching         = "matching"
	MatchMatched          = "matched"
	MatchCancelled        = "cancelled"
	MatchExpired          = "expired"
)

// MatchActiveStatuses are the statuses in which a request holds its user's active key.
var MatchActiveStatuses = []string{MatchPending, MatchSearching, MatchMatching}

// MatchRequest is one user's search. ActiveKey enforces "a user is never in two searches at once"
// across nodes with a unique index: it is the user id while the request is pending, searching or
// matching, and the request's own id once it is finished (matched, cancelled, expired).
type MatchRequest struct {
	ID       bson.ObjectID  `bson:"_id"`
	UserID   bson.ObjectID  `bson:"userId"`
	GameID   string         `bson:"gameId"`
	GameMode string         `bson:"gameMode"`
	Region   string         `bson:"region"`
	Skill    *float64       `bson:"skill,omitempty"`
	Criteria map[string]any `bson:"criteria,omitempty"`
	Status   string         `bson:"status"`
	// ActiveKey: see the type comment.
	ActiveKey string `bson:"activeKey"`
	// RelaxationLevel is the level the request was matched (or ended) at; while searching the level
	// follows from the elapsed time and is not stored.
	RelaxationLevel int            `bson:"relaxationLevel"`
	LobbyID         *bson.ObjectID `bson:"lobbyId,omitempty"`
	// ClaimToken names the matcher round holding the request while it is matching; ClaimedAt is
	// when it claimed it (a claim older than the matcher's claim timeout is recovered).
	ClaimToken  string     `bson:"claimToken,omitempty"`
	ClaimedAt   *time.Time `bson:"claimedAt,omitempty"`
	CreatedAt   time.Time  `bson:"createdAt"`
	UpdatedAt   time.Time  `bson:"updatedAt"`
	MatchedAt   *time.Time `bson:"matchedAt,omitempty"`
	CancelledAt *time.Time `bson:"cancelledAt,omitempty"`
	ExpiredAt   *time.Time `bson:"expiredAt,omitempty"`
	// WaitMillis is matchedAt - createdAt, kept for the queue's wait-time estimate.
	WaitMillis int64 `bson:"waitMillis,omitempty"`
	Version    int64 `bson:"version"`
}

// CurrentVersion implements Versioned.
func (m *MatchRequest) CurrentVersion() int64 { return m.Version }

// Active reports whether the request still holds its user's active key.
func (m *MatchRequest) Active() bool {
	return m.Status == MatchPending || m.Status == MatchSearching || m.Status == MatchMatching
}

// Queue is the queue the request waits in.
func (m *MatchRequest) Queue() MatchQueue {
	return MatchQueue{GameID: m.GameID, GameMode: m.GameMode, Region: m.Region}
}

// MatchQueue identifies one matchmaking queue: requests only match within their queue.
type MatchQueue struct {
	GameID   string `bson:"gameId" json:"gameId"`
	GameMode string `bson:"gameMode" json:"gameMode"`
	Region   string `bson:"region" json:"region"`
}

// String is the queue's key, e.g. for locks: "game/mode/region".
func (q MatchQueue) String() string { return q.GameID + "/" + q.GameMode + "/" + q.Region }

func init() {
	RegisterIndexes(MatchRequestsCollection,
		mongo.IndexModel{Keys: bson.D{{Key: "activeKey", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("active_key_unique")},
		mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "gameId", Value: 1}, {Key: "gameMode", Value: 1},
			{Key: "region", Value: 1}, {Key: "createdAt", Value: 1}},
			Options: options.Index().SetName("queue")},
		mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: -1}},
			Options: options.Index().SetName("user_created")},
		mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "gameId", Value: 1}, {Key: "gameMode", Value: 1},
			{Key: "region", Value: 1}, {Key: "matchedAt", Value: -1}},
			Options: options.Index().SetName("queue_matched")},
	)
}

// ErrMatchStateChanged is the cause inside the CONFLICT a MatchRequests.Transition returns when the
// request exists but is not in (one of) the expected state(s) any more.
var ErrMatchStateChanged = errors.New("match request changed state")

// MatchRequests is the match requests collection.
type MatchRequests struct{ c *mongo.Collection }

// NewMatchRequests binds the collection of s.
func NewMatchRequests(s *Store) *MatchRequests {
	return &MatchRequests{c: s.Collection(MatchRequestsCollection)}
}

// Collection exposes the raw collection.
func (r *MatchRequests) Collection() *mongo.Collection { return r.c }

// Insert stores a new request (ID set when zero). A second active request of the same user is
// CONFLICT (unique active key).
func (r *MatchRequests) Insert(ctx context.Context, m *MatchRequest) error {
	if m.ID.IsZero() {
		m.ID = bson.NewObjectID()
	}
	m.Version = 0
	if m.ActiveKey == "" {
		m.ActiveKey = m.UserID.Hex()
	}
	_, err := r.c.InsertOne(ctx, m)
	return ConflictOnDuplicate(err, "you already have an active match request")
}

// Delete removes a request (a pending request refused before it was ever searching).
func (r *MatchRequests) Delete(ctx context.Context, id bson.ObjectID) error {
	defer LockDoc(r.c.Name(), id)()
	if _, err := r.c.DeleteOne(ctx, bson.M{"_id": id}); err != nil {
		return errs.Internal(err)
	}
	return nil
}

// DeletePending removes request id only while it is still pending (never seen by the matcher, never
// answered as started); deleted is false when it is not there or not pending any more.
func (r *MatchRequests) DeletePending(ctx context.Context, id bson.ObjectID) (deleted bool, err error) {
	defer LockDoc(r.c.Name(), id)()
	res, err := r.c.DeleteOne(ctx, bson.M{"_id": id, "status": MatchPending})
	if err != nil {
		return false, errs.Internal(err)
	}
	return res.DeletedCount > 0, nil
}

// ByID loads one request; NOT_FOUND when missing.
func (r *MatchRequests) ByID(ctx context.Context, id bson.ObjectID) (*MatchRequest, error) {
	var m MatchRequest
	if err := r.c.FindOne(ctx, bson.M{"_id": id}).Decode(&m); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("match request not found")
		}
		return nil, errs.Internal(err)
	}
	return &m, nil
}

// ActiveByUser is the user's active request (pending, searching or matching); NOT_FOUND if none.
func (r *MatchRequests) ActiveByUser(ctx context.Context, userID bson.ObjectID) (*MatchRequest, error) {
	var m MatchRequest
	if err := r.c.FindOne(ctx, bson.M{"activeKey": userID.Hex()}).Decode(&m); err != nil {
		if IsNoDocuments(err) {
			return nil, errs.NotFound("no active match request")
		}
		return nil, errs.Internal(err)
	}
	return &m, nil
}

// ActiveQueues lists the queues that hold at least one active request.
func (r *MatchRequests) ActiveQueues(ctx context.Context) ([]MatchQueue, error) {
	cur, err := r.c.Find(ctx, bson.M{"status": bson.M{"$in": MatchActiveStatuses}},
		options.Find().SetProjection(bson.M{"gameId": 1, "gameMode": 1, "region": 1}))
	if err != nil {
		return nil, errs.Internal(err)
	}
	var qs []MatchQueue
	if err := cur.All(ctx, &qs); err != nil {
		return nil, errs.Internal(err)
	}
	seen := make(map[MatchQueue]bool, len(qs))
	out := make([]MatchQueue, 0, len(qs))
	for _, q := range qs {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out, nil
}

// InQueue lists the requests of q in the given statuses, oldest first.
func (r *MatchRequests) InQueue(ctx context.Context, q MatchQueue, statuses ...string) ([]MatchRequest, error) {
	cur, err := r.c.Find(ctx, bson.M{"status": bson.M{"$in": statuses}, "gameId": q.GameID, "gameMode": q.GameMode,
		"region": q.Region}, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, errs.Internal(err)
	}
	var out []MatchRequest
	if err := cur.All(ctx, &out); err != nil {
		return nil, errs.Internal(err)
	}
	return out, nil
}

// RecentWaits returns how long the last (up to limit) matched requests of q waited, newest first.
func (r *MatchRequests) RecentWaits(ctx context.Context, q MatchQueue, limit int) ([]time.Duration, error) {
	cur, err := r.c.Find(ctx, bson.M{"status": MatchMatched, "gameId": q.GameID, "gameMode": q.GameMode, "region": q.Region},
		options.Find().SetSort(bson.D{{Key: "matchedAt", Value: -1}}).SetLimit(int64(limit)).
			SetProjection(bson.M{"waitMillis": 1}))
	if err != nil {
		return nil, errs.Internal(err)
	}
	var docs []struct {
		WaitMillis int64 `bson:"waitMillis"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, errs.Internal(err)
	}
	out := make([]time.Duration, len(docs))
	for i, d := range docs {
		out[i] = time.Duration(d.WaitMillis) * time.Millisecond
	}
	return out, nil
}

// MatchFilter says which state a Transition expects the request to be in.
type MatchFilter struct {
	// From lists the statuses the request may have (required).
	From []string
	// Version, when not nil, must equal the stored version (the claim uses the version it read).
	Version *int64
	// ClaimToken, when not empty, must equal the stored claim token (only the round holding a
	// claim may finish or release it).
	ClaimToken string
}

// Transition applies set (and unset, may be nil) to request id only while it matches f, bumps the
// version, and returns the updated request. Missing request: NOT_FOUND; present but in another
// state: CONFLICT wrapping ErrMatchStateChanged. It holds LockDoc, so on FerretDB v1 a cancel and a
// claim of the same request are serialised too (see versioned.go).
func (r *MatchRequests) Transition(ctx context.Context, id bson.ObjectID, f MatchFilter, set, unset bson.M) (*MatchRequest, error) {
	if len(f.From) == 0 {
		return nil, errs.Internal(errors.New("models: match request transition without From"))
	}
	filter := bson.M{"_id": id, "status": bson.M{"$in": f.From}}
	if f.Version != nil {
		filter["version"] = *f.Version
	}
	if f.ClaimToken != "" {
		filter["claimToken"] = f.ClaimToken
	}
	update := bson.M{"$set": set}
	if len(unset) > 0 {
		update["$unset"] = unset
	}
	defer LockDoc(r.c.Name(), id)()
	var out MatchRequest
	err := r.c.FindOneAndUpdate(ctx, filter, withVersionBump(update),
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
	if err == nil {
		return &out, nil
	}
	if !IsNoDocuments(err) {
		if IsDuplicateKey(err) {
			return nil, errs.Wrap(errs.CodeConflict, "you already have an active match request", err)
		}
		return nil, errs.Internal(err)
	}
	n, cerr := r.c.CountDocuments(ctx, bson.M{"_id": id})
	if cerr != nil {
		return nil, errs.Internal(cerr)
	}
	if n == 0 {
		return nil, errs.NotFound("match request not found")
	}
	return nil, errs.Wrap(errs.CodeConflict, ErrMatchStateChanged.Error(), ErrMatchStateChanged)
}

// LobbyIDForRequest finds the lobby a match created for request id (lobbies store the ids of the
// requests they were made for). Used to recover a claim whose round died between creating the lobby
// and marking its requests matched. found is false when no lobby names the request.
func (r *MatchRequests) LobbyIDForRequest(ctx context.Context, id bson.ObjectID) (lobbyID bson.ObjectID, found bool, err error) {
	var l struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err = r.c.Database().Collection(LobbiesCollection).FindOne(ctx, bson.M{"matchRequestIds": id},
		options.FindOne().SetProjection(bson.M{"_id": 1})).Decode(&l)
	if err != nil {
		if IsNoDocuments(err) {
			return bson.ObjectID{}, false, nil
		}
		return bson.ObjectID{}, false, errs.Internal(fmt.Errorf("lobby of match request %s: %w", id.Hex(), err))
	}
	return l.ID, true, nil
}
