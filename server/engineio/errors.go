package engineio

import (
	"errors"
	"net/http"
	"strconv"
)

// Handshake error codes, as Node's engine.io Server.errors.
const (
	CodeUnknownTransport    = 0
	CodeUnknownSID          = 1
	CodeBadHandshakeMethod  = 2
	CodeBadRequest          = 3
	CodeForbidden           = 4
	CodeUnsupportedProtocol = 5
)

var codeMessages = [...]string{
	CodeUnknownTransport:    "Transport unknown",
	CodeUnknownSID:          "Session ID unknown",
	CodeBadHandshakeMethod:  "Bad handshake method",
	CodeBadRequest:          "Bad request",
	CodeForbidden:           "Forbidden",
	CodeUnsupportedProtocol: "Unsupported protocol version",
}

// MessagePayloadTooLarge is the message of the 413 answer to a polling POST
// over maxPayload (status 413, code CodeBadRequest).
const MessagePayloadTooLarge = "Payload too large"

// RequestError is a refused Engine.IO request: HTTP status plus the JSON body
// {"code":N,"message":"..."} that Node's engine.io answers.
type RequestError struct {
	Code    int
	Message string
	Status  int
}

func (e *RequestError) Error() string {
	return "engineio: request refused: " + e.Message + " (code " + strconv.Itoa(e.Code) + ")"
}

func newRequestError(code int) *RequestError {
	status := http.StatusBadRequest
	if code == CodeForbidden {
		status = http.StatusForbidden
	}
	return &RequestError{Code: code, Message: codeMessages[code], Status: status}
}

// write answers the request with the JSON error body.
func (e *RequestError) write(w http.ResponseWriter) {
	body := make([]byte, 0, 64+len(e.Message))
	body = append(body, `{"code":`...)
	body = strconv.AppendInt(body, int64(e.Code), 10)
	body = append(body, `,"message":`...)
	body = strconv.AppendQuote(body, e.Message)
	body = append(body, '}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// Errors returned by Conn methods and passed to Handler.OnClose.
var (
	ErrClosed         = errors.New("engineio: connection closed")
	ErrQueueFull      = errors.New("engineio: outgoing queue full (slow client)")
	ErrPayloadTooBig  = errors.New("engineio: payload exceeds maxPayload")
	ErrPollOverlap    = errors.New("engineio: overlapping poll requests")
	ErrPostOverlap    = errors.New("engineio: overlapping data requests")
	ErrPollAborted    = errors.New("engineio: poll connection closed prematurely")
	ErrHeartbeatOrder = errors.New("engineio: invalid heartbeat direction")
	ErrBinaryPost     = errors.New("engineio: binary content-type is not allowed in protocol v4")
)
