// Package errs is the one error type the services and handlers share: a stable machine-readable code,
// a human message, optional details, and the HTTP status the REST layer answers with. The socket layer
// sends the same code and message as `{ code, message }` (see shared/design/EVENTS.md).
package errs

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
)

// REST codes (shared/design/REST.md).
const (
	CodeValidation         = "VALIDATION_ERROR"
	CodeUnauthorized       = "UNAUTHORIZED"
	CodeForbidden          = "FORBIDDEN"
	CodeNotFound           = "NOT_FOUND"
	CodeConflict           = "CONFLICT"
	CodePayloadTooLarge    = "PAYLOAD_TOO_LARGE"
	CodeRateLimited        = "RATE_LIMITED"
	CodeInternal           = "INTERNAL"
	CodeServiceUnavailable = "SERVICE_UNAVAILABLE"
)

// Socket codes (shared/design/EVENTS.md). VALIDATION_ERROR is shared with REST.
const (
	CodeChatNotFound      = "CHAT_NOT_FOUND"
	CodeAccessDenied      = "ACCESS_DENIED"
	CodeJoinError         = "JOIN_ERROR"
	CodeNotInChat         = "NOT_IN_CHAT"
	CodeMessageError      = "MESSAGE_ERROR"
	CodeLobbyNotFound     = "LOBBY_NOT_FOUND"
	CodeLobbyError        = "LOBBY_ERROR"
	CodeReadyError        = "READY_ERROR"
	CodeNotHost           = "NOT_HOST"
	CodeKickError         = "KICK_ERROR"
	CodeMatchNotFound     = "MATCH_NOT_FOUND"
	CodeSubscriptionError = "SUBSCRIPTION_ERROR"
	CodeCancelError       = "CANCEL_ERROR"
)

// statusByCode gives each code its HTTP status. Socket codes get the status their REST twin would have,
// so a service may return them from a REST route too.
var statusByCode = map[string]int{
	CodeValidation:         http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeForbidden:          http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeConflict:           http.StatusConflict,
	CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
	CodeRateLimited:        http.StatusTooManyRequests,
	CodeInternal:           http.StatusInternalServerError,
	CodeServiceUnavailable: http.StatusServiceUnavailable,

	CodeChatNotFound:      http.StatusNotFound,
	CodeLobbyNotFound:     http.StatusNotFound,
	CodeMatchNotFound:     http.StatusNotFound,
	CodeAccessDenied:      http.StatusForbidden,
	CodeNotHost:           http.StatusForbidden,
	CodeNotInChat:         http.StatusForbidden,
	CodeJoinError:         http.StatusConflict,
	CodeLobbyError:        http.StatusConflict,
	CodeReadyError:        http.StatusConflict,
	CodeKickError:         http.StatusConflict,
	CodeCancelError:       http.StatusConflict,
	CodeSubscriptionError: http.StatusBadRequest,
	CodeMessageError:      http.StatusBadRequest,
}

// StatusOf returns the HTTP status for a code; unknown codes are 500.
func StatusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is a coded error. Message is safe to show to clients; the wrapped cause (if any) is not sent,
// it is for logs only.
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	Status  int            `json:"-"`

	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code + ": " + e.Message
}

// Unwrap exposes the cause to errors.Is / errors.As.
func (e *Error) Unwrap() error { return e.cause }

// Cause returns the wrapped low-level error, nil if none.
func (e *Error) Cause() error { return e.cause }

// New builds an error with the status that belongs to code.
func New(code, message string) *Error {
	return &Error{Code: code, Message: message, Status: StatusOf(code)}
}

// Wrap builds an error that keeps cause for logs and errors.Is.
func Wrap(code, message string, cause error) *Error {
	e := New(code, message)
	e.cause = cause
	return e
}

// WithDetails returns a copy of e carrying details.
func (e *Error) WithDetails(details map[string]any) *Error {
	c := *e
	c.Details = details
	return &c
}

// Validation is a VALIDATION_ERROR; fields (may be nil) maps each bad field to what is wrong with it
// and travels as details.fields.
func Validation(message string, fields map[string]string) *Error {
	e := New(CodeValidation, message)
	if len(fields) > 0 {
		f := make(map[string]any, len(fields))
		for k, v := range fields {
			f[k] = v
		}
		e.Details = map[string]any{"fields": f}
	}
	return e
}

func Unauthorized(message string) *Error    { return New(CodeUnauthorized, message) }
func Forbidden(message string) *Error       { return New(CodeForbidden, message) }
func NotFound(message string) *Error        { return New(CodeNotFound, message) }
func Conflict(message string) *Error        { return New(CodeConflict, message) }
func PayloadTooLarge(message string) *Error { return New(CodePayloadTooLarge, message) }
func RateLimited(message string) *Error     { return New(CodeRateLimited, message) }

// Internal hides cause from clients ("internal error") but keeps it for the log line. A cause that a
// registered classifier recognises as "a dependency is unreachable" (RegisterUnavailable; the store
// registers the database's) becomes SERVICE_UNAVAILABLE with MsgUnavailable instead: the client may
// retry, and nothing about the request was wrong.
func Internal(cause error) *Error {
	if unreachable(cause) {
		return Unavailable(MsgUnavailable, cause)
	}
	return Wrap(CodeInternal, "internal error", cause)
}

// MsgUnavailable is the client message of a SERVICE_UNAVAILABLE that Internal classified.
const MsgUnavailable = "Service temporarily unavailable, try again shortly"

// Unavailable is SERVICE_UNAVAILABLE: a dependency (store, Redis) cannot be reached right now.
func Unavailable(message string, cause error) *Error {
	return Wrap(CodeServiceUnavailable, message, cause)
}

var (
	classifyMu  sync.RWMutex
	classifiers []func(error) bool
)

// RegisterUnavailable adds a test for low-level errors that mean "a dependency cannot be reached right
// now" (models registers the database driver's at init). This package stays free of drivers; the
// decision still lives in one place per dependency.
func RegisterUnavailable(isUnavailable func(error) bool) {
	classifyMu.Lock()
	defer classifyMu.Unlock()
	classifiers = append(classifiers, isUnavailable)
}

func unreachable(err error) bool {
	if err == nil {
		return false
	}
	classifyMu.RLock()
	defer classifyMu.RUnlock()
	for _, f := range classifiers {
		if f(err) {
			return true
		}
	}
	return false
}

// IsUnavailable reports whether err is SERVICE_UNAVAILABLE, or an uncoded error a registered
// classifier recognises as an unreachable dependency. Such failures are logged once per outage by
// whoever watches the dependency (the store logs the start and the end), so callers log them at
// debug level only.
func IsUnavailable(err error) bool {
	if e, ok := As(err); ok {
		return e.Code == CodeServiceUnavailable
	}
	return unreachable(err)
}

// As finds the *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Is reports whether err (or anything it wraps) is an *Error with code.
func Is(err error, code string) bool {
	e, ok := As(err)
	return ok && e.Code == code
}

// CodeOf returns the code of err, INTERNAL for errors that carry none, "" for nil.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := As(err); ok {
		return e.Code
	}
	return CodeInternal
}

// From turns any error into an *Error: coded errors pass through, anything else becomes INTERNAL
// with err kept as the cause. nil stays nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := As(err); ok {
		return e
	}
	return Internal(err)
}
