package app_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestRegister(t *testing.T) {
	name := uniqueName("Reg")
	r := call(t, "POST", "/api/auth/register", "", map[string]any{
		"username": name, "email": name + "@Example.com", "password": "password123", "displayName": "Reggie"})
	if r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	d := r.data()
	u := d["user"].(map[string]any)
	if u["username"] != name || u["displayName"] != "Reggie" || u["accountStatus"] != "active" || u["id"] == "" {
		t.Fatalf("user %v", u)
	}
	if d["accessToken"] == "" || d["refreshToken"] == "" {
		t.Fatalf("tokens missing: %v", d)
	}
	if strings.Contains(strings.ToLower(string(r.Raw)), "password") {
		t.Fatalf("answer mentions the password: %s", r.Raw)
	}

	t.Run("duplicate username, any case", func(t *testing.T) {
		r := call(t, "POST", "/api/auth/register", "", map[string]any{
			"username": strings.ToUpper(name), "email": "other-" + name + "@example.com", "password": "password123"})
		expect(t, r, 409, "CONFLICT")
		if r.errField("username") == "" {
			t.Fatalf("details do not name username: %s", r.Raw)
		}
	})
	t.Run("duplicate email, any case", func(t *testing.T) {
		r := call(t, "POST", "/api/auth/register", "", map[string]any{
			"username": "x" + name, "email": strings.ToUpper(name) + "@EXAMPLE.COM", "password": "password123"})
		expect(t, r, 409, "CONFLICT")
		if r.errField("email") == "" {
			t.Fatalf("details do not name email: %s", r.Raw)
		}
		if countUsers(t, bson.M{"usernameLower": strings.ToLower("x" + name)}) != 0 {
			t.Fatal("conflicting user was written")
		}
	})
}

func TestRegisterRejectsBadInput(t *testing.T) {
	name := uniqueName("bad")
	ok := func() map[string]any {
		return map[string]any{"username": name, "email": name + "@example.com", "password": "password123"}
	}
	with := func(k string, v any) map[string]any { m := ok(); m[k] = v; return m }
	without := func(k string) map[string]any { m := ok(); delete(m, k); return m }
	big := `{"username":"` + name + `","email":"` + name + `@example.com","password":"password123","displayName":"` +
		strings.Repeat("x", bodyLimit) + `"}`

	cases := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"missing username", without("username"), 400, "VALIDATION_ERROR", "username"},
		{"missing email", without("email"), 400, "VALIDATION_ERROR", "email"},
		{"missing password", without("password"), 400, "VALIDATION_ERROR", "password"},
		{"short username", with("username", "ab"), 400, "VALIDATION_ERROR", "username"},
		{"long username", with("username", strings.Repeat("a", 33)), 400, "VALIDATION_ERROR", "username"},
		{"username chars", with("username", "bad name!"), 400, "VALIDATION_ERROR", "username"},
		{"bad email", with("email", "not-an-email"), 400, "VALIDATION_ERROR", "email"},
		{"email with name", with("email", "Bob <bob@example.com>"), 400, "VALIDATION_ERROR", "email"},
		{"short password", with("password", "short"), 400, "VALIDATION_ERROR", "password"},
		{"password over 72 bytes", with("password", strings.Repeat("p", 73)), 400, "VALIDATION_ERROR", "password"},
		{"long display name", with("displayName", strings.Repeat("d", 51)), 400, "VALIDATION_ERROR", "displayName"},
		{"unknown field", with("isAdmin", true), 400, "VALIDATION_ERROR", "isAdmin"},
		{"wrong type", with("username", 12345), 400, "VALIDATION_ERROR", "username"},
		{"operator object", with("email", map[string]any{"$ne": nil}), 400, "VALIDATION_ERROR", "email"},
		{"array body", `[1,2]`, 400, "VALIDATION_ERROR", ""},
		{"malformed", `{"username":`, 400, "VALIDATION_ERROR", ""},
		{"trailing data", `{"username":"a"} {"x":1}`, 400, "VALIDATION_ERROR", ""},
		{"empty body", ``, 400, "VALIDATION_ERROR", ""},
		{"oversized", big, 413, "PAYLOAD_TOO_LARGE", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "POST", "/api/auth/register", "", tc.body)
			expect(t, r, tc.status, tc.code)
			if tc.field != "" && r.errField(tc.field) == "" {
				t.Fatalf("details do not name %s: %s", tc.field, r.Raw)
			}
		})
	}
	t.Run("oversized without content-length", func(t *testing.T) {
		req, _ := http.NewRequest("POST", baseURL+"/api/auth/register", strings.NewReader(big))
		req.ContentLength = -1 // chunked: the limit is found while reading
		req.Header.Set("Content-Type", "application/json")
		expect(t, send(t, req), 413, "PAYLOAD_TOO_LARGE")
	})
	t.Run("not JSON", func(t *testing.T) {
		req, _ := http.NewRequest("POST", baseURL+"/api/auth/register", strings.NewReader("username=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		expect(t, send(t, req), 400, "VALIDATION_ERROR")
	})
	if n := countUsers(t, bson.M{"usernameLower": strings.ToLower(name)}); n != 0 {
		t.Fatalf("bad input wrote %d users", n)
	}
}

func TestLogin(t *testing.T) {
	u := register(t)
	for _, login := range []string{u.Username, strings.ToUpper(u.Username), u.Email, strings.ToUpper(u.Email)} {
		r := call(t, "POST", "/api/auth/login", "", map[string]any{"login": login, "password": u.Password})
		if r.Status != 200 || r.data()["accessToken"] == "" || r.data()["user"].(map[string]any)["id"] != u.ID {
			t.Fatalf("login %q: %d %s", login, r.Status, r.Raw)
		}
		if r.data()["user"].(map[string]any)["lastActive"] == nil {
			t.Fatal("login did not record lastActive")
		}
	}
	bad := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"wrong password", map[string]any{"login": u.Username, "password": "wrong-password"}, 401, "UNAUTHORIZED"},
		{"unknown user", map[string]any{"login": "nobody-" + u.Username, "password": u.Password}, 401, "UNAUTHORIZED"},
		{"missing password", map[string]any{"login": u.Username}, 400, "VALIDATION_ERROR"},
		{"missing login", map[string]any{"password": u.Password}, 400, "VALIDATION_ERROR"},
		{"operator object", map[string]any{"login": map[string]any{"$ne": ""}, "password": u.Password}, 400, "VALIDATION_ERROR"},
		{"unknown field", map[string]any{"login": u.Username, "password": u.Password, "remember": true}, 400, "VALIDATION_ERROR"},
		{"wrong type", map[string]any{"login": u.Username, "password": 123}, 400, "VALIDATION_ERROR"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) { expect(t, call(t, "POST", "/api/auth/login", "", tc.body), tc.status, tc.code) })
	}
	r := call(t, "POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": "wrong-password"})
	if r.errMessage() != "Invalid credentials" {
		t.Fatalf("message %q", r.errMessage())
	}
	r2 := call(t, "POST", "/api/auth/login", "", map[string]any{"login": "nobody-" + u.Username, "password": "x"})
	if r2.errMessage() != r.errMessage() {
		t.Fatal("unknown user and wrong password must read the same")
	}
}

func TestLoginRefusesInactiveAccounts(t *testing.T) {
	for _, status := range []string{"suspended", "banned"} {
		u := register(t)
		setAccountStatus(t, u.ID, status)
		r := call(t, "POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": u.Password})
		expect(t, r, 403, "FORBIDDEN")
		if r.errMessage() != "Account is "+status {
			t.Fatalf("message %q", r.errMessage())
		}
		// A token issued before the suspension no longer opens the API, and refresh is refused.
		expect(t, call(t, "GET", "/api/users/me", u.Access, nil), 403, "FORBIDDEN")
		expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh}), 403, "FORBIDDEN")
	}
}

func TestRefreshRotation(t *testing.T) {
	u := register(t)
	r := call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh})
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	access2, refresh2 := r.data()["accessToken"].(string), r.data()["refreshToken"].(string)
	if refresh2 == u.Refresh || access2 == "" {
		t.Fatal("refresh did not rotate")
	}
	if got := call(t, "GET", "/api/users/me", access2, nil); got.Status != 200 {
		t.Fatalf("new access token: %d %s", got.Status, got.Raw)
	}
	// The old refresh token stops working; presenting it again revokes the family, so the token
	// issued in its place dies too.
	r = call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh})
	expect(t, r, 401, "UNAUTHORIZED")
	expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": refresh2}), 401, "UNAUTHORIZED")

	// A family from a separate login is not affected.
	l := call(t, "POST", "/api/auth/login", "", map[string]any{"login": u.Username, "password": u.Password})
	if got := call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": l.data()["refreshToken"]}); got.Status != 200 {
		t.Fatalf("other family: %d %s", got.Status, got.Raw)
	}

	expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": "not-a-token"}), 401, "UNAUTHORIZED")
	expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": 5}), 400, "VALIDATION_ERROR")
	expect(t, call(t, "POST", "/api/auth/refresh", "", map[string]any{"refreshToken": u.Refresh, "x": 1}), 400, "VALIDATION_ERROR")
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBearerAuth(t *testing.T) {
	u := register(t)
	now := time.Now()
	valid := jwt.MapClaims{"sub": u.ID, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	parts := strings.Split(u.Access, ".")
	cases := map[string]string{
		"expired":      sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": u.ID, "exp": now.Add(-time.Minute).Unix()}),
		"alg none":     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid),
		"forged none":  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"wrong secret": sign(t, jwt.SigningMethodHS256, []byte("some-other-secret-123456"), valid),
		"HS384":        sign(t, jwt.SigningMethodHS384, []byte(secret), valid),
		"garbage":      "abc.def.ghi",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := call(t, "GET", "/api/users/me", tok, nil)
			expect(t, r, 401, "UNAUTHORIZED")
		})
	}
	t.Run("missing", func(t *testing.T) { expect(t, call(t, "GET", "/api/users/me", "", nil), 401, "UNAUTHORIZED") })
	t.Run("not bearer", func(t *testing.T) {
		req, _ := http.NewRequest("GET", baseURL+"/api/users/me", nil)
		req.Header.Set("Authorization", "Basic "+u.Access)
		expect(t, send(t, req), 401, "UNAUTHORIZED")
	})
	t.Run("lowercase scheme accepted", func(t *testing.T) {
		req, _ := http.NewRequest("GET", baseURL+"/api/users/me", nil)
		req.Header.Set("Authorization", "bearer "+u.Access)
		if r := send(t, req); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	})
	t.Run("user gone", func(t *testing.T) {
		ghost := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": bson.NewObjectID().Hex(), "exp": now.Add(time.Hour).Unix()})
		r := call(t, "GET", "/api/users/me", ghost, nil)
		expect(t, r, 401, "UNAUTHORIZED")
		if r.errMessage() != "User not found" {
			t.Fatalf("message %q", r.errMessage())
		}
	})
	for _, path := range []string{"/api/users/me", "/api/friends", "/api/users/" + u.ID} {
		expect(t, call(t, "GET", path, "", nil), 401, "UNAUTHORIZED")
	}
	expect(t, call(t, "POST", "/api/friends/requests", "", map[string]any{"userId": u.ID}), 401, "UNAUTHORIZED")
}
