// Package auth registers accounts, logs users in, rotates refresh tokens and signs/verifies the
// HS256 access tokens that both the REST API and the Socket.IO handshake accept.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/events"
)

// Config of the service.
type Config struct {
	Secret     []byte        // JWT_SECRET
	AccessTTL  time.Duration // JWT_TTL, default 15m
	RefreshTTL time.Duration // REFRESH_TTL, default 30 days
	BcryptCost int           // BCRYPT_COST, default bcrypt.DefaultCost (tests use bcrypt.MinCost)
	Issuer     string        // default "maoga"
	Now        func() time.Time
}

// LoginHook is told about every successful login (the users service marks the user online for
// friends). Its error is logged, never returned to the client: the login itself succeeded.
type LoginHook interface {
	UserLoggedIn(ctx context.Context, userID string) error
}

// Service is the auth service.
type Service struct {
	users   *models.Users
	refresh *models.RefreshTokens
	tokens  *Tokens
	events  events.Publisher
	hook    LoginHook
	log     *slog.Logger
	cfg     Config
	dummy   []byte // bcrypt hash compared against when the login is unknown, so both cases cost the same
}

// New builds the service. pub and hook may be nil.
func New(store *models.Store, cfg Config, pub events.Publisher, hook LoginHook, log *slog.Logger) (*Service, error) {
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, errors.New("auth: bcrypt cost out of range")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "maoga"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	tok, err := NewTokens(cfg.Secret, cfg.AccessTTL, cfg.Issuer, cfg.Now)
	if err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not-a-password"), cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	return &Service{users: models.NewUsers(store), refresh: models.NewRefreshTokens(store), tokens: tok,
		events: pub, hook: hook, log: log, cfg: cfg, dummy: dummy}, nil
}

// SetLoginHook sets the hook after construction (wiring order: users service needs presence, which
// needs the socket server...).
func (s *Service) SetLoginHook(h LoginHook) { s.hook = h }

// Tokens exposes the access token signer (tests mint tokens with it).
func (s *Service) Tokens() *Tokens { return s.tokens }

// Session is the answer of register and login.
type Session struct {
	User *models.User
	TokenPair
}

// TokenPair is the answer of refresh.
type TokenPair struct {
	AccessToken     string
	RefreshToken    string
	AccessExpiresAt time.Time
}

// RegisterInput is the register body.
type RegisterInput struct {
	Username    string
	Email       string
	Password    string
	DisplayName string
}

// Validation limits.
const (
	UsernameMin    = 3
	UsernameMax    = 32
	EmailMax       = 254
	PasswordMin    = 8
	PasswordMax    = 72 // bcrypt uses at most 72 bytes; refusing more is honest
	DisplayNameMax = 50
	LoginMax       = EmailMax
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ValidateDisplayName checks a display name (shared with the users service).
func ValidateDisplayName(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case strings.TrimSpace(s) == "":
		return "must not be empty"
	case n > DisplayNameMax:
		return "must be at most 50 characters"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

func validateRegister(in *RegisterInput) error {
	fields := map[string]string{}
	in.Username = strings.TrimSpace(in.Username)
	in.Email = strings.TrimSpace(in.Email)
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	switch {
	case in.Username == "":
		fields["username"] = "is required"
	case len(in.Username) < UsernameMin || len(in.Username) > UsernameMax:
		fields["username"] = "must be 3 to 32 characters"
	case !usernameRE.MatchString(in.Username):
		fields["username"] = "may contain only letters, digits, '_', '.' and '-'"
	}
	switch {
	case in.Email == "":
		fields["email"] = "is required"
	case len(in.Email) > EmailMax:
		fields["email"] = "must be at most 254 characters"
	default:
		a, err := mail.ParseAddress(in.Email)
		if err != nil || a.Address != in.Email || !strings.Contains(in.Email[strings.LastIndex(in.Email, "@")+1:], ".") {
			fields["email"] = "must be a valid email address"
		}
	}
	switch {
	case in.Password == "":
		fields["password"] = "is required"
	case utf8.RuneCountInString(in.Password) < PasswordMin:
		fields["password"] = "must be at least 8 characters"
	case len(in.Password) > PasswordMax:
		fields["password"] = "must be at most 72 bytes"
	}
	if in.DisplayName != "" {
		if msg := ValidateDisplayName(in.DisplayName); msg != "" {
			fields["displayName"] = msg
		}
	}
	if len(fields) > 0 {
		return errs.Validation("invalid registration", fields)
	}
	return nil
}

// Register creates an active account and logs it in. user.registered is published.
func (s *Service) Register(ctx context.Context, in RegisterInput) (*Session, error) {
	if err := validateRegister(&in); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), s.cfg.BcryptCost)
	if err != nil {
		return nil, errs.Internal(err)
	}
	u := &models.User{Username: in.Username, Email: in.Email, PasswordHash: string(hash), DisplayName: in.DisplayName}
	if u.DisplayName == "" {
		u.DisplayName = u.Username
	}
	if err := s.users.Create(ctx, u); err != nil {
		return nil, err
	}
	pair, err := s.newSession(ctx, u.ID, bson.NewObjectID())
	if err != nil {
		return nil, err
	}
	s.publish(ctx, events.UserRegistered, events.UserRegisteredData{
		UserID: u.ID.Hex(), Username: u.Username, DisplayName: u.DisplayName, Email: u.Email})
	return &Session{User: u, TokenPair: *pair}, nil
}

// LoginMeta is recorded on the user at login.
type LoginMeta struct {
	IP        string
	UserAgent string
}

// Login checks the password of a user found by username or email. Wrong login and wrong password
// are the same UNAUTHORIZED "Invalid credentials"; an account that is not active is FORBIDDEN
// "Account is <status>" (only told to whoever knows the password).
func (s *Service) Login(ctx context.Context, login, password string, meta LoginMeta) (*Session, error) {
	login = strings.TrimSpace(login)
	fields := map[string]string{}
	if login == "" {
		fields["login"] = "is required"
	} else if len(login) > LoginMax {
		fields["login"] = "must be at most 254 characters"
	}
	if password == "" {
		fields["password"] = "is required"
	} else if len(password) > PasswordMax {
		fields["password"] = "must be at most 72 bytes"
	}
	if len(fields) > 0 {
		return nil, errs.Validation("invalid login", fields)
	}
	u, err := s.users.ByLogin(ctx, login)
	if err != nil && !errs.Is(err, errs.CodeNotFound) {
		return nil, err
	}
	if u == nil {
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return nil, errs.Unauthorized("Invalid credentials")
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return nil, errs.Unauthorized("Invalid credentials")
	}
	if u.AccountStatus != models.AccountActive {
		return nil, errs.Forbidden("Account is " + u.AccountStatus)
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	if u2, err := s.users.Update(ctx, u.ID, bson.M{"lastActive": now, "lastLoginIp": meta.IP,
		"lastLoginUserAgent": truncate(meta.UserAgent, 512)}); err == nil {
		u = u2
	} else {
		return nil, err
	}
	pair, err := s.newSession(ctx, u.ID, bson.NewObjectID())
	if err != nil {
		return nil, err
	}
	if s.hook != nil {
		if err := s.hook.UserLoggedIn(ctx, u.ID.Hex()); err != nil {
			s.log.Warn("login hook failed", "userId", u.ID.Hex(), "err", err)
		}
	}
	return &Session{User: u, TokenPair: *pair}, nil
}

// Refresh trades a refresh token for a new pair. The presented token stops working. Presenting a
// token that was already rotated revokes its whole family (it was stolen or replayed) and fails.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*TokenPair, error) {
	if refreshToken == "" {
		return nil, errs.Validation("invalid refresh", map[string]string{"refreshToken": "is required"})
	}
	if len(refreshToken) > 256 {
		return nil, errs.Unauthorized("Invalid refresh token")
	}
	t, err := s.refresh.ByHash(ctx, hashToken(refreshToken))
	if errs.Is(err, errs.CodeNotFound) {
		return nil, errs.Unauthorized("Invalid refresh token")
	}
	if err != nil {
		return nil, err
	}
	if t.Revoked {
		return nil, errs.Unauthorized("Invalid refresh token")
	}
	now := s.cfg.Now().UTC()
	if t.Rotated {
		return nil, s.reuse(ctx, t)
	}
	if !now.Before(t.ExpiresAt) {
		return nil, errs.Unauthorized("Refresh token expired")
	}
	won, err := s.refresh.MarkRotated(ctx, t, now)
	if err != nil {
		return nil, err
	}
	if !won { // another refresh with the same token came first: that is reuse too
		return nil, s.reuse(ctx, t)
	}
	u, err := s.users.ByID(ctx, t.UserID)
	if errs.Is(err, errs.CodeNotFound) {
		return nil, errs.Unauthorized("Invalid refresh token")
	}
	if err != nil {
		return nil, err
	}
	if u.AccountStatus != models.AccountActive {
		return nil, errs.Forbidden("Account is " + u.AccountStatus)
	}
	return s.newSession(ctx, u.ID, t.FamilyID)
}

func (s *Service) reuse(ctx context.Context, t *models.RefreshToken) error {
	s.log.Warn("refresh token reuse: revoking the token family", "userId", t.UserID.Hex(), "familyId", t.FamilyID.Hex())
	if err := s.refresh.RevokeFamily(ctx, t.FamilyID); err != nil {
		return err
	}
	return errs.Unauthorized("Refresh token reuse detected")
}

// VerifyAccessToken checks an access token (the REST middleware and the socket handshake call it).
// It does not look the user up: callers check the account themselves.
func (s *Service) VerifyAccessToken(token string) (*Claims, error) { return s.tokens.Verify(token) }

func (s *Service) newSession(ctx context.Context, userID, family bson.ObjectID) (*TokenPair, error) {
	access, exp, err := s.tokens.Issue(userID.Hex())
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, errs.Internal(err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	if err := s.refresh.Insert(ctx, &models.RefreshToken{UserID: userID, FamilyID: family, TokenHash: hashToken(refresh),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}); err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, AccessExpiresAt: exp}, nil
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

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
