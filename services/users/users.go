// Package users serves profiles: the caller's own account (me), edits of it, and other users' public
// profiles with their live presence status. It also stores what presence learns (lastActive) and
// announces a login to the user's friends.
package users

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
	"github.com/maoga/maoga/services/realtime"
)

// StatusLookup is the read half of presence.Service.
type StatusLookup interface {
	Status(ctx context.Context, userID string) (string, error)
	Statuses(ctx context.Context, userIDs []string) (map[string]string, error)
}

// UnsavedPresence is a presence change accepted but not yet stored (presence.SaveQueue writes
// behind): the status and latest non-zero lastActive of userID's pending write, ok false when none.
type UnsavedPresence interface {
	Unsaved(userID string) (status string, lastActive time.Time, ok bool)
}

// FriendLister lists a user's accepted friends (friends.Service).
type FriendLister interface {
	FriendIDs(ctx context.Context, userID string) ([]string, error)
}

// Options wires the service. Store is required; the others may be nil (then the feature is off:
// no status → "offline", no emitter → login is not announced).
type Options struct {
	Store    *models.Store
	Presence StatusLookup
	// Unsaved, when set, is overlaid on the stored user: reads see presence writes still queued.
	Unsaved UnsavedPresence
	Friends FriendLister
	Emitter realtime.Emitter
	Events  events.Publisher
	Logger  *slog.Logger
	Now     func() time.Time
	// LoginGrace is how long a REST login counts as online without a socket: a user who logged in
	// and never connected is announced offline again after it. Default 1m.
	LoginGrace time.Duration
}

// Service is the users service.
type Service struct {
	users   *models.Users
	refresh *models.RefreshTokens
	o       Options

	mu     sync.Mutex
	graces map[*time.Timer]struct{} // pending LoginGrace checks, stopped by Close
	closed bool
}

// New builds the service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LoginGrace <= 0 {
		o.LoginGrace = time.Minute
	}
	return &Service{users: models.NewUsers(o.Store), refresh: models.NewRefreshTokens(o.Store), o: o,
		graces: map[*time.Timer]struct{}{}}
}

// Close stops the pending login-grace checks (at shutdown, before the store closes).
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for t := range s.graces {
		t.Stop()
	}
	clear(s.graces)
}

// SetPresence/SetFriends/SetEmitter complete the wiring where the dependencies are built later.
func (s *Service) SetPresence(p StatusLookup)    { s.o.Presence = p }
func (s *Service) SetUnsaved(u UnsavedPresence)  { s.o.Unsaved = u }
func (s *Service) SetFriends(f FriendLister)     { s.o.Friends = f }
func (s *Service) SetEmitter(e realtime.Emitter) { s.o.Emitter = e }

// View is the caller's own account as JSON (never the password hash).
type View struct {
	ID            string  `json:"id"`
	Username      string  `json:"username"`
	Email         string  `json:"email"`
	DisplayName   string  `json:"displayName"`
	Bio           string  `json:"bio"`
	AvatarURL     string  `json:"avatarUrl"`
	AccountStatus string  `json:"accountStatus"`
	Status        string  `json:"status"`
	LastActive    *string `json:"lastActive"`
	CreatedAt     string  `json:"createdAt"`
	UpdatedAt     string  `json:"updatedAt"`
}

// PublicView is what other users see.
type PublicView struct {
	ID          string  `json:"id"`
	Username    string  `json:"username"`
	DisplayName string  `json:"displayName"`
	Bio         string  `json:"bio"`
	AvatarURL   string  `json:"avatarUrl"`
	Status      string  `json:"status"`
	LastActive  *string `json:"lastActive"`
	CreatedAt   string  `json:"createdAt"`
}

// NewView renders u for its owner.
func NewView(u *models.User) View {
	return View{ID: u.ID.Hex(), Username: u.Username, Email: u.Email, DisplayName: u.DisplayName, Bio: u.Bio,
		AvatarURL: u.AvatarURL, AccountStatus: u.AccountStatus, Status: u.Status, LastActive: isoPtr(u.LastActive),
		CreatedAt: realtime.ISOTime(u.CreatedAt), UpdatedAt: realtime.ISOTime(u.UpdatedAt)}
}

// NewPublicView renders u for others with its live status.
func NewPublicView(u *models.User, status string) PublicView {
	return PublicView{ID: u.ID.Hex(), Username: u.Username, DisplayName: u.DisplayName, Bio: u.Bio,
		AvatarURL: u.AvatarURL, Status: status, LastActive: isoPtr(u.LastActive), CreatedAt: realtime.ISOTime(u.CreatedAt)}
}

func isoPtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := realtime.ISOTime(*t)
	return &s
}

// parseUserID turns a path/body id into an ObjectID; a malformed id names no user.
func parseUserID(id string) (bson.ObjectID, error) {
	oid, ok := models.ParseID(id)
	if !ok {
		return oid, errs.NotFound("user not found")
	}
	return oid, nil
}

// Me is the caller's account.
func (s *Service) Me(ctx context.Context, userID string) (*models.User, error) {
	oid, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	u, err := s.users.ByID(ctx, oid)
	if err != nil {
		return nil, err
	}
	s.ApplyUnsaved(u)
	return u, nil
}

// ApplyUnsaved puts u's presence change not yet stored (Options.Unsaved) on u as loaded from the
// store, for every reader that shows a stored user (Me, Get, Profile, the friends list).
func (s *Service) ApplyUnsaved(u *models.User) {
	if s.o.Unsaved == nil {
		return
	}
	if st, at, ok := s.o.Unsaved.Unsaved(u.ID.Hex()); ok {
		u.Status = st
		if !at.IsZero() {
			u.LastActive = &at
		}
	}
}

// Get loads any user (NOT_FOUND for a malformed or unknown id).
func (s *Service) Get(ctx context.Context, userID string) (*models.User, error) {
	return s.Me(ctx, userID)
}

// Patch is the PATCH /api/users/me body; nil fields are left alone. Empty bio/avatarUrl clear them.
type Patch struct {
	DisplayName *string
	Bio         *string
	AvatarURL   *string
}

// Limits of the profile fields.
const (
	BioMax       = 500
	AvatarURLMax = 2048
)

// UpdateMe validates and applies p, then publishes user.profile.updated.
func (s *Service) UpdateMe(ctx context.Context, userID string, p Patch) (*models.User, error) {
	oid, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	set := bson.M{}
	if p.DisplayName != nil {
		v := strings.TrimSpace(*p.DisplayName)
		if msg := auth.ValidateDisplayName(v); msg != "" {
			fields["displayName"] = msg
		}
		set["displayName"] = v
	}
	if p.Bio != nil {
		v := strings.TrimSpace(*p.Bio)
		if utf8.RuneCountInString(v) > BioMax {
			fields["bio"] = "must be at most 500 characters"
		}
		set["bio"] = v
	}
	if p.AvatarURL != nil {
		v := strings.TrimSpace(*p.AvatarURL)
		if v != "" {
			u, err := url.Parse(v)
			switch {
			case len(v) > AvatarURLMax:
				fields["avatarUrl"] = "must be at most 2048 characters"
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				fields["avatarUrl"] = "must be an http(s) URL"
			}
		}
		set["avatarUrl"] = v
	}
	if len(fields) > 0 {
		return nil, errs.Validation("invalid profile", fields)
	}
	if len(set) == 0 {
		return s.users.ByID(ctx, oid)
	}
	u, err := s.users.Update(ctx, oid, set)
	if err != nil {
		return nil, err
	}
	if s.o.Events != nil {
		changed := make([]string, 0, len(set))
		for k := range set {
			changed = append(changed, k)
		}
		e, err := events.New(events.UserProfileUpdated, map[string]any{"userId": u.ID.Hex(), "fields": changed})
		if err == nil {
			err = s.o.Events.Publish(ctx, e)
		}
		if err != nil {
			s.o.Logger.Error("publish event failed", "event", events.UserProfileUpdated, "err", err)
		}
	}
	return u, nil
}

// Status is the user's live presence status ("offline" without a presence service).
func (s *Service) Status(ctx context.Context, userID string) (string, error) {
	if s.o.Presence == nil {
		return models.StatusOffline, nil
	}
	st, err := s.o.Presence.Status(ctx, userID)
	if err != nil {
		return "", errs.Internal(err)
	}
	return st, nil
}

// Statuses is Status for many users.
func (s *Service) Statuses(ctx context.Context, userIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(userIDs))
	if s.o.Presence == nil {
		for _, id := range userIDs {
			out[id] = models.StatusOffline
		}
		return out, nil
	}
	m, err := s.o.Presence.Statuses(ctx, userIDs)
	if err != nil {
		return nil, errs.Internal(err)
	}
	for _, id := range userIDs {
		if st, ok := m[id]; ok && st != "" {
			out[id] = st
		} else {
			out[id] = models.StatusOffline
		}
	}
	return out, nil
}

// Profile is the public profile of a user with status.
func (s *Service) Profile(ctx context.Context, userID string) (*PublicView, error) {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return nil, err
	}
	st, err := s.Status(ctx, userID)
	if err != nil {
		return nil, err
	}
	v := NewPublicView(u, st)
	return &v, nil
}

// SetLastActive implements presence.LastActiveSaver: the user's last socket closed at `at`.
func (s *Service) SetLastActive(ctx context.Context, userID string, at time.Time) error {
	oid, err := parseUserID(userID)
	if err != nil {
		return err
	}
	return s.users.SetPresence(ctx, oid, models.StatusOffline, at)
}

// UserLoggedIn implements auth.LoginHook: the documents' updateUserStatus(userId, 'online') at login.
// A user who has no socket yet (presence says offline) is stored as online and each friend's user room
// gets `user:status` online; a user already connected keeps the status their sockets set.
func (s *Service) UserLoggedIn(ctx context.Context, userID string) error {
	st, err := s.Status(ctx, userID)
	if err != nil {
		return err
	}
	if st != models.StatusOffline {
		return nil
	}
	oid, err := parseUserID(userID)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	if err := s.users.SetPresence(ctx, oid, models.StatusOnline, now); err != nil {
		return err
	}
	if s.o.Emitter == nil || s.o.Friends == nil {
		return nil
	}
	friends, err := s.o.Friends.FriendIDs(ctx, userID)
	if err != nil {
		return err
	}
	s.afterGrace(userID)
	return s.announce(friends, userID, models.StatusOnline, now)
}

// announce sends user:status to each friend's user room.
func (s *Service) announce(friends []string, userID, status string, at time.Time) error {
	payload := map[string]any{"userId": userID, "status": status, "updatedAt": realtime.ISOTime(at)}
	var firstErr error
	for _, f := range friends {
		if err := s.o.Emitter.ToRoom(realtime.UserRoom(f)).Emit("user:status", payload); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// afterGrace checks, LoginGrace after a login, that the user connected a socket; if not, the online
// of the login is taken back: stored offline with lastActive, and friends get user:status offline.
func (s *Service) afterGrace(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(s.o.LoginGrace, func() {
		s.mu.Lock()
		_, pending := s.graces[t]
		delete(s.graces, t)
		s.mu.Unlock()
		if !pending {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.expireLogin(ctx, userID); err != nil {
			s.o.Logger.Warn("taking back the online of a login without a socket failed", "userId", userID, "err", err)
		}
	})
	s.graces[t] = struct{}{}
}

func (s *Service) expireLogin(ctx context.Context, userID string) error {
	st, err := s.Status(ctx, userID)
	if err != nil || st != models.StatusOffline {
		return err // a socket is connected (anywhere in the cluster): presence owns the status now
	}
	oid, err := parseUserID(userID)
	if err != nil {
		return err
	}
	u, err := s.users.ByID(ctx, oid)
	if err != nil || u.Status == models.StatusOffline {
		return err // already offline (the user's socket came and went)
	}
	now := s.o.Now().UTC()
	if err := s.users.SetPresence(ctx, oid, models.StatusOffline, now); err != nil {
		return err
	}
	if s.o.Emitter == nil || s.o.Friends == nil {
		return nil
	}
	friends, err := s.o.Friends.FriendIDs(ctx, userID)
	if err != nil {
		return err
	}
	return s.announce(friends, userID, models.StatusOffline, now)
}

// AccountReasonMax bounds the reason given with an account status change, in characters.
const AccountReasonMax = 500

// SetAccountStatus changes a user's accountStatus (active, suspended or banned) with immediate
// effect. The status is stored first: from then on every socket handshake, REST request and token
// refresh of the user checks it and is refused. An account that is no longer active also loses its
// refresh tokens (they stay dead if it is reactivated). Then user.account.status.changed is
// published, on which every node disconnects the user's sockets (handlers/socket,
// DisconnectOnAccountChange). When publishing fails the change is stored all the same: the user is
// returned with the error, and open sockets notice at their next event instead.
func (s *Service) SetAccountStatus(ctx context.Context, userID, status, reason string) (*models.User, error) {
	oid, err := parseUserID(userID)
	if err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	fields := map[string]string{}
	if !models.ValidAccountStatus(status) {
		fields["status"] = "must be one of active, suspended, banned"
	}
	if utf8.RuneCountInString(reason) > AccountReasonMax {
		fields["reason"] = "must be at most 500 characters"
	}
	if len(fields) > 0 {
		return nil, errs.Validation("invalid account status change", fields)
	}
	before, err := s.users.ByID(ctx, oid)
	if err != nil {
		return nil, err
	}
	u, err := s.users.Update(ctx, oid, bson.M{"accountStatus": status, "accountStatusReason": reason})
	if err != nil {
		return nil, err
	}
	s.o.Logger.Info("account status changed", "userId", u.ID.Hex(), "status", status, "previous", before.AccountStatus,
		"reason", reason)
	if status != models.AccountActive {
		if _, err := s.refresh.RevokeUser(ctx, oid); err != nil {
			// The stored status already refuses every refresh; the revocation only keeps old tokens dead
			// after a reactivation. Reported, not undone.
			return u, err
		}
	}
	if s.o.Events == nil {
		return u, nil
	}
	e, err := events.New(events.UserAccountStatusChanged, events.UserAccountStatusData{
		UserID: u.ID.Hex(), Status: status, Previous: before.AccountStatus, Reason: reason})
	if err == nil {
		err = s.o.Events.Publish(ctx, e)
	}
	if err != nil {
		s.o.Logger.Error("publish event failed", "event", events.UserAccountStatusChanged, "userId", u.ID.Hex(), "err", err)
		return u, errs.Internal(fmt.Errorf("account status stored, but %s was not published: %w", events.UserAccountStatusChanged, err))
	}
	return u, nil
}
