package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAppEnvProductionRefusesDefaults: APP_ENV=production does not start with the public JWT secret
// or with CORS_ORIGINS unset, "*" or not a list of origins; each problem names its variable.
func TestAppEnvProductionRefusesDefaults(t *testing.T) {
	const secret = "a-real-secret-0123456789"
	cases := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none: starts
	}{
		{"development default", nil, nil},
		{"explicit development keeps the defaults", map[string]string{"APP_ENV": "development"}, nil},
		{"unknown APP_ENV", map[string]string{"APP_ENV": "staging"}, []string{"APP_ENV"}},
		{"production, nothing set", map[string]string{"APP_ENV": "production"}, []string{"JWT_SECRET", "CORS_ORIGINS"}},
		{"production, dev secret given explicitly", map[string]string{"APP_ENV": "production", "JWT_SECRET": DevJWTSecret,
			"CORS_ORIGINS": "https://game.example"}, []string{"JWT_SECRET"}},
		{"production, CORS unset", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret}, []string{"CORS_ORIGINS"}},
		{"production, CORS *", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "CORS_ORIGINS": "https://a.example,*"}, []string{"CORS_ORIGINS"}},
		{"production, CORS not an origin", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "CORS_ORIGINS": "game.example"}, []string{`"game.example"`}},
		{"production, CORS with a path", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "CORS_ORIGINS": "https://game.example/app"}, []string{"CORS_ORIGINS"}},
		{"production, configured", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "CORS_ORIGINS": "https://game.example, http://localhost:5173"}, nil},
		{"production, CORS none (same origin only)", map[string]string{"APP_ENV": "production", "JWT_SECRET": secret, "CORS_ORIGINS": "none"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(env(tc.env))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("started with %v", tc.env)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not name %s", err, w)
				}
			}
			_ = c
		})
	}
	if c, _ := FromEnv(env(nil)); c.AppEnv != EnvDevelopment || c.Production() {
		t.Fatalf("default APP_ENV %q", c.AppEnv)
	}
	// app.New refuses a production Config built in code too
	cfg := Defaults()
	cfg.AppEnv = EnvProduction
	if _, err := New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Fatalf("New with a production config on defaults: %v", err)
	}
}

// TestCheckOrigin: the production guard of /socket.io/ passes no Origin, listed origins and the
// server's own host, and refuses any other Origin with 403 and the engine's JSON error body.
func TestCheckOrigin(t *testing.T) {
	h := checkOrigin([]string{"https://game.example", "http://localhost:5173/"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	cases := []struct {
		origin, host string
		pass         bool
	}{
		{"", "api.example", true},
		{"https://game.example", "api.example", true},
		{"HTTPS://GAME.EXAMPLE", "api.example", true},
		{"http://localhost:5173", "api.example", true},
		{"https://api.example", "api.example", true}, // same host, any scheme (TLS proxy)
		{"http://api.example:8080", "api.example:8080", true},
		{"https://evil.example", "api.example", false},
		{"https://game.example.evil", "api.example", false},
		{"null", "api.example", false},
		{"http://api.example:9999", "api.example:8080", false},
	}
	for _, tc := range cases {
		req := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=websocket", nil)
		req.Host = tc.host
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Code == http.StatusTeapot; got != tc.pass {
			t.Fatalf("origin %q host %q: status %d, pass %v", tc.origin, tc.host, rec.Code, tc.pass)
		}
		if !tc.pass && (rec.Code != 403 || rec.Body.String() != `{"code":4,"message":"Origin not allowed"}`) {
			t.Fatalf("refusal: %d %s", rec.Code, rec.Body)
		}
	}
}
