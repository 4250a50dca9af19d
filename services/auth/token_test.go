package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/services/errs"
)

func TestTokenRoundTripAndRefusals(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tok, err := NewTokens([]byte("secret-1"), time.Minute, "maoga", clock)
	if err != nil {
		t.Fatal(err)
	}
	uid := bson.NewObjectID().Hex()
	s, exp, err := tok.Issue(uid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Verify(s)
	if err != nil || c.UserID != uid || !c.ExpiresAt.Equal(exp) || !exp.Equal(now.Add(time.Minute)) {
		t.Fatalf("verify: %+v %v (exp %v)", c, err, exp)
	}

	other, _ := NewTokens([]byte("secret-2"), time.Minute, "maoga", clock)
	wrongSecret, _, _ := other.Issue(uid)

	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.MapClaims{"sub": uid, "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
	hs512 := sign(jwt.SigningMethodHS512, []byte("secret-1"), good)
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good)
	// alg "none" header with the right claims and an HS256 signature glued on.
	parts := strings.Split(s, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	forgedNone := noneHeader + "." + parts[1] + "."
	expired := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"sub": uid, "exp": now.Add(-time.Second).Unix()})
	noExp := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"sub": uid})
	future := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"sub": uid, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(time.Minute).Unix()})
	futureIat := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"sub": uid, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(time.Minute).Unix()})
	badSub := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"sub": "$ne", "exp": now.Add(time.Hour).Unix()})

	for name, bad := range map[string]string{
		"wrong secret": wrongSecret, "HS512": hs512, "alg none": none, "forged none": forgedNone,
		"expired": expired, "no exp": noExp, "nbf in future": future, "iat in future": futureIat,
		"sub not an id": badSub, "garbage": "a.b.c", "empty": "", "tampered": parts[0] + "." + parts[1] + "x." + parts[2],
	} {
		if _, err := tok.Verify(bad); !errs.Is(err, errs.CodeUnauthorized) {
			t.Errorf("%s: want UNAUTHORIZED, got %v", name, err)
		}
	}

	// The design documents' tests sign { id } instead of sub.
	legacy := sign(jwt.SigningMethodHS256, []byte("secret-1"), jwt.MapClaims{"id": uid, "exp": now.Add(time.Hour).Unix()})
	if c, err := tok.Verify(legacy); err != nil || c.UserID != uid {
		t.Fatalf("legacy id claim: %+v %v", c, err)
	}
}
