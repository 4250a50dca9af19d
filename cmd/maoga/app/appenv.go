package app

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// APP_ENV values.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Production reports whether the server runs with APP_ENV=production.
func (c Config) Production() bool { return c.AppEnv == EnvProduction }

// productionProblems lists what production mode refuses to start with: the public development JWT
// secret, and CORS_ORIGINS unset, "*" or not a list of origins. Empty outside production.
func (c Config) productionProblems() []error {
	if !c.Production() {
		return nil
	}
	var out []error
	if c.UsingDevSecret || c.JWTSecret == DevJWTSecret {
		out = append(out, errors.New("JWT_SECRET: must be set (not the public development secret) when APP_ENV=production"))
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			out = append(out, errors.New(`CORS_ORIGINS: must list the allowed origins (e.g. https://game.example), not be unset or "*", when APP_ENV=production`))
			return out
		}
	}
	for _, o := range c.CORSOrigins {
		if !isOrigin(o) {
			out = append(out, fmt.Errorf("CORS_ORIGINS: %q is not an origin like https://game.example (scheme and host, no path)", o))
		}
	}
	return out
}

// isOrigin reports whether s is a browser Origin value: http(s)://host[:port], nothing after it.
func isOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Path == "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// checkOrigin guards the Socket.IO endpoint in production. CORS only keeps a foreign page from
// reading polling answers; a websocket has no CORS, so any page a user visits could open one with
// the user's cookies. Every Socket.IO request (handshake, polling, websocket upgrade) whose Origin
// header is neither one of CORS_ORIGINS nor the server's own host is refused with 403 and the
// engine's JSON error body. Requests without Origin (native and server-side clients) pass: they are
// not sent by a browser on behalf of another site.
func checkOrigin(allowed []string, next http.Handler) http.Handler {
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || set[strings.ToLower(origin)] || sameHost(origin, r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"code":4,"message":"Origin not allowed"}`))
	})
}

// sameHost reports whether origin names host (the request's Host header), whatever the scheme: the
// page was served by this server (the embedded web client), possibly behind a TLS proxy.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}
