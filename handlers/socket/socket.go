// Package socket holds the Socket.IO handlers of the platform's main
// namespace: the handshake (JWT, account checks), the user room, presence,
// token expiry, and the toolkit feature handlers (chat, lobby, matchmaking)
// use to read like the event table of EVENTS.md: decode, check, call a
// service, emit.
//
//	socket.Register(io.Of("/"), socket.Options{..., Features: []socket.Feature{chat.Register}})
//
//	func Register(c *socket.Conn) {
//		c.On("chat:join", func(ctx context.Context, ev *socketio.Event) error {
//			var in struct{ ChatID string `json:"chatId"` }
//			if err := socket.Decode(ev, &in); err != nil {
//				return err // → error {code:"VALIDATION_ERROR",...} and ack {ok:false,...}
//			}
//			...
//			return socket.OK(ev, map[string]any{"chatId": in.ChatID}) // ack {ok:true, chatId}
//		})
//	}
package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/maoga/maoga/models"
	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/admission"
	"github.com/maoga/maoga/services/auth"
	"github.com/maoga/maoga/services/errs"
	"github.com/maoga/maoga/services/presence"
	"github.com/maoga/maoga/services/realtime"
)

// The connect-error messages of the handshake (EVENTS.md, Connection).
const (
	MsgTokenMissing = "Authentication error: Token missing"
	MsgInvalidToken = "Authentication error: Invalid token"
	MsgUserNotFound = "Authentication error: User not found"
	// "Account is <accountStatus>", e.g. "Account is suspended".
	msgAccountPrefix = "Account is "
	// MsgUnavailable answers a handshake the server could not check (the
	// database did not answer). It is not one of the four messages of the
	// contract on purpose: the token may well be valid, and a client must not
	// throw it away.
	MsgUnavailable = "Authentication error: Service unavailable"
)

// TokenVerifier checks an access token (*auth.Service satisfies it).
type TokenVerifier interface {
	VerifyAccessToken(token string) (*auth.Claims, error)
}

// UserFinder loads a user (*models.Users satisfies it).
type UserFinder interface {
	ByID(ctx context.Context, id bson.ObjectID) (*models.User, error)
}

// Feature registers the event handlers of one feature on a new connection.
type Feature func(c *Conn)

// Observer is told about every handled client event: its name, the error
// code ("" on success) and how long the handler took (metrics).
type Observer func(event, code string, took time.Duration)

// Options wire the handlers. Tokens, Users and Presence are required.
type Options struct {
	Tokens   TokenVerifier
	Users    UserFinder
	Presence presence.Service
	// Features run on every accepted connection, after the user room and
	// presence are set up (for a recovered socket too: see Socket.Recovered).
	Features []Feature
	// RecoveryChecks vet the rooms of a session restored by connection
	// state recovery (recovery.go); a room no check covers refuses the
	// session, so every feature that joins rooms brings its check.
	RecoveryChecks []RoomCheck
	// HandlerTimeout bounds one event handler's ctx; default 10s.
	HandlerTimeout time.Duration
	// AuthTimeout bounds the handshake's user lookup; default 5s.
	AuthTimeout time.Duration
	// AccountRecheck is how old the account check of a connection may be when it sends an event: an
	// older one reloads the user first, and an account that is no longer active (suspended, banned,
	// deleted) gets ACCESS_DENIED and the socket is disconnected. Default 1s; negative: never.
	AccountRecheck time.Duration
	Observer       Observer
	// Admission, when set, admits each client event before anything of it runs (services/admission):
	// under overload an event that finds no slot within the limiter's queue wait is answered
	// SERVICE_UNAVAILABLE "server busy, retry later" (the `error` event and a failed ack) at once.
	// Events registered with OnUnadmitted skip it. nil: every event is admitted.
	Admission *admission.Limiter
	// OnEmit, when set, is told the name of every event these handlers send
	// (replies to the socket and broadcasts to its rooms; the `error` answers
	// are reported through Observer's code), for metrics.
	OnEmit func(event string)
	// OnHandshake, when set, is told the result of every handshake:
	// "accepted", "token_missing", "invalid_token", "user_not_found",
	// "account_<status>" or "unavailable" (metrics).
	OnHandshake func(result string)
	Logger      *slog.Logger
	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
}

// DefaultAccountRecheck is Options.AccountRecheck's default.
const DefaultAccountRecheck = time.Second

// Session is who a socket belongs to; set by the handshake as the socket's
// data (SessionOf reads it).
type Session struct {
	UserID      string    `json:"userId"`
	Username    string    `json:"username"`
	DisplayName string    `json:"displayName"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// SessionOf returns the session of an authenticated socket, nil for others.
func SessionOf(s *socketio.Socket) *Session {
	sess, _ := s.Data().(*Session)
	return sess
}

// Emitter adapts a namespace to realtime.Emitter, for the services.
func Emitter(nsp *socketio.Namespace) realtime.Emitter { return nspEmitter{nsp} }

type nspEmitter struct{ nsp *socketio.Namespace }

func (e nspEmitter) ToRoom(room string) realtime.Room { return e.nsp.To(room) }

// handlers is Register's state.
type handlers struct {
	opts Options
	log  *slog.Logger
}

// Register installs the handshake middleware and the connection handler on nsp.
func Register(nsp *socketio.Namespace, opts Options) {
	if opts.Tokens == nil || opts.Users == nil || opts.Presence == nil {
		panic("socket: Register needs Tokens, Users and Presence")
	}
	if opts.HandlerTimeout <= 0 {
		opts.HandlerTimeout = 10 * time.Second
	}
	if opts.AuthTimeout <= 0 {
		opts.AuthTimeout = 5 * time.Second
	}
	if opts.AccountRecheck == 0 {
		opts.AccountRecheck = DefaultAccountRecheck
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &handlers{opts: opts, log: log.With("component", "socket")}
	nsp.Use(h.authenticate)
	nsp.VetRecovery(h.vetRecovery)
	nsp.OnConnection(h.connected)
}

// tokenOf finds the token: auth.token first, else the query parameter token.
func tokenOf(hs *socketio.Handshake) (token string, present bool) {
	if len(hs.Auth) > 0 {
		var a struct {
			Token json.RawMessage `json:"token"`
		}
		if json.Unmarshal(hs.Auth, &a) == nil && len(a.Token) > 0 && string(a.Token) != "null" {
			var s string
			if json.Unmarshal(a.Token, &s) != nil {
				return "", true // a token that is not a string is present, and invalid
			}
			if s != "" {
				return s, true
			}
		}
	}
	if t := url.Values(hs.Query).Get("token"); t != "" {
		return t, true
	}
	return "", false
}

// authenticate is the handshake middleware.
func (h *handlers) authenticate(s *socketio.Socket) error {
	result, err := h.check(s)
	if h.opts.OnHandshake != nil {
		h.opts.OnHandshake(result)
	}
	return err
}

// refuse builds a connect error and its metric label.
func refuse(result, message string) (string, error) {
	return result, &socketio.ConnectError{Message: message}
}

func (h *handlers) check(s *socketio.Socket) (string, error) {
	token, present := tokenOf(s.Handshake())
	if !present {
		return refuse("token_missing", MsgTokenMissing)
	}
	if token == "" {
		return refuse("invalid_token", MsgInvalidToken)
	}
	claims, err := h.opts.Tokens.VerifyAccessToken(token)
	if err != nil {
		h.log.Debug("socket handshake refused", "reason", "invalid token", "err", err)
		return refuse("invalid_token", MsgInvalidToken)
	}
	uid, ok := models.ParseID(claims.UserID)
	if !ok {
		return refuse("invalid_token", MsgInvalidToken)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.AuthTimeout)
	defer cancel()
	u, err := h.opts.Users.ByID(ctx, uid)
	if errs.Is(err, errs.CodeNotFound) {
		return refuse("user_not_found", MsgUserNotFound)
	}
	if err != nil {
		if errs.IsUnavailable(err) { // the store's outage is logged once by the store
			h.log.Debug("socket handshake refused: store unavailable", "userId", claims.UserID, "err", err)
		} else {
			h.log.Error("socket handshake: user lookup failed", "userId", claims.UserID, "err", err)
		}
		return refuse("unavailable", MsgUnavailable)
	}
	if u.AccountStatus != models.AccountActive {
		return refuse("account_"+u.AccountStatus, msgAccountPrefix+u.AccountStatus)
	}
	s.SetData(&Session{
		UserID: u.ID.Hex(), Username: u.Username, DisplayName: u.Name(), ExpiresAt: claims.ExpiresAt,
	})
	return "accepted", nil
}

// Conn is an accepted connection as feature handlers see it.
type Conn struct {
	Socket *socketio.Socket
	User   *Session

	h      *handlers
	ctx    context.Context
	cancel context.CancelFunc
	// checked is when the account was last seen active (UnixNano), for Options.AccountRecheck.
	checked atomic.Int64
}

// Context is cancelled when the socket disconnects.
func (c *Conn) Context() context.Context { return c.ctx }

// Logger returns a logger carrying the socket and user ids.
func (c *Conn) Logger() *slog.Logger {
	return c.h.log.With("socket", c.Socket.ID(), "userId", c.User.UserID)
}

// Emit sends an event to this socket only.
func (c *Conn) Emit(event string, args ...any) error {
	c.countEmit(event)
	return c.Socket.Emit(event, args...)
}

// EmitToRoom sends an event to the other sockets of room (this socket excluded).
func (c *Conn) EmitToRoom(room, event string, args ...any) error {
	c.countEmit(event)
	return c.Socket.To(room).Emit(event, args...)
}

func (c *Conn) countEmit(event string) {
	if c.h.opts.OnEmit != nil {
		c.h.opts.OnEmit(event)
	}
}

// HandlerFunc handles one client event. Its ctx ends at the handler timeout
// or when the socket disconnects. A returned error is answered with the
// event `error` and a failed ack (see Fail); on success the handler acks
// with OK (or the wrapper acks {ok:true} when the client asked and the
// handler did not).
type HandlerFunc func(ctx context.Context, ev *socketio.Event) error

// On registers fn for a client event, wrapped: admission (Options.Admission), timeout, panic
// recovery, error answers, metrics.
func (c *Conn) On(event string, fn HandlerFunc) { c.on(event, fn, true) }

// OnUnadmitted registers fn like On but without admission control: for events that do no work on the
// store and must not be refused under overload (chat:typing, a broadcast to a room).
func (c *Conn) OnUnadmitted(event string, fn HandlerFunc) { c.on(event, fn, false) }

func (c *Conn) on(event string, fn HandlerFunc, admit bool) {
	c.Socket.On(event, func(ev *socketio.Event) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.HandlerTimeout)
		defer cancel()
		var err error
		var ticket *admission.Ticket
		if admit {
			// Refused (overload): SERVICE_UNAVAILABLE at once, nothing of the event ran. The limiter
			// logs the overload once per episode; Fail logs the refusal at debug level only.
			ticket, err = c.h.opts.Admission.Acquire(ctx)
		}
		if err == nil {
			err = c.checkAccount(ctx)
			if err == nil {
				err = c.call(ctx, fn, ev)
			} else if errs.Is(err, errs.CodeAccessDenied) {
				ticket.Done()
				c.accessDenied(ev, err, start)
				return
			}
			ticket.Done() // the latency the limit adapts to: admission to the handler's end
		}
		if err != nil {
			Fail(c.Logger(), ev, err)
		} else if ev.HasAck() {
			_ = OK(ev, nil) // no-op when the handler already acked
		}
		if c.h.opts.Observer != nil {
			c.h.opts.Observer(event, codeOf(err), time.Since(start))
		}
	})
}

// accessDenied answers an event of an account that is no longer active and disconnects the socket.
func (c *Conn) accessDenied(ev *socketio.Event, err error, start time.Time) {
	Fail(c.Logger(), ev, err)
	c.Logger().Info("account no longer active: disconnecting", "reason", err)
	c.Socket.Disconnect(true)
	if c.h.opts.Observer != nil {
		c.h.opts.Observer(ev.Name(), errs.CodeAccessDenied, time.Since(start))
	}
}

// checkAccount reloads the user when the last check is older than AccountRecheck. An account that is
// gone or not active is ACCESS_DENIED; a store that does not answer lets the event through (its
// handler meets the same store and answers for itself).
func (c *Conn) checkAccount(ctx context.Context) error {
	every := c.h.opts.AccountRecheck
	if every < 0 || time.Since(time.Unix(0, c.checked.Load())) < every {
		return nil
	}
	uid, ok := models.ParseID(c.User.UserID)
	if !ok {
		return errs.New(errs.CodeAccessDenied, "Account not found")
	}
	u, err := c.h.opts.Users.ByID(ctx, uid)
	switch {
	case errs.Is(err, errs.CodeNotFound):
		return errs.New(errs.CodeAccessDenied, "Account not found")
	case err != nil:
		return nil
	case u.AccountStatus != models.AccountActive:
		return errs.New(errs.CodeAccessDenied, msgAccountPrefix+u.AccountStatus)
	}
	c.checked.Store(time.Now().UnixNano())
	return nil
}

func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return errs.CodeOf(err)
}

func (c *Conn) call(ctx context.Context, fn HandlerFunc, ev *socketio.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errs.Internal(fmt.Errorf("panic in %s handler: %v", ev.Name(), p))
		}
	}()
	return fn(ctx, ev)
}

// connSeq numbers the connections of this process (presence keys).
var connSeq atomic.Uint64

// connected sets up an accepted socket: user room, expiry timer, presence,
// handlers. It runs for a socket restored by connection state recovery too
// (its rooms were vetted by vetRecovery; the user room is joined again,
// which is a no-op).
func (h *handlers) connected(s *socketio.Socket) {
	sess := SessionOf(s)
	if sess == nil {
		// Only possible for a socket that skipped the middleware (session
		// recovery configured to skip it): it has no user, so it goes.
		h.log.Error("socket without session after handshake", "socket", s.ID())
		s.Disconnect(true)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{Socket: s, User: sess, h: h, ctx: ctx, cancel: cancel}
	c.checked.Store(time.Now().UnixNano()) // the handshake just checked it
	log := c.Logger()

	if err := s.Join(realtime.UserRoom(sess.UserID)); err != nil {
		// Only with LIMIT_ROOMS_PER_SOCKET below 1: without its user room a socket hears nothing.
		log.Error("joining the user room failed: disconnecting", "err", err)
		cancel()
		s.Disconnect(true)
		return
	}

	// The token's end is the connection's end. The engine connection is
	// closed without a namespace DISCONNECT, so socket.io-client sees
	// "transport close" and reconnects on its own, presenting a fresh token
	// when its auth is a function (after "io server disconnect" it would not).
	expiry := time.AfterFunc(sess.ExpiresAt.Sub(h.opts.Now()), func() {
		log.Info("access token expired: closing the connection")
		s.Conn().Close("forced close")
	})

	// Presence counts connections, not socket ids: a socket recovered by
	// connection state recovery keeps its id, and its old connection's
	// Disconnect may still be running when the new one connects.
	presenceKey := s.ID() + "#" + strconv.FormatUint(connSeq.Add(1), 36)
	// Registered before presence.Connect: the disconnect handlers run after
	// this function on the socket's own goroutine, so Disconnect always
	// follows Connect.
	s.OnDisconnect(func(reason string) {
		expiry.Stop()
		cancel()
		dctx, dcancel := context.WithTimeout(context.Background(), h.opts.HandlerTimeout)
		defer dcancel()
		if _, err := h.opts.Presence.Disconnect(dctx, sess.UserID, presenceKey); err != nil {
			log.Error("presence disconnect failed", "reason", reason, "err", err)
		}
	})

	pctx, pcancel := context.WithTimeout(ctx, h.opts.HandlerTimeout)
	if _, err := h.opts.Presence.Connect(pctx, sess.UserID, presenceKey); err != nil {
		log.Error("presence connect failed", "err", err)
	}
	pcancel()

	c.On(presence.StatusEvent, h.setStatus(c))
	for _, f := range h.opts.Features {
		f(c)
	}
}

// tooManyRooms answers a Join refused by the server's rooms-per-socket limit.
func tooManyRooms(code, what string) error {
	return errs.New(code, what+": this connection is in too many rooms (leave some first)")
}

// statusMessage lists the valid statuses for validation answers.
var statusMessage = "status must be one of online, away, busy, in-game, offline"

// setStatus handles user:status {status} from the client.
func (h *handlers) setStatus(c *Conn) HandlerFunc {
	return func(ctx context.Context, ev *socketio.Event) error {
		var in struct {
			Status *string `json:"status"`
		}
		if err := Decode(ev, &in); err != nil {
			return err
		}
		if in.Status == nil {
			return errs.Validation("status is required", map[string]string{"status": "is required"})
		}
		if !presence.Valid(*in.Status) {
			return errs.Validation(statusMessage, map[string]string{"status": "is not a valid status"})
		}
		err := h.opts.Presence.SetStatus(ctx, c.User.UserID, *in.Status)
		switch {
		case errors.Is(err, presence.ErrInvalidStatus):
			return errs.Validation(statusMessage, map[string]string{"status": "is not a valid status"})
		case errors.Is(err, presence.ErrNotConnected):
			return errs.Internal(err)
		case err != nil:
			// The status changed; only saving it or telling a friend failed.
			c.Logger().Error("status change side effect failed", "status", *in.Status, "err", err)
		}
		return OK(ev, map[string]any{"status": *in.Status})
	}
}
