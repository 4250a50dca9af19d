// Package lobby runs game lobbies (EVENTS.md, Lobby; REST.md, /api/lobbies): create, join and leave
// for good, ready, kick, settings and capacity, start, close, idle timeout.
//
// Every change is read-modify-write on the lobby document through models.UpdateVersioned (version
// check + retry), so two members readying at once, a kick racing a leave or two joins racing for the
// last seat never lose an update or overfill a lobby. Only after the store accepted a change does the
// service emit the documented events to the room `lobby:<id>` and publish the internal lobby.* events.
//
// A user sits in at most one open (not closed) lobby: the user's seat in models.LobbySeatsCollection
// (keyed by user id) is claimed before the lobby lists the user and released after the user left.
package lobby

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/games"
	"github.com/maoga/maoga/services/realtime"
)

// Socket events the service emits (EVENTS.md, Lobby).
const (
	EventJoined        = "lobby:joined"
	EventUpdate        = "lobby:update"
	EventMemberJoined  = "lobby:member:joined"
	EventMemberLeft    = "lobby:member:left"
	EventMemberKicked  = "lobby:member:kicked"
	EventMemberReady   = "lobby:member:ready"
	EventReady         = "lobby:ready"
	EventHostChanged   = "lobby:host:changed"
	EventClosed        = "lobby:closed"
	EventKicked        = "lobby:kicked"
	KickedReason       = "You have been kicked from the lobby"
	ReasonEmpty        = "empty"        // lobby:closed: the last member left
	ReasonHostClosed   = "host_closed"  // lobby:closed: the host closed it
	ReasonIdleTimeout  = "idle_timeout" // lobby:closed: nothing changed for Options.IdleTimeout
	ReasonMemberLeft   = "left"         // lobby.member.left (internal): left for good
	ReasonMemberKicked = "kicked"       // lobby.member.left (internal): kicked by the host
)

// Visibility values of a lobby (stored and shown; there is no lobby listing yet).
const (
	VisibilityPublic  = "public"
	VisibilityPrivate = "private"
)

// Room is the socket room of a lobby.
func Room(lobbyID string) string { return "lobby:" + lobbyID }

// ChatRoom is the socket room of a lobby's chat (chat id "lobby:<id>", room "chat:<chatId>").
func ChatRoom(lobbyID string) string { return "chat:lobby:" + lobbyID }

// Limits on settings (PATCH /api/lobbies/:id, POST /api/lobbies).
const (
	MaxSettings         = 32
	MaxSettingKeyLen    = 64
	MaxSettingStringLen = 256
)

// UserLookup loads users for the names in events (*models.Users satisfies it).
type UserLookup interface {
	ByID(ctx context.Context, id bson.ObjectID) (*models.User, error)
}

// Catalogue resolves a game mode (*games.Service satisfies it).
type Catalogue interface {
	Mode(gameID, modeID string) (games.Mode, error)
}

// Options wire the service. Store, Games, Users and Emitter are required.
type Options struct {
	Store   *models.Store
	Games   Catalogue
	Users   UserLookup
	Emitter realtime.Emitter
	Events  events.Publisher // may be nil
	Logger  *slog.Logger
	// IdleTimeout closes a forming or ready lobby (reason idle_timeout) in which nothing happened for
	// this long: no change of the lobby and no message in its chat; default 30m, negative disables it.
	IdleTimeout time.Duration
	// ActiveTimeout is the same for a started (active) lobby, whose game is played elsewhere and may
	// run long without a change here: it only collects abandoned games; default 6h, negative disables.
	ActiveTimeout time.Duration
	// SweepInterval is how often Run looks for idle lobbies; default 1m.
	SweepInterval time.Duration
	// RetryInterval is how often Run retries seat releases that failed while the store was
	// unreachable; default 1s.
	RetryInterval time.Duration
	// UpdateAttempts bounds the retries of one versioned update; default 32.
	UpdateAttempts int
	// UncertainDelay is how long a seat waits after a lobby write whose outcome is unknown (timed out,
	// store gone, caller gone) before the lobby is read to decide whether to release it; default 3s.
	UncertainDelay time.Duration
	Now            func() time.Time
}

// Service is the lobby service.
type Service struct {
	o       Options
	lobbies *mongo.Collection
	seats   *mongo.Collection
	chats   *mongo.Collection // read only: the last message of a lobby's chat counts as activity
	log     *slog.Logger
	users   keyedMutex

	// pending: seat releases the store refused while unreachable, with when they were first tried;
	// Run retries them every RetryInterval.
	pendingMu sync.Mutex
	pending   map[seatRelease]time.Time
}

// New builds the service.
func New(o Options) *Service {
	if o.Store == nil || o.Games == nil || o.Users == nil || o.Emitter == nil {
		panic("lobby: New needs Store, Games, Users and Emitter")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.ActiveTimeout == 0 {
		o.ActiveTimeout = 6 * time.Hour
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.UncertainDelay <= 0 {
		o.UncertainDelay = 3 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.UpdateAttempts <= 0 {
		o.UpdateAttempts = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, lobbies: o.Store.Collection(models.LobbiesCollection),
		seats: o.Store.Collection(models.LobbySeatsCollection), chats: o.Store.Collection(models.ChatsCollection),
		log: o.Logger.With("component", "lobby")}
}

// now is the clock in the store's precision (milliseconds), so a lobby read back equals what was set.
func (s *Service) now() time.Time { return s.o.Now().UTC().Truncate(time.Millisecond) }

// CreateInput is the body of POST /api/lobbies.
type CreateInput struct {
	GameID     string           `json:"gameId"`
	GameMode   string           `json:"gameMode"`
	Capacity   *models.Capacity `json:"capacity"`
	Settings   map[string]any   `json:"settings"`
	Visibility string           `json:"visibility"`
}

// Create opens a lobby with the caller as host. CONFLICT when the caller already sits in an open lobby.
func (s *Service) Create(ctx context.Context, hostID string, in CreateInput) (*models.Lobby, error) {
	uid, ok := models.ParseID(hostID)
	if !ok {
		return nil, errs.Unauthorized("invalid user")
	}
	mode, err := s.o.Games.Mode(in.GameID, in.GameMode)
	if err != nil {
		return nil, err
	}
	capacity := mode.Capacity
	if in.Capacity != nil {
		if err := checkCapacity(*in.Capacity, mode, 1); err != nil {
			return nil, err
		}
		capacity = *in.Capacity
	}
	settings, err := mergeSettings(nil, in.Settings)
	if err != nil {
		return nil, err
	}
	switch in.Visibility {
	case "":
		in.Visibility = VisibilityPublic
	case VisibilityPublic, VisibilityPrivate:
	default:
		return nil, errs.Validation("invalid visibility", map[string]string{"visibility": "must be public or private"})
	}
	l := s.newLobby(in.GameID, in.GameMode, capacity, []bson.ObjectID{uid})
	l.Settings, l.Visibility = settings, in.Visibility
	if err := s.insert(ctx, l, []bson.ObjectID{uid}); err != nil {
		return nil, err
	}
	return l, nil
}

// CreateForMatch opens one lobby for a formed match: the first user is host, everyone is a joined
// member, capacity comes from the mode. CONFLICT (details.userIds) when one of them already sits in
// an open lobby; then nobody is seated.
func (s *Service) CreateForMatch(ctx context.Context, gameID, mode string, userIDs []string, matchRequestIDs []string) (*models.Lobby, error) {
	m, err := s.o.Games.Mode(gameID, mode)
	if err != nil {
		return nil, err
	}
	if len(userIDs) == 0 || len(userIDs) > m.Capacity.Max {
		return nil, errs.Validation(fmt.Sprintf("a match lobby holds 1..%d users", m.Capacity.Max), nil)
	}
	ids := make([]bson.ObjectID, 0, len(userIDs))
	seen := map[bson.ObjectID]bool{}
	for _, u := range userIDs {
		id, ok := models.ParseID(u)
		if !ok || seen[id] {
			return nil, errs.Validation("invalid or repeated user id "+u, nil)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	l := s.newLobby(gameID, mode, m.Capacity, ids)
	for _, r := range matchRequestIDs {
		id, ok := models.ParseID(r)
		if !ok {
			return nil, errs.Validation("invalid match request id "+r, nil)
		}
		l.MatchRequestIDs = append(l.MatchRequestIDs, id)
	}
	if err := s.insert(ctx, l, ids); err != nil {
		return nil, err
	}
	return l, nil
}

func (s *Service) newLobby(gameID, mode string, capacity models.Capacity, members []bson.ObjectID) *models.Lobby {
	now := s.now()
	l := &models.Lobby{ID: bson.NewObjectID(), GameID: gameID, GameMode: mode, HostID: members[0],
		Status: models.LobbyForming, Visibility: VisibilityPublic, Capacity: capacity,
		Members: map[string]*models.LobbyMember{}, CreatedAt: now, UpdatedAt: now}
	for i, id := range members {
		// Joined one millisecond apart, in the given order: "longest present" stays well defined.
		l.Members[id.Hex()] = &models.LobbyMember{UserID: id, IsHost: i == 0, Status: models.MemberJoined,
			JoinedAt: now.Add(time.Duration(i) * time.Millisecond)}
	}
	refresh(l)
	return l
}

// insert seats every member, then stores the lobby; nobody stays seated when it fails.
func (s *Service) insert(ctx context.Context, l *models.Lobby, members []bson.ObjectID) error {
	unlock := s.users.lock(hexes(members)...)
	defer unlock()
	var seated []bson.ObjectID
	release := func() {
		for _, id := range seated {
			s.releaseSeat(id, l.ID)
		}
	}
	var busy []string
	for _, id := range members {
		created, err := s.claimSeat(ctx, id, l.ID)
		if errs.Is(err, errs.CodeConflict) {
			busy = append(busy, id.Hex())
			continue
		}
		if err != nil {
			// The seat may be stored with its answer lost (store gone, or the caller cancelled by a
			// shutdown). The lobby id is new, so a seat in it can only be this call's: release it too.
			seated = append(seated, id)
			release()
			return err
		}
		if created {
			seated = append(seated, id)
		}
	}
	if len(busy) > 0 {
		release()
		return errs.Conflict("already in an open lobby").WithDetails(map[string]any{"userIds": busy})
	}
	if _, err := s.lobbies.InsertOne(ctx, l); err != nil {
		err = errs.Internal(fmt.Errorf("insert lobby: %w", err))
		for _, id := range seated {
			s.releaseSeatAfter(err, id, l.ID)
		}
		return err
	}
	s.publish(events.LobbyCreated, l, "", "")
	return nil
}

// Find loads a lobby without access checks (for other services: chat access, matchmaking).
// LOBBY_NOT_FOUND when there is none.
func (s *Service) Find(ctx context.Context, lobbyID string) (*models.Lobby, error) {
	id, ok := models.ParseID(lobbyID)
	if !ok {
		return nil, errNotFound()
	}
	var l models.Lobby
	if err := s.lobbies.FindOne(ctx, bson.M{"_id": id}).Decode(&l); err != nil {
		if models.IsNoDocuments(err) {
			return nil, errNotFound()
		}
		return nil, errs.Internal(err)
	}
	return &l, nil
}

// Get returns a lobby to one of its joined members: LOBBY_NOT_FOUND, ACCESS_DENIED for anyone else.
func (s *Service) Get(ctx context.Context, lobbyID, userID string) (*models.Lobby, error) {
	l, err := s.Find(ctx, lobbyID)
	if err != nil {
		return nil, err
	}
	if !IsJoined(l, userID) {
		return nil, errAccess()
	}
	return l, nil
}

// IsActiveMember reports whether userID is a joined member of the open lobby lobbyID (chat access:
// "lobby = active member"). A missing lobby is the error LOBBY_NOT_FOUND.
func (s *Service) IsActiveMember(ctx context.Context, lobbyID, userID string) (bool, error) {
	l, err := s.Find(ctx, lobbyID)
	if err != nil {
		return false, err
	}
	return IsJoined(l, userID), nil
}

// ActiveMemberIDs lists the joined members of lobbyID (hex ids, longest present first; empty for a
// closed lobby). A missing lobby is the error LOBBY_NOT_FOUND.
func (s *Service) ActiveMemberIDs(ctx context.Context, lobbyID string) ([]string, error) {
	l, err := s.Find(ctx, lobbyID)
	if err != nil {
		return nil, err
	}
	return hexes(l.ActiveMemberIDs), nil
}

// IsJoined reports whether userID is a joined member of l and l is open.
func IsJoined(l *models.Lobby, userID string) bool {
	m := l.Members[userID]
	return m != nil && m.Status == models.MemberJoined && l.Status != models.LobbyClosed
}

// OpenLobbyOf returns the open lobby the user sits in, nil when none.
func (s *Service) OpenLobbyOf(ctx context.Context, userID string) (*models.Lobby, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return nil, nil
	}
	var l models.Lobby
	err := s.lobbies.FindOne(ctx, bson.M{"activeMemberIds": uid, "status": bson.M{"$ne": models.LobbyClosed}}).Decode(&l)
	if models.IsNoDocuments(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Internal(err)
	}
	return &l, nil
}

// Subscribe is the check behind the socket event lobby:join: the lobby exists (LOBBY_NOT_FOUND), is
// open (JOIN_ERROR) and the caller is a joined member (ACCESS_DENIED).
func (s *Service) Subscribe(ctx context.Context, lobbyID, userID string) (*models.Lobby, error) {
	l, err := s.Find(ctx, lobbyID)
	if err != nil {
		return nil, err
	}
	if l.Status == models.LobbyClosed {
		return nil, errs.New(errs.CodeJoinError, "lobby is closed")
	}
	if !IsJoined(l, userID) {
		return nil, errAccess()
	}
	return l, nil
}

// Join makes the caller a member for good. JOIN_ERROR when the lobby is full, not forming/ready, the
// caller was kicked, or the caller already sits in another open lobby. Joining again is a no-op.
func (s *Service) Join(ctx context.Context, lobbyID, userID string) (*models.Lobby, error) {
	uid, lid, err := ids(userID, lobbyID)
	if err != nil {
		return nil, err
	}
	user, err := s.o.Users.ByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	defer s.users.lock(userID)()
	if _, err := s.Find(ctx, lobbyID); err != nil { // a missing lobby is LOBBY_NOT_FOUND, not a seat problem
		return nil, err
	}
	created, err := s.claimSeat(ctx, uid, lid)
	if errs.Is(err, errs.CodeConflict) {
		return nil, errs.New(errs.CodeJoinError, "you are already in another open lobby")
	}
	if err != nil {
		return nil, err
	}
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeJoinError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		m := l.Members[userID]
		switch {
		case l.Status == models.LobbyClosed || l.Status == models.LobbyActive:
			return false, errs.New(errs.CodeJoinError, "lobby is not open for joining")
		case m != nil && m.Status == models.MemberKicked:
			return false, errs.New(errs.CodeJoinError, "you were kicked from this lobby")
		case m != nil && m.Status == models.MemberJoined:
			return false, nil
		case len(l.ActiveMemberIDs) >= l.Capacity.Max:
			return false, errs.New(errs.CodeJoinError, "lobby is full")
		}
		l.Members[userID] = &models.LobbyMember{UserID: uid, Status: models.MemberJoined, JoinedAt: now}
		o.joined = true
		o.settle(l, now)
		return true, nil
	})
	if err != nil {
		if created {
			s.releaseSeatAfter(err, uid, lid)
		}
		return nil, err
	}
	if o.joined {
		id := l.ID.Hex()
		s.emit(Room(id), EventMemberJoined, map[string]any{"lobbyId": id,
			"user": map[string]any{"id": userID, "username": user.Username, "displayName": user.Name()}})
		s.afterChange(l, o)
		s.publish(events.LobbyMemberJoined, l, userID, "")
	}
	return l, nil
}

// Leave ends the caller's membership for good. The longest-present member becomes host when the host
// leaves; the lobby closes when the last member leaves. ACCESS_DENIED for non-members.
func (s *Service) Leave(ctx context.Context, lobbyID, userID string) error {
	uid, lid, err := ids(userID, lobbyID)
	if err != nil {
		return err
	}
	user, err := s.o.Users.ByID(ctx, uid)
	if err != nil {
		return err
	}
	defer s.users.lock(userID)()
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeLobbyError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if !IsJoined(l, userID) {
			return false, errAccess()
		}
		o.removeMember(l, userID, models.MemberLeft, now)
		return true, nil
	})
	if err != nil {
		return err
	}
	s.releaseSeat(uid, lid)
	id := l.ID.Hex()
	// The user's sockets stop following the lobby they left. When they were the last member the lobby
	// closes: their sockets stay in the room until lobby:closed reached them (afterChange then empties
	// the room), so the leaver's other tabs learn that the lobby is gone.
	if o.closed == "" {
		s.leaveRooms(realtime.UserRoom(userID), id)
	}
	s.emit(Room(id), EventMemberLeft, map[string]any{"lobbyId": id,
		"user": map[string]any{"id": userID, "username": user.Username}})
	s.afterChange(l, o)
	s.publish(events.LobbyMemberLeft, l, userID, ReasonMemberLeft)
	return nil
}

// Kick removes a member (host only): NOT_HOST for other members, ACCESS_DENIED for outsiders,
// LOBBY_ERROR when the lobby is closed, KICK_ERROR when the target is the host or not a joined member. The kicked user's sockets leave the
// lobby and lobby-chat rooms on every node and cannot rejoin.
func (s *Service) Kick(ctx context.Context, lobbyID, hostID, targetID string) (*models.Lobby, error) {
	tid, lid, err := ids(targetID, lobbyID)
	if err != nil {
		if errs.Is(err, errs.CodeValidation) {
			return nil, errs.New(errs.CodeKickError, "no such member")
		}
		return nil, err
	}
	defer s.users.lock(targetID)()
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeKickError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if l.Status == models.LobbyClosed {
			return false, errs.New(errs.CodeLobbyError, "lobby is closed")
		}
		if !IsJoined(l, hostID) {
			return false, errAccess()
		}
		if l.HostID.Hex() != hostID {
			return false, errs.New(errs.CodeNotHost, "only the host can kick members")
		}
		if targetID == hostID {
			return false, errs.New(errs.CodeKickError, "the host cannot kick themselves")
		}
		if !IsJoined(l, targetID) {
			return false, errs.New(errs.CodeKickError, "user is not a member of this lobby")
		}
		o.removeMember(l, targetID, models.MemberKicked, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.releaseSeat(tid, lid)
	id := l.ID.Hex()
	s.leaveRooms(realtime.UserRoom(targetID), id)
	s.emit(Room(id), EventMemberKicked, map[string]any{"lobbyId": id, "userId": targetID})
	s.emit(realtime.UserRoom(targetID), EventKicked, map[string]any{"lobbyId": id, "reason": KickedReason})
	s.afterChange(l, o)
	s.publish(events.LobbyMemberLeft, l, targetID, ReasonMemberKicked)
	return l, nil
}

// SetReady sets the caller's ready flag. When every joined member is ready and there are at least
// capacity.min of them the lobby becomes ready (lobby:ready); un-readying goes back to forming.
// READY_ERROR when the lobby is active or closed, LOBBY_ERROR for non-members (as the documents).
func (s *Service) SetReady(ctx context.Context, lobbyID, userID string, isReady bool) (*models.Lobby, error) {
	uid, lid, err := ids(userID, lobbyID)
	if err != nil {
		return nil, err
	}
	user, err := s.o.Users.ByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeReadyError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if l.Status != models.LobbyForming && l.Status != models.LobbyReady {
			return false, errs.New(errs.CodeReadyError, "lobby is "+l.Status)
		}
		if !IsJoined(l, userID) { // the documents' lobby:ready answers LOBBY_ERROR here
			return false, errs.New(errs.CodeLobbyError, "you are not a member of this lobby")
		}
		m := l.Members[userID]
		if m.ReadyStatus == isReady {
			return false, nil
		}
		m.ReadyStatus = isReady
		o.touched = true
		o.settle(l, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if o.changed() {
		id := l.ID.Hex()
		s.emit(Room(id), EventMemberReady, map[string]any{"lobbyId": id,
			"user": map[string]any{"id": userID, "username": user.Username}, "isReady": isReady})
		s.afterChange(l, o)
	}
	return l, nil
}

// UpdateInput is the body of PATCH /api/lobbies/:id. Settings are merged key by key (null removes a
// key); capacity must stay within the mode's bounds and hold the joined members.
type UpdateInput struct {
	Settings map[string]any   `json:"settings"`
	Capacity *models.Capacity `json:"capacity"`
}

// Update changes settings and capacity (host only: NOT_HOST; LOBBY_ERROR unless forming or ready).
func (s *Service) Update(ctx context.Context, lobbyID, userID string, in UpdateInput) (*models.Lobby, error) {
	_, lid, err := ids(userID, lobbyID)
	if err != nil {
		return nil, err
	}
	if in.Settings == nil && in.Capacity == nil {
		return nil, errs.Validation("nothing to change", map[string]string{"settings": "or capacity is required"})
	}
	if _, err := mergeSettings(nil, in.Settings); err != nil { // refuse bad input before touching the store
		return nil, err
	}
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeLobbyError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if err := s.hostOfOpen(l, userID); err != nil {
			return false, err
		}
		if in.Capacity != nil {
			mode, err := s.o.Games.Mode(l.GameID, l.GameMode)
			if err != nil {
				return false, err
			}
			if err := checkCapacity(*in.Capacity, mode, len(l.ActiveMemberIDs)); err != nil {
				return false, err
			}
			l.Capacity = *in.Capacity
		}
		merged, err := mergeSettings(l.Settings, in.Settings)
		if err != nil {
			return false, err
		}
		l.Settings = merged
		o.settle(l, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterChange(l, o)
	return l, nil
}

// Start moves a ready lobby to active (host only: NOT_HOST; LOBBY_ERROR unless ready).
func (s *Service) Start(ctx context.Context, lobbyID, userID string) (*models.Lobby, error) {
	_, lid, err := ids(userID, lobbyID)
	if err != nil {
		return nil, err
	}
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeLobbyError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if err := s.hostOfOpen(l, userID); err != nil {
			return false, err
		}
		if l.Status != models.LobbyReady {
			return false, errs.New(errs.CodeLobbyError, "lobby is not ready (every member ready, at least capacity.min)")
		}
		l.Status, l.StartedAt = models.LobbyActive, &now
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterChange(l, o)
	return l, nil
}

// Close closes the lobby (host only: NOT_HOST; LOBBY_ERROR when already closed).
func (s *Service) Close(ctx context.Context, lobbyID, userID string) (*models.Lobby, error) {
	_, lid, err := ids(userID, lobbyID)
	if err != nil {
		return nil, err
	}
	var o outcome
	l, err := s.update(ctx, lid, errs.CodeLobbyError, func(l *models.Lobby, now time.Time) (bool, error) {
		o = outcome{}
		if !IsJoined(l, userID) {
			if l.Status == models.LobbyClosed {
				return false, errs.New(errs.CodeLobbyError, "lobby is closed")
			}
			return false, errAccess()
		}
		if l.HostID.Hex() != userID {
			return false, errs.New(errs.CodeNotHost, "only the host can close the lobby")
		}
		o.close(l, ReasonHostClosed, now)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.afterChange(l, o)
	return l, nil
}

// CloseIdle closes every open lobby in which nothing happened since before its cutoff (now-IdleTimeout,
// or now-ActiveTimeout for a started lobby) and returns how many it closed. Activity is a change of the
// lobby (updatedAt) or a message in its chat (the chat's lastMessageAt).
func (s *Service) CloseIdle(ctx context.Context) (int, error) {
	now := s.now()
	cutoffOf := func(status string) (time.Time, bool) {
		d := s.o.IdleTimeout
		if status == models.LobbyActive {
			d = s.o.ActiveTimeout
		}
		return now.Add(-d), d >= 0
	}
	oldest, any := time.Time{}, false
	for _, st := range []string{models.LobbyForming, models.LobbyActive} {
		if c, ok := cutoffOf(st); ok && (!any || c.After(oldest)) {
			oldest, any = c, true
		}
	}
	if !any {
		return 0, nil
	}
	cur, err := s.lobbies.Find(ctx, bson.M{"status": bson.M{"$ne": models.LobbyClosed}, "updatedAt": bson.M{"$lt": oldest}})
	if err != nil {
		return 0, errs.Internal(err)
	}
	var stale []models.Lobby
	if err := cur.All(ctx, &stale); err != nil {
		return 0, errs.Internal(err)
	}
	closed := 0
	for _, st := range stale {
		cutoff, ok := cutoffOf(st.Status)
		if !ok || !st.UpdatedAt.Before(cutoff) {
			continue
		}
		if talked, err := s.chatActiveSince(ctx, st.ID, cutoff); err != nil || talked {
			if err != nil {
				s.log.Error("idle lobby sweep: reading the lobby chat failed", "lobbyId", st.ID.Hex(), "err", err)
			}
			continue
		}
		var o outcome
		l, err := s.update(ctx, st.ID, errs.CodeLobbyError, func(l *models.Lobby, now time.Time) (bool, error) {
			o = outcome{}
			c, ok := cutoffOf(l.Status)
			if l.Status == models.LobbyClosed || !ok || !l.UpdatedAt.Before(c) {
				return false, nil // changed meanwhile: not idle
			}
			o.close(l, ReasonIdleTimeout, now)
			return true, nil
		})
		if err != nil {
			s.log.Error("closing idle lobby failed", "lobbyId", st.ID.Hex(), "err", err)
			continue
		}
		if o.closed != "" {
			closed++
			s.afterChange(l, o)
		}
	}
	return closed, nil
}

// chatActiveSince reports whether the lobby's chat got a message at or after t.
func (s *Service) chatActiveSince(ctx context.Context, lobbyID bson.ObjectID, t time.Time) (bool, error) {
	n, err := s.chats.CountDocuments(ctx, bson.M{"_id": models.LobbyChatID(lobbyID.Hex()), "lastMessageAt": bson.M{"$gte": t}})
	return n > 0, err
}

// Run closes idle lobbies every SweepInterval (unless IdleTimeout and ActiveTimeout are both
// negative) and retries failed seat releases every RetryInterval, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.o.SweepInterval)
	defer t.Stop()
	if s.o.IdleTimeout < 0 && s.o.ActiveTimeout < 0 {
		t.Stop()
	}
	retry := time.NewTicker(s.o.RetryInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			if s.PendingReleases() > 0 {
				s.retryReleases(ctx)
			}
		case <-t.C:
			if n, err := s.CloseIdle(ctx); err != nil && ctx.Err() == nil {
				if errs.IsUnavailable(err) { // the store logs its outage once
					s.log.Debug("idle lobby sweep skipped: store unavailable", "err", err)
				} else {
					s.log.Error("idle lobby sweep failed", "err", err)
				}
			} else if n > 0 {
				s.log.Info("closed idle lobbies", "count", n)
			}
		}
	}
}

// StartSweeper runs Run in a goroutine; the returned func stops it and waits.
func (s *Service) StartSweeper() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

func (s *Service) hostOfOpen(l *models.Lobby, userID string) error {
	if !IsJoined(l, userID) {
		if l.Status == models.LobbyClosed {
			return errs.New(errs.CodeLobbyError, "lobby is closed")
		}
		return errAccess()
	}
	if l.HostID.Hex() != userID {
		return errs.New(errs.CodeNotHost, "only the host can do this")
	}
	if l.Status != models.LobbyForming && l.Status != models.LobbyReady {
		return errs.New(errs.CodeLobbyError, "lobby is "+l.Status)
	}
	return nil
}

// update is a versioned read-modify-write of one lobby. change mutates l in place and says whether it
// changed anything; the whole mutable state is then written conditionally on the version read. A lost
// race is retried (Options.UpdateAttempts); running out of attempts is busyCode.
func (s *Service) update(ctx context.Context, id bson.ObjectID, busyCode string,
	change func(l *models.Lobby, now time.Time) (bool, error)) (*models.Lobby, error) {
	l, err := models.UpdateVersioned[models.Lobby](ctx, s.lobbies, id, s.o.UpdateAttempts,
		func(l *models.Lobby) (bson.M, error) {
			now := s.now()
			changed, err := change(l, now)
			if err != nil || !changed {
				return nil, err
			}
			l.UpdatedAt = now
			refresh(l)
			return stateUpdate(l), nil
		})
	switch {
	case err == nil:
		return l, nil
	case errs.Is(err, errs.CodeNotFound):
		return nil, errNotFound()
	case errors.Is(err, models.ErrConcurrentUpdate):
		return nil, errs.Wrap(busyCode, "the lobby is busy, try again", err)
	}
	return nil, err
}

// stateUpdate writes every field a lobby change may touch.
func stateUpdate(l *models.Lobby) bson.M {
	set := bson.M{"members": l.Members, "activeMemberIds": l.ActiveMemberIDs, "hostId": l.HostID,
		"status": l.Status, "capacity": l.Capacity, "updatedAt": l.UpdatedAt}
	unset := bson.M{}
	opt := func(name string, t *time.Time) {
		if t != nil {
			set[name] = *t
		} else {
			unset[name] = ""
		}
	}
	opt("readyAt", l.ReadyAt)
	opt("startedAt", l.StartedAt)
	opt("closedAt", l.ClosedAt)
	if len(l.Settings) > 0 {
		set["settings"] = l.Settings
	} else {
		unset["settings"] = ""
	}
	u := bson.M{"$set": set}
	if len(unset) > 0 {
		u["$unset"] = unset
	}
	return u
}

// refresh derives activeMemberIds and the isHost flags from members and hostId.
func refresh(l *models.Lobby) {
	l.ActiveMemberIDs = l.ActiveMemberIDs[:0]
	for _, m := range membersByAge(l) {
		m.IsHost = m.UserID == l.HostID && m.Status == models.MemberJoined
		if m.Status == models.MemberJoined && l.Status != models.LobbyClosed {
			l.ActiveMemberIDs = append(l.ActiveMemberIDs, m.UserID)
		}
	}
	if l.ActiveMemberIDs == nil {
		l.ActiveMemberIDs = []bson.ObjectID{}
	}
}

// outcome records what one change did, for the events sent after it was stored.
type outcome struct {
	touched     bool // SetReady: the flag changed
	joined      bool
	becameReady bool
	newHost     string
	closed      string // reason, "" when still open
}

func (o *outcome) changed() bool { return o.touched }

// settle moves forming ↔ ready: ready when every joined member is ready and there are at least
// capacity.min of them.
func (o *outcome) settle(l *models.Lobby, now time.Time) {
	if l.Status != models.LobbyForming && l.Status != models.LobbyReady {
		return
	}
	n, all := 0, true
	for _, m := range l.Members {
		if m.Status == models.MemberJoined {
			n++
			all = all && m.ReadyStatus
		}
	}
	ready := all && n > 0 && n >= l.Capacity.Min
	switch {
	case ready && l.Status == models.LobbyForming:
		l.Status, l.ReadyAt = models.LobbyReady, &now
		o.becameReady = true
	case !ready && l.Status == models.LobbyReady:
		l.Status, l.ReadyAt = models.LobbyForming, nil
	}
}

// removeMember marks userID left or kicked, hands the host role on, closes an empty lobby.
func (o *outcome) removeMember(l *models.Lobby, userID, status string, now time.Time) {
	m := l.Members[userID]
	m.Status, m.LeftAt, m.ReadyStatus, m.IsHost = status, &now, false, false
	var next *models.LobbyMember
	for _, c := range membersByAge(l) {
		if c.Status == models.MemberJoined {
			next = c
			break
		}
	}
	if next == nil {
		o.close(l, ReasonEmpty, now)
		return
	}
	if l.HostID.Hex() == userID {
		l.HostID = next.UserID
		o.newHost = next.UserID.Hex()
	}
	o.settle(l, now)
}

func (o *outcome) close(l *models.Lobby, reason string, now time.Time) {
	l.Status, l.ClosedAt, l.ReadyAt = models.LobbyClosed, &now, nil
	o.closed = reason
}

// afterChange sends what every stored change sends: host change, ready, update, closed (in that order).
func (s *Service) afterChange(l *models.Lobby, o outcome) {
	id := l.ID.Hex()
	room := Room(id)
	if o.newHost != "" {
		s.emit(room, EventHostChanged, map[string]any{"lobbyId": id, "hostId": o.newHost})
	}
	if o.becameReady && l.ReadyAt != nil {
		s.emit(room, EventReady, map[string]any{"lobbyId": id, "readyAt": realtime.ISOTime(*l.ReadyAt)})
	}
	v := NewView(l)
	s.emit(room, EventUpdate, map[string]any{"lobbyId": id, "update": v})
	s.publish(events.LobbyUpdated, l, "", "")
	if o.closed != "" {
		s.dropSeats(seatRelease{lobby: l.ID})
		s.emit(room, EventClosed, map[string]any{"lobbyId": id, "reason": o.closed})
		s.leaveRooms(room, id)
		s.publish(events.LobbyClosed, l, "", o.closed)
	}
}

// leaveRooms makes the sockets of room (a user room or the lobby room) leave the lobby and its chat.
func (s *Service) leaveRooms(room, lobbyID string) {
	if err := s.o.Emitter.ToRoom(room).SocketsLeave(Room(lobbyID), ChatRoom(lobbyID)); err != nil {
		s.log.Error("making sockets leave the lobby rooms failed", "room", room, "lobbyId", lobbyID, "err", err)
	}
}

func (s *Service) emit(room, event string, payload any) {
	if err := s.o.Emitter.ToRoom(room).Emit(event, payload); err != nil {
		s.log.Error("emit failed", "room", room, "event", event, "err", err)
	}
}

// EventData is the payload of the internal lobby.* events.
type EventData struct {
	LobbyID         string   `json:"lobbyId"`
	GameID          string   `json:"gameId"`
	GameMode        string   `json:"gameMode"`
	Status          string   `json:"status"`
	HostID          string   `json:"hostId"`
	MemberIDs       []string `json:"memberIds"`                 // joined members now
	UserID          string   `json:"userId,omitempty"`          // lobby.member.joined/left: who
	Reason          string   `json:"reason,omitempty"`          // lobby.member.left: left|kicked; lobby.closed: why
	MatchRequestIDs []string `json:"matchRequestIds,omitempty"` // lobby.created by matchmaking
}

func (s *Service) publish(name string, l *models.Lobby, userID, reason string) {
	if s.o.Events == nil {
		return
	}
	d := EventData{LobbyID: l.ID.Hex(), GameID: l.GameID, GameMode: l.GameMode, Status: l.Status,
		HostID: l.HostID.Hex(), MemberIDs: hexes(l.ActiveMemberIDs), UserID: userID, Reason: reason,
		MatchRequestIDs: hexes(l.MatchRequestIDs)}
	e, err := events.New(name, d)
	if err == nil {
		err = s.o.Events.Publish(context.Background(), e)
	}
	if err != nil {
		s.log.Error("publish failed", "event", name, "lobbyId", d.LobbyID, "err", err)
	}
}

// claimSeat records that uid sits in lobby lid. created is false when the seat already was there for
// the same lobby. CONFLICT when uid sits in another open lobby. A seat whose lobby no longer lists the
// user (a crash between the two writes) is taken over once it is older than seatGrace.
func (s *Service) claimSeat(ctx context.Context, uid, lid bson.ObjectID) (created bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		unlock := models.LockDoc(models.LobbySeatsCollection, uid)
		_, err := s.seats.InsertOne(ctx, models.LobbySeat{UserID: uid, LobbyID: lid, CreatedAt: s.now()})
		unlock()
		if err == nil {
			return true, nil
		}
		if !models.IsDuplicateKey(err) {
			return false, errs.Internal(fmt.Errorf("claim seat: %w", err))
		}
		var seat models.LobbySeat
		if err := s.seats.FindOne(ctx, bson.M{"_id": uid}).Decode(&seat); err != nil {
			if models.IsNoDocuments(err) {
				continue // released meanwhile
			}
			return false, errs.Internal(err)
		}
		if seat.LobbyID == lid {
			return false, nil
		}
		if s.now().Sub(seat.CreatedAt) < seatGrace {
			return false, errs.Conflict("already in an open lobby")
		}
		other, err := s.Find(ctx, seat.LobbyID.Hex())
		if err != nil && !errs.Is(err, errs.CodeLobbyNotFound) {
			return false, err
		}
		if other != nil && IsJoined(other, uid.Hex()) {
			return false, errs.Conflict("already in an open lobby")
		}
		s.log.Warn("taking over a stale lobby seat", "userId", uid.Hex(), "lobbyId", seat.LobbyID.Hex())
		if err := s.deleteSeat(ctx, uid, seat.LobbyID); err != nil {
			return false, err
		}
	}
	return false, errs.Conflict("already in an open lobby")
}

// ReleaseStaleSeats deletes the seats older than minAge whose lobby does not list their user as a
// joined member of an open lobby (a process died between claiming a seat and storing the lobby, or
// between a leave and its release) and returns how many. With minAge 0 it trusts no seat in flight:
// only for a store no other process writes (the embedded store at start-up, before serving);
// otherwise pass seatGrace or more. claimSeat takes such seats over anyway after seatGrace; releasing
// them at start-up spares their users that minute.
func (s *Service) ReleaseStaleSeats(ctx context.Context, minAge time.Duration) (int, error) {
	cur, err := s.seats.Find(ctx, bson.M{"createdAt": bson.M{"$lte": s.now().Add(-minAge)}})
	if err != nil {
		return 0, errs.Internal(err)
	}
	var seats []models.LobbySeat
	if err := cur.All(ctx, &seats); err != nil {
		return 0, errs.Internal(err)
	}
	n := 0
	for _, seat := range seats {
		l, err := s.Find(ctx, seat.LobbyID.Hex())
		if err != nil && !errs.Is(err, errs.CodeLobbyNotFound) {
			return n, err
		}
		if l != nil && IsJoined(l, seat.UserID.Hex()) {
			continue
		}
		if err := s.deleteSeat(ctx, seat.UserID, seat.LobbyID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// seatGrace is how long a fresh seat is trusted without its lobby listing the user (the time between
// claiming the seat and storing the lobby).
const seatGrace = time.Minute

// releaseSeat frees uid's seat in lid (not a seat in another lobby). Runs even when ctx ended: a seat
// left behind would keep the user out of every lobby for seatGrace. When the store cannot be reached
// the release is kept and retried (see retryReleases) so that the user can play again soon after the
// store is back, not only once the seat is stale.
func (s *Service) releaseSeat(uid, lid bson.ObjectID) {
	s.dropSeats(seatRelease{user: uid, lobby: lid})
}

// releaseSeatAfter frees the seat claimed for a lobby write that failed with err. A refusal (the lobby
// is full, closed, ...) wrote nothing: the seat goes at once. Any other failure (timeout, store gone,
// caller gone) may still be applied by the store after we gave up on it; releasing the seat of a
// member stored that way let the user sit in a second open lobby (found by the soak test under
// overload). Such a seat is released only after UncertainDelay, once a read of the lobby shows the
// user is not a joined member (retryReleases); meanwhile the user gets "already in an open lobby".
func (s *Service) releaseSeatAfter(err error, uid, lid bson.ObjectID) {
	if !uncertain(err) {
		s.releaseSeat(uid, lid)
		return
	}
	s.keepRelease(seatRelease{user: uid, lobby: lid, verify: true})
}

// keepRelease records r for retryReleases, with when it was first kept.
func (s *Service) keepRelease(r seatRelease) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = map[seatRelease]time.Time{}
	}
	if _, ok := s.pending[r]; !ok {
		s.pending[r] = s.now()
	}
}

// uncertain reports whether a failed write may have been applied anyway.
func uncertain(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	code := errs.CodeOf(err)
	return code == errs.CodeInternal || code == errs.CodeServiceUnavailable
}

// verifiedRelease performs a verify release: the seat goes unless the lobby lists the user as joined.
func (s *Service) verifiedRelease(ctx context.Context, r seatRelease) error {
	l, err := s.Find(ctx, r.lobby.Hex())
	if err != nil && !errs.Is(err, errs.CodeLobbyNotFound) {
		return err
	}
	if l != nil && IsJoined(l, r.user.Hex()) {
		return nil // the write landed: the seat is the member's
	}
	return s.deleteSeat(ctx, r.user, r.lobby)
}

// seatRelease names seats to delete: the user's seat in lobby, or every seat of lobby (zero user).
// verify: release only if the lobby, read once the write that failed has had time to land, does not
// list the user as joined.
type seatRelease struct {
	user, lobby bson.ObjectID
	verify      bool
}

// deleteSeats deletes the seats r names, one user's seat at a time (see deleteSeat).
func (s *Service) deleteSeats(ctx context.Context, r seatRelease) error {
	if !r.user.IsZero() {
		return s.deleteSeat(ctx, r.user, r.lobby)
	}
	cur, err := s.seats.Find(ctx, bson.M{"lobbyId": r.lobby})
	if err != nil {
		return errs.Internal(err)
	}
	var seats []models.LobbySeat
	if err := cur.All(ctx, &seats); err != nil {
		return errs.Internal(err)
	}
	for _, seat := range seats {
		if err := s.deleteSeat(ctx, seat.UserID, r.lobby); err != nil {
			return err
		}
	}
	return nil
}

// deleteSeat deletes uid's seat if it is still the one in lid, holding the seat's document lock: on
// the embedded store a delete reads the matching seats and then deletes by _id, so without the lock
// a release of the user's old seat racing the claim of a new one (same _id, another lobby) deleted
// the new seat, and the user sat in a lobby without a seat (found by the kill test's checker).
func (s *Service) deleteSeat(ctx context.Context, uid, lid bson.ObjectID) error {
	defer models.LockDoc(models.LobbySeatsCollection, uid)()
	if _, err := s.seats.DeleteOne(ctx, bson.M{"_id": uid, "lobbyId": lid}); err != nil {
		return errs.Internal(err)
	}
	return nil
}

// dropSeats deletes the seats r names; a failure is logged and, when the store is unreachable, kept
// for retryReleases.
func (s *Service) dropSeats(r seatRelease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.deleteSeats(ctx, r)
	if err == nil {
		return
	}
	if errs.IsUnavailable(err) {
		s.keepRelease(r)
		s.log.Warn("releasing lobby seats failed: store unavailable; retrying until it is back",
			"userId", hexOrEmpty(r.user), "lobbyId", r.lobby.Hex())
		return
	}
	s.log.Error("releasing lobby seats failed", "userId", hexOrEmpty(r.user), "lobbyId", r.lobby.Hex(), "err", err)
}

// retryReleases retries the seat releases the store refused while unreachable. A release older than
// seatGrace is given up: by then claimSeat takes the seat over anyway.
func (s *Service) retryReleases(ctx context.Context) {
	s.pendingMu.Lock()
	list := make([]seatRelease, 0, len(s.pending))
	for r, since := range s.pending {
		age := s.now().Sub(since)
		if age > seatGrace {
			delete(s.pending, r)
			continue
		}
		if r.verify && age < s.o.UncertainDelay {
			continue
		}
		list = append(list, r)
	}
	s.pendingMu.Unlock()
	for _, r := range list {
		if ctx.Err() != nil {
			return
		}
		var err error
		if r.verify {
			err = s.verifiedRelease(ctx, r)
		} else {
			err = s.deleteSeats(ctx, r)
		}
		if err != nil {
			if !errs.IsUnavailable(err) {
				s.log.Error("releasing lobby seats failed", "userId", hexOrEmpty(r.user), "lobbyId", r.lobby.Hex(), "err", err)
			}
			continue
		}
		s.pendingMu.Lock()
		delete(s.pending, r)
		s.pendingMu.Unlock()
	}
}

// PendingReleases is how many seat releases wait for the store (tests, diagnostics).
func (s *Service) PendingReleases() int {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return len(s.pending)
}

func hexOrEmpty(id bson.ObjectID) string {
	if id.IsZero() {
		return ""
	}
	return id.Hex()
}

func ids(userID, lobbyID string) (bson.ObjectID, bson.ObjectID, error) {
	uid, ok := models.ParseID(userID)
	if !ok {
		return uid, uid, errs.Validation("invalid user id", map[string]string{"userId": "is not a valid id"})
	}
	lid, ok := models.ParseID(lobbyID)
	if !ok {
		return uid, lid, errNotFound()
	}
	return uid, lid, nil
}

func hexes(ids []bson.ObjectID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.Hex())
	}
	return out
}

func errNotFound() error { return errs.New(errs.CodeLobbyNotFound, "Lobby not found") }
func errAccess() error {
	return errs.New(errs.CodeAccessDenied, "You do not have access to this lobby")
}

// checkCapacity: mode.min ≤ min ≤ max ≤ mode.max, and max holds the members already joined.
func checkCapacity(c models.Capacity, mode games.Mode, members int) error {
	if c.Min < mode.Capacity.Min || c.Max > mode.Capacity.Max || c.Min > c.Max {
		return errs.Validation(fmt.Sprintf("capacity must satisfy %d ≤ min ≤ max ≤ %d", mode.Capacity.Min, mode.Capacity.Max),
			map[string]string{"capacity": "is out of the mode's bounds"})
	}
	if c.Max < members {
		return errs.New(errs.CodeLobbyError, fmt.Sprintf("capacity.max %d is below the %d members", c.Max, members))
	}
	return nil
}

// mergeSettings applies patch to cur (nil value removes a key). Keys: 1..64 characters, no '.' and no
// leading '$'; values: strings up to 256 characters, numbers, booleans; at most MaxSettings keys.
func mergeSettings(cur, patch map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(cur)+len(patch))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range patch {
		if k == "" || len(k) > MaxSettingKeyLen || k[0] == '$' || containsDot(k) {
			return nil, errs.Validation("invalid setting name", map[string]string{"settings": "names are 1..64 characters without '.' or a leading '$'"})
		}
		switch x := v.(type) {
		case nil:
			delete(out, k)
			continue
		case string:
			if len([]rune(x)) > MaxSettingStringLen {
				return nil, errs.Validation("setting too long", map[string]string{"settings." + k: "is longer than 256 characters"})
			}
		case bool, float64, int, int32, int64:
		default:
			return nil, errs.Validation("invalid setting value", map[string]string{"settings." + k: "must be a string, number or boolean"})
		}
		out[k] = v
	}
	if len(out) > MaxSettings {
		return nil, errs.Validation("too many settings", map[string]string{"settings": fmt.Sprintf("at most %d", MaxSettings)})
	}
	return out, nil
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// keyedMutex serialises the seat + lobby writes of one user in this process (the seat's unique key
// keeps the rule across nodes; the lock keeps a leave's seat release from racing the same user's
// re-join here). Several keys are locked in sorted order, so two callers cannot deadlock.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(keys ...string) (unlock func()) {
	keys = sortedUnique(keys)
	held := make([]*keyLock, 0, len(keys))
	for _, key := range keys {
		k.mu.Lock()
		if k.locks == nil {
			k.locks = map[string]*keyLock{}
		}
		l := k.locks[key]
		if l == nil {
			l = &keyLock{}
			k.locks[key] = l
		}
		l.refs++
		k.mu.Unlock()
		l.mu.Lock()
		held = append(held, l)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].mu.Unlock()
			k.mu.Lock()
			held[i].refs--
			if held[i].refs == 0 {
				delete(k.locks, keys[i])
			}
			k.mu.Unlock()
		}
	}
}

func sortedUnique(keys []string) []string {
	out := append([]string(nil), keys...)
	sort.Strings(out)
	j := 0
	for i, k := range out {
		if i == 0 || k != out[j-1] {
			out[j] = k
			j++
		}
	}
	return out[:j]
}
