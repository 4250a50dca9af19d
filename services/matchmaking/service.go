// Package matchmaking queues match requests by game, mode and region, groups compatible requests
// into full lobbies on a tick, widens the skill window with time, expires old requests, and tells
// the players over Socket.IO (EVENTS.md, Matchmaking).
//
// Consistency. A request's life is a chain of conditional updates on its status (see
// models.MatchRequest): the matcher claims every request of a match (searching → matching, on the
// version it read) before it creates the lobby, and a cancel only succeeds on a searching request, so
// a cancel racing a match ends as exactly one of the two. If any claim of a group fails, the round
// releases the others (matching → searching) and the group is retried on the next tick. A user
// holds at most one active request (unique active key), and Start checks the lobby seat after the
// request is stored but before the matcher can see it, so a user sitting in an open lobby is never
// matched into a second one. Rounds of one queue are serialised by a Coordinator (one process:
// LocalCoordinator; several nodes: a Redis lease, see Coordinator), the claims make concurrent
// rounds safe anyway.
package matchmaking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/realtime"
)

// Socket.IO events this package emits (EVENTS.md).
const (
	EventStatus    = "matchmaking:status"
	EventMatched   = "matchmaking:matched"
	EventCancelled = "matchmaking:cancelled"
	EventExpired   = "matchmaking:expired"
	EventError     = "matchmaking:error"
)

// MatchRoom is the room a subscribed socket joins: "match:<requestId>".
func MatchRoom(requestID string) string { return "match:" + requestID }

// Catalogue validates game and mode and gives the lobby shape (*games.Service).
type Catalogue interface {
	Mode(gameID, modeID string) (games.Mode, error)
}

// Lobbies is what the matcher needs from the lobby service.
type Lobbies interface {
	// CreateForMatch creates one lobby with all users as members (its chat included) and records
	// the match request ids on it. It fails (CONFLICT) when a user already sits in an open lobby.
	CreateForMatch(ctx context.Context, gameID, gameMode string, userIDs, matchRequestIDs []string) (lobbyID string, err error)
	// InOpenLobby reports whether the user sits in an open lobby.
	InOpenLobby(ctx context.Context, userID string) (bool, error)
}

// Options wire the service. Store, Games, Lobbies and Emitter are required.
type Options struct {
	Store   *models.Store
	Games   Catalogue
	Lobbies Lobbies
	Emitter realtime.Emitter
	// Events receives matchmaking.started / matched / cancelled; may be nil.
	Events events.Publisher
	// Coordinator; nil: a LocalCoordinator.
	Coordinator Coordinator
	Config      Config
	Logger      *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the matchmaking service and its matcher.
type Service struct {
	reqs    *models.MatchRequests
	games   Catalogue
	lobbies Lobbies
	emit    realtime.Emitter
	events  events.Publisher
	coord   Coordinator
	cfg     Config
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	lastSent map[string]sentStatus // request id → last status sent by this node's rounds

	runOnce sync.Once
	stop    chan struct{}
	done    chan struct{}
}

// New builds the service; it does not start the matcher (Run does).
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Games == nil || o.Lobbies == nil || o.Emitter == nil {
		return nil, errors.New("matchmaking: Store, Games, Lobbies and Emitter are required")
	}
	cfg := o.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Coordinator == nil {
		o.Coordinator = NewLocalCoordinator()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{reqs: models.NewMatchRequests(o.Store), games: o.Games, lobbies: o.Lobbies, emit: o.Emitter,
		events: o.Events, coord: o.Coordinator, cfg: cfg, log: o.Logger.With("component", "matchmaking"),
		now: o.Now, lastSent: map[string]sentStatus{}, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Config is the effective configuration (defaults applied).
func (s *Service) Config() Config { return s.cfg }

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// StartInput is the body of POST /api/matchmaking.
type StartInput struct {
	GameID   string         `json:"gameId"`
	GameMode string         `json:"gameMode"`
	Region   string         `json:"region"`
	Skill    *float64       `json:"skill"`
	Criteria map[string]any `json:"criteria"`
}

// validate checks the input and returns the normalised region, skill and criteria.
func (s *Service) validate(in StartInput) (games.Mode, string, float64, map[string]any, error) {
	fields := map[string]string{}
	if strings.TrimSpace(in.GameID) == "" {
		fields["gameId"] = "is required"
	}
	if strings.TrimSpace(in.GameMode) == "" {
		fields["gameMode"] = "is required"
	}
	region := strings.ToLower(strings.TrimSpace(in.Region))
	switch {
	case region == "":
		fields["region"] = "is required"
	case len(s.cfg.Regions) > 0 && !contains(s.cfg.Regions, region):
		fields["region"] = "must be one of " + strings.Join(s.cfg.Regions, ", ")
	case !regionRE.MatchString(region):
		fields["region"] = "must be 1..32 characters of a-z, 0-9 and '-'"
	}
	skill := s.cfg.DefaultSkill
	if in.Skill != nil {
		skill = *in.Skill
		if math.IsNaN(skill) || skill < s.cfg.SkillMin || skill > s.cfg.SkillMax {
			fields["skill"] = fmt.Sprintf("must be between %g and %g", s.cfg.SkillMin, s.cfg.SkillMax)
		}
	}
	crit, problem := s.normCriteria(in.Criteria)
	if problem != "" {
		fields["criteria"] = problem
	}
	if len(fields) > 0 {
		return games.Mode{}, "", 0, nil, errs.Validation("invalid matchmaking request", fields)
	}
	mode, err := s.games.Mode(in.GameID, in.GameMode)
	if err != nil {
		return games.Mode{}, "", 0, nil, err
	}
	return mode, region, skill, crit, nil
}

// normCriteria accepts up to MaxCriteria keys of 1..32 characters with scalar values (strings up to
// 64 characters, numbers, booleans); numbers become float64 so that values compare equal however
// they were stored.
func (s *Service) normCriteria(in map[string]any) (map[string]any, string) {
	if len(in) == 0 {
		return nil, ""
	}
	if len(in) > s.cfg.MaxCriteria {
		return nil, fmt.Sprintf("at most %d criteria", s.cfg.MaxCriteria)
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		if k == "" || len(k) > 32 || strings.ContainsAny(k, ".$") {
			return nil, "keys must be 1..32 characters without '.' or '$'"
		}
		switch x := v.(type) {
		case string:
			if len(x) > 64 {
				return nil, k + " must be at most 64 characters"
			}
			out[k] = x
		case bool:
			out[k] = x
		case float64:
			out[k] = x
		case int32:
			out[k] = float64(x)
		case int64:
			out[k] = float64(x)
		case int:
			out[k] = float64(x)
		default:
			return nil, k + " must be a string, number or boolean"
		}
	}
	return out, ""
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Start queues a request for userID. CONFLICT when the user already has an active request or sits
// in an open lobby.
//
// A retry after a failed start succeeds: a start whose write timed out may have been stored all the
// same (the client was answered 503), and its request, still pending, holds the user's active key.
// A pending request was never answered as started and never seen by the matcher, so a new start of
// the same user takes its place (takeOverPending) instead of answering CONFLICT until the matcher
// removes it after ClaimTimeout. (A start of the same user running at this very moment loses its
// request the same way and answers CONFLICT: the newer start wins.)
func (s *Service) Start(ctx context.Context, userID string, in StartInput) (*models.MatchRequest, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	_, region, skill, crit, err := s.validate(in)
	if err != nil {
		return nil, err
	}
	now := s.stamp()
	m := &models.MatchRequest{UserID: uid, GameID: in.GameID, GameMode: in.GameMode, Region: region, Skill: &skill,
		Criteria: crit, Status: models.MatchPending, ActiveKey: uid.Hex(), CreatedAt: now, UpdatedAt: now}
	err = s.reqs.Insert(ctx, m)
	if errs.Is(err, errs.CodeConflict) {
		var retry bool
		if retry, err = s.takeOverPending(ctx, uid, err); retry {
			m.ID = bson.ObjectID{}
			err = s.reqs.Insert(ctx, m)
		}
	}
	if err != nil {
		if errs.Is(err, errs.CodeConflict) {
			e := errs.Conflict("you are already searching for a match")
			if cur, cerr := s.reqs.ActiveByUser(ctx, uid); cerr == nil {
				e = e.WithDetails(map[string]any{"matchRequestId": cur.ID.Hex(), "status": cur.Status})
			}
			return nil, e
		}
		return nil, err
	}
	// The request is pending: it holds the user's active key, so no earlier request of the user can
	// be matched any more, but the matcher does not see it yet. A user whose earlier request was just
	// matched could only get here after that match stored its lobby, so the seat check below sees it.
	inLobby, err := s.lobbies.InOpenLobby(ctx, userID)
	if err != nil || inLobby {
		if derr := s.reqs.Delete(context.WithoutCancel(ctx), m.ID); derr != nil {
			s.log.Error("removing a refused match request failed", "requestId", m.ID.Hex(), "err", derr)
		}
		if err != nil {
			return nil, err
		}
		return nil, errs.Conflict("you are already in an open lobby")
	}
	m, err = s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchPending}},
		bson.M{"status": models.MatchSearching, "updatedAt": s.stamp()}, nil)
	if errs.Is(err, errs.CodeNotFound) { // a newer start of the user took its place (takeOverPending)
		return nil, errs.Conflict("this search was replaced by a newer start of the same user")
	}
	if err != nil {
		return nil, err
	}
	s.publish(ctx, events.MatchmakingStarted, StartedData{RequestID: m.ID.Hex(), UserID: userID, GameID: m.GameID,
		GameMode: m.GameMode, Region: m.Region, Skill: skill, CreatedAt: realtime.ISOTime(m.CreatedAt)})
	return m, nil
}

// takeOverPending handles an insert refused because the user holds an active request (conflict).
// retry is true when the insert may be tried again: the active request was pending and is removed
// now (left by a start whose answer was lost), or it finished in the meantime. Otherwise conflict is
// returned: the user really is searching (or being matched).
func (s *Service) takeOverPending(ctx context.Context, uid bson.ObjectID, conflict error) (retry bool, err error) {
	cur, err := s.reqs.ActiveByUser(ctx, uid)
	switch {
	case errs.Is(err, errs.CodeNotFound):
		return true, nil
	case err != nil:
		return false, err
	case cur.Status != models.MatchPending:
		return false, conflict
	}
	deleted, err := s.reqs.DeletePending(ctx, cur.ID)
	if err != nil {
		return false, err
	}
	if deleted {
		s.log.Info("a new start replaced a pending match request (a start whose answer was lost, or one running now)",
			"requestId", cur.ID.Hex(), "userId", uid.Hex(), "pendingSince", cur.CreatedAt)
	}
	return true, nil // not deleted: it became searching or was removed meanwhile; the insert tells which
}

// own loads requestID and checks userID owns it; other users' requests are NOT_FOUND.
func (s *Service) own(ctx context.Context, userID, requestID string) (*models.MatchRequest, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.Unauthorized("Invalid token")
	}
	id, ok := models.ParseID(requestID)
	if !ok {
		return nil, errs.NotFound("Match request not found")
	}
	m, err := s.reqs.ByID(ctx, id)
	if errs.Is(err, errs.CodeNotFound) || (err == nil && m.UserID != uid) {
		return nil, errs.NotFound("Match request not found")
	}
	return m, err
}

// Get is the owner's view of a request.
func (s *Service) Get(ctx context.Context, userID, requestID string) (View, error) {
	m, err := s.own(ctx, userID, requestID)
	if err != nil {
		return View{}, err
	}
	return s.view(m), nil
}

// ActiveRequest is the user's active request (pending, searching or matching), NOT_FOUND if none
// (for the lobby service: joining a lobby while searching).
func (s *Service) ActiveRequest(ctx context.Context, userID string) (*models.MatchRequest, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, errs.NotFound("no active match request")
	}
	return s.reqs.ActiveByUser(ctx, uid)
}

// Cancel stops a searching request of userID. NOT_FOUND for unknown or foreign requests, CONFLICT
// (details.status) when it is not searching any more (matched, being matched, cancelled, expired).
// The user's sockets get matchmaking:cancelled.
func (s *Service) Cancel(ctx context.Context, userID, requestID string) (*models.MatchRequest, error) {
	m, err := s.own(ctx, userID, requestID)
	if err != nil {
		return nil, err
	}
	now := s.stamp()
	m, err = s.reqs.Transition(ctx, m.ID, models.MatchFilter{From: []string{models.MatchSearching}},
		bson.M{"status": models.MatchCancelled, "cancelledAt": now, "updatedAt": now, "activeKey": m.ID.Hex(),
			"relaxationLevel": s.cfg.LevelAt(now.Sub(m.CreatedAt))}, nil)
	if errors.Is(err, models.ErrMatchStateChanged) {
		status := models.MatchCancelled
		if cur, cerr := s.reqs.ByID(ctx, mustID(requestID)); cerr == nil {
			status = cur.Status
		}
		return nil, errs.Conflict("Match request is not searching (status: " + status + ")").
			WithDetails(map[string]any{"status": status})
	}
	if err != nil {
		return nil, err
	}
	s.forget(m.ID.Hex())
	s.toUser(m.UserID.Hex(), EventCancelled, CancelledPayload{RequestID: m.ID.Hex(), CancelledAt: realtime.ISOTime(now)})
	s.publish(ctx, events.MatchmakingCanceled, CancelledData{RequestID: m.ID.Hex(), UserID: userID, GameID: m.GameID,
		GameMode: m.GameMode, Region: m.Region, CancelledAt: realtime.ISOTime(now)})
	return m, nil
}

func mustID(s string) bson.ObjectID { id, _ := models.ParseID(s); return id }

// Status is the current matchmaking:status of a request of userID. NOT_FOUND for unknown or foreign
// requests; CONFLICT (details.status) for finished ones (matched, cancelled, expired).
func (s *Service) Status(ctx context.Context, userID, requestID string) (StatusPayload, error) {
	m, err := s.own(ctx, userID, requestID)
	if err != nil {
		return StatusPayload{}, err
	}
	if !m.Active() {
		return StatusPayload{}, errs.Conflict("Match request is " + m.Status).WithDetails(map[string]any{"status": m.Status})
	}
	q := m.Queue()
	all, err := s.reqs.InQueue(ctx, q, models.MatchSearching)
	if err != nil {
		return StatusPayload{}, err
	}
	waits, err := s.reqs.RecentWaits(ctx, q, s.cfg.RecentWaits)
	if err != nil {
		return StatusPayload{}, err
	}
	cands := s.candidates(all)
	st := s.statusOf(candidateOf(s.cfg, m), cands, Estimate(waits, s.cfg.DefaultEstimate), s.now())
	return st, nil
}

func (s *Service) publish(ctx context.Context, name string, data any) {
	if s.events == nil {
		return
	}
	e, err := events.New(name, data)
	if err == nil {
		err = s.events.Publish(context.WithoutCancel(ctx), e)
	}
	if err != nil {
		s.log.Error("publish event failed", "event", name, "err", err)
	}
}

// toUser emits to every socket of the user (the sockets subscribed to match:<id> are among them:
// only the owner may subscribe, so emitting to both rooms would deliver twice).
func (s *Service) toUser(userID, event string, payload any) {
	if err := s.emit.ToRoom(realtime.UserRoom(userID)).Emit(event, payload); err != nil {
		s.log.Warn("emit failed", "event", event, "userId", userID, "err", err)
	}
}
