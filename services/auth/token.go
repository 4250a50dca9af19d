package auth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/services/errs"
)

// Claims is what a verified access token says.
type Claims struct {
	UserID    string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// tokenClaims is the JWT body. `sub` carries the user id; `id` repeats it because the design
// documents' clients and tests sign and read `{ id }` (test/utils/socketClient.js).
type tokenClaims struct {
	jwt.RegisteredClaims
	UID string `json:"id,omitempty"`
}

// ErrInvalidToken is the cause inside the UNAUTHORIZED error of VerifyAccessToken.
var ErrInvalidToken = errors.New("invalid token")

// Tokens signs and verifies HS256 access tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	issuer string
	now    func() time.Time
}

// NewTokens builds a signer; secret must not be empty.
func NewTokens(secret []byte, ttl time.Duration, issuer string, now func() time.Time) (*Tokens, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: empty JWT secret")
	}
	if ttl <= 0 {
		return nil, errors.New("auth: access token TTL must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{secret: secret, ttl: ttl, issuer: issuer, now: now}, nil
}

// Issue signs an access token for userID; it returns the token and its expiry.
func (t *Tokens) Issue(userID string) (string, time.Time, error) {
	now := t.now().UTC()
	exp := now.Add(t.ttl)
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			Issuer:    t.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        bson.NewObjectID().Hex(),
		},
		UID: userID,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, errs.Internal(err)
	}
	// JWT times have second precision; report what the token says.
	return s, time.Unix(exp.Unix(), 0).UTC(), nil
}

// Verify checks signature (HS256 only: "none" and every other algorithm are refused), exp (required),
// nbf and iat, and that the subject is a user id. Any failure is UNAUTHORIZED "Invalid token".
func (t *Tokens) Verify(token string) (*Claims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
	)
	var c tokenClaims
	_, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return nil, errs.Wrap(errs.CodeUnauthorized, "Invalid token", errors.Join(ErrInvalidToken, err))
	}
	uid := c.Subject
	if uid == "" {
		uid = c.UID
	}
	if _, err := bson.ObjectIDFromHex(uid); err != nil {
		return nil, errs.Wrap(errs.CodeUnauthorized, "Invalid token", ErrInvalidToken)
	}
	out := &Claims{UserID: uid, ExpiresAt: c.ExpiresAt.Time.UTC()}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.Time.UTC()
	}
	return out, nil
}
