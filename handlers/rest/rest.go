// Package rest is the REST API (shared/design/REST.md) on Echo: the envelope `{data}` /
// `{error: {code, message, details}}`, strict JSON decoding, bearer authentication, request metrics,
// and the routes of auth, users, friends, health and metrics.
//
// Adding routes from another file of this package (notifications.go, lobbies.go, ...):
//
//	func RegisterNotifications(api *API, svc *notifications.Service) {
//		api.Authed.GET("/notifications", func(c echo.Context) error {
//			uid := UserID(c)                 // the authenticated user's id (hex)
//			var body someInput
//			if err := Bind(c, &body); err != nil { return err } // strict JSON → VALIDATION_ERROR / PAYLOAD_TOO_LARGE
//			...
//			return OK(c, http.StatusOK, data)    // or List(c, items, nextCursor); errors: return the *errs.Error
//		})
//	}
//
// and call it from cmd/maoga/app (the marked place in app.go). api.Authed is the /api group behind
// the bearer middleware; api.Public is /api without it.
package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/services/admission"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/metrics"
)

// DefaultBodyLimit bounds request bodies (bytes) unless Options.BodyLimit says otherwise.
const DefaultBodyLimit = 64 << 10

// ReadyCheck is one dependency /readyz asks.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Options configure the API.
type Options struct {
	Auth    *auth.Service // required: bearer tokens are verified with it
	Store   *models.Store // required: the bearer middleware loads the user
	Metrics *metrics.App  // required
	Logger  *slog.Logger
	// BodyLimit in bytes (BODY_LIMIT); past it a request is 413 PAYLOAD_TOO_LARGE and nothing is read.
	BodyLimit int64
	// CORSOrigins allowed (CORS_ORIGINS); empty: no CORS headers. "*" allows any origin.
	CORSOrigins []string
	// Ready lists what /readyz checks. Draining, when it returns true, makes /readyz answer 503
	// (the server is shutting down).
	Ready    []ReadyCheck
	Draining func() bool
	// RetryAfter is the Retry-After header of a 503 SERVICE_UNAVAILABLE answer; default
	// DefaultRetryAfter, whole seconds.
	RetryAfter time.Duration
	// ClientIP names the client of a request (c.RealIP()): behind trusted proxies the forwarded
	// address (TRUSTED_PROXIES). Default: the peer address — never a header a client could forge.
	ClientIP func(r *http.Request) string
	// Admission, when set, admits every /api/ request before its handler (and the bearer check)
	// runs (services/admission): under overload a request that finds no slot within the limiter's
	// queue wait is answered 503 SERVICE_UNAVAILABLE "server busy, retry later" with
	// Retry-After: 1 at once. Health, metrics and debug routes are never held back. nil: off.
	Admission *admission.Limiter
}

// DefaultRetryAfter is Options.RetryAfter when unset.
const DefaultRetryAfter = 5 * time.Second

// API is the Echo instance and the two /api groups routes are added to.
type API struct {
	Echo   *echo.Echo
	Public *echo.Group // /api, no authentication
	Authed *echo.Group // /api, bearer token required; UserID(c) / CurrentUser(c) inside
	opts   Options
	users  *models.Users
}

// New builds the Echo instance with the middlewares and the health and metrics routes. Route
// groups register themselves with RegisterAuth, RegisterUsers, RegisterFriends, ...
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.RetryAfter < time.Second {
		o.RetryAfter = DefaultRetryAfter
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPDirect()
	if o.ClientIP != nil {
		e.IPExtractor = o.ClientIP
	}
	a := &API{Echo: e, opts: o, users: models.NewUsers(o.Store)}
	e.HTTPErrorHandler = a.handleError
	e.Use(middleware.RequestID(), a.observe, a.recoverer, a.limitBody)
	if len(o.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  o.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions},
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType},
			ExposeHeaders: []string{echo.HeaderXRequestID},
			MaxAge:        600,
		}))
	}
	e.Use(a.admit) // after CORS: a refusal carries the CORS headers, a preflight is never refused
	a.Public = e.Group("/api")
	a.Authed = e.Group("/api", a.requireUser)
	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", echo.WrapHandler(o.Metrics.Registry.Handler()))
	return a
}

// ServeHTTP lets the API be mounted in an http.ServeMux.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.Echo.ServeHTTP(w, r) }

// handleError writes the error envelope. Coded errors keep their status; Echo's own errors (no route,
// wrong method) become NOT_FOUND; anything else is INTERNAL and is logged here, once, with its cause.
func (a *API) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var e *errs.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			e = errs.NotFound("route not found")
		case http.StatusRequestEntityTooLarge:
			e = errs.PayloadTooLarge("request body too large")
		case http.StatusUnauthorized:
			e = errs.Unauthorized("Authentication required")
		default:
			if he.Code >= 400 && he.Code < 500 {
				e = errs.Validation(http.StatusText(he.Code), nil)
			} else {
				e = errs.Internal(err)
			}
		}
	default:
		e = errs.Internal(err)
	}
	switch {
	case e.Code == errs.CodeServiceUnavailable:
		// A dependency is down: its watcher logs the outage once (models: start and end); one line
		// per request would bury everything else. Clients are told when to try again.
		a.opts.Logger.Debug("request failed: service unavailable", "method", c.Request().Method, "route", c.Path(),
			"requestId", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		retry := a.opts.RetryAfter
		if errors.Is(err, admission.ErrBusy) { // shed: a moment, not an outage
			retry = admission.RetryAfter
		}
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
	case e.Status >= 500:
		a.opts.Logger.Error("request failed", "method", c.Request().Method, "route", c.Path(),
			"requestId", c.Response().Header().Get(echo.HeaderXRequestID), "code", e.Code, "err", err)
	}
	a.opts.Metrics.Errors.With(e.Code, "rest").Inc()
	code, details := restCode(e)
	body := map[string]any{"code": code, "message": e.Message}
	if len(details) > 0 {
		body["details"] = details
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(e.Status)
		return
	}
	_ = c.JSON(e.Status, map[string]any{"error": body})
}

// recoverer turns a handler panic into INTERNAL (logged with the panic value) instead of a dropped
// connection.
func (a *API) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = errs.Internal(errors.New("panic: " + strings.TrimSpace(slog.AnyValue(r).String())))
			}
		}()
		return next(c)
	}
}

// observe counts requests by method, route pattern and status, and times them.
func (a *API) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the envelope now so the status below is the one sent
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		took := time.Since(start)
		a.opts.Metrics.HTTPRequests.With(method, route, strconv.Itoa(c.Response().Status)).Inc()
		a.opts.Metrics.HTTPSeconds.With(method, route).Observe(took.Seconds())
		a.opts.Logger.Debug("request", "method", method, "path", c.Request().URL.Path, "route", route,
			"status", c.Response().Status, "took", took, "requestId", c.Response().Header().Get(echo.HeaderXRequestID))
		return nil
	}
}

// limitBody refuses a declared Content-Length over the limit before reading anything, and caps
// what can be read from a body without one (chunked); Bind maps the cap to PAYLOAD_TOO_LARGE.
func (a *API) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > a.opts.BodyLimit {
			return errs.PayloadTooLarge("request body too large").WithDetails(map[string]any{"limit": a.opts.BodyLimit})
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, a.opts.BodyLimit)
		}
		return next(c)
	}
}

// admit holds every /api/ request to the admission limit (Options.Admission) until its handler is
// done; anything else (health, metrics, debug, the web client's files) passes.
func (a *API) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if a.opts.Admission == nil || (p != "/api" && !strings.HasPrefix(p, "/api/")) {
			return next(c)
		}
		ticket, err := a.opts.Admission.Acquire(c.Request().Context())
		if err != nil {
			return err // 503 SERVICE_UNAVAILABLE, Retry-After 1 (handleError); nothing ran
		}
		defer ticket.Done()
		return next(c)
	}
}

const (
	ctxUserID = "maoga.userId"
	ctxUser   = "maoga.user"
)

// requireUser authenticates `Authorization: Bearer <accessToken>`, loads the user and refuses
// accounts that are not active.
func (a *API) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		if h == "" {
			return errs.Unauthorized("Authentication required")
		}
		scheme, token, ok := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return errs.Unauthorized("Authorization header must be 'Bearer <token>'")
		}
		claims, err := a.opts.Auth.VerifyAccessToken(token)
		if err != nil {
			return err
		}
		oid, _ := models.ParseID(claims.UserID) // Verify checked the format
		u, err := a.users.ByID(c.Request().Context(), oid)
		if errs.Is(err, errs.CodeNotFound) {
			return errs.Unauthorized("User not found")
		}
		if err != nil {
			return err
		}
		if u.AccountStatus != models.AccountActive {
			return errs.Forbidden("Account is " + u.AccountStatus)
		}
		c.Set(ctxUserID, claims.UserID)
		c.Set(ctxUser, u)
		return next(c)
	}
}

// UserID is the authenticated user's id inside api.Authed routes ("" elsewhere).
func UserID(c echo.Context) string {
	s, _ := c.Get(ctxUserID).(string)
	return s
}

// CurrentUser is the authenticated user as loaded by the middleware (nil outside api.Authed).
func CurrentUser(c echo.Context) *models.User {
	u, _ := c.Get(ctxUser).(*models.User)
	return u
}

// restCodeByStatus is REST.md's closed list of codes. Services speak EVENTS.md's socket codes
// (JOIN_ERROR, LOBBY_NOT_FOUND, ...); a REST client gets the REST code of the same status and finds
// the socket code in details.reason, so nothing is lost and the REST contract holds.
var restCodeByStatus = map[int]string{
	http.StatusBadRequest:            errs.CodeValidation,
	http.StatusUnauthorized:          errs.CodeUnauthorized,
	http.StatusForbidden:             errs.CodeForbidden,
	http.StatusNotFound:              errs.CodeNotFound,
	http.StatusConflict:              errs.CodeConflict,
	http.StatusRequestEntityTooLarge: errs.CodePayloadTooLarge,
	http.StatusTooManyRequests:       errs.CodeRateLimited,
	http.StatusInternalServerError:   errs.CodeInternal,
	http.StatusServiceUnavailable:    errs.CodeServiceUnavailable,
}

func restCode(e *errs.Error) (string, map[string]any) {
	code, ok := restCodeByStatus[e.Status]
	if !ok || code == e.Code {
		return e.Code, e.Details
	}
	details := make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		details[k] = v
	}
	details["reason"] = e.Code
	return code, details
}
