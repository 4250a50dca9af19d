package socket

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/maoga/maoga/server/socketio"
	"github.com/maoga/maoga/services/errs"
)

// ErrorEvent is the event a failed client action answers with (EVENTS.md, Conventions).
const ErrorEvent = "error"

// ErrorBody is the payload of ErrorEvent and the error inside a failed ack.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// failedAck is the ack envelope of a failure.
type failedAck struct {
	OK    bool      `json:"ok"`
	Error ErrorBody `json:"error"`
}

// Decode strictly decodes the event's first argument into v (a pointer to a
// struct): it must be one JSON object with only known fields and values of
// the right types. Anything else is a VALIDATION_ERROR whose message names
// the problem. Checking required fields and lengths is the caller's job.
func Decode(ev *socketio.Event, v any) error {
	args := ev.Args()
	if len(args) == 0 {
		return errs.Validation("payload is required", nil)
	}
	raw := bytes.TrimSpace(args[0])
	if len(raw) == 0 || raw[0] != '{' {
		return errs.Validation("payload must be an object", nil)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.Validation("payload must be one JSON object", nil)
	}
	return nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return errs.Validation("payload must be an object", nil)
		}
		return errs.Validation(fmt.Sprintf("%s must be a %s", field, jsonKind(te.Type.Kind().String())),
			map[string]string{field: "has the wrong type"})
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		field := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return errs.Validation("unknown field "+field, map[string]string{field: "is not allowed"})
	}
	return errs.Validation("payload is not valid JSON", nil)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "slice", "array":
		return "array"
	}
	return "object"
}

// Fail answers a failed action: the event `error` with {code, message} to the
// socket and, when the client asked for an ack, {ok:false, error:{code,
// message}}. Errors without a code are INTERNAL: their cause is logged here
// (once) and never sent to the client. SERVICE_UNAVAILABLE (the store is
// unreachable) reaches the client with its code and is logged at debug level.
func Fail(log *slog.Logger, ev *socketio.Event, err error) {
	e := errs.From(err)
	body := ErrorBody{Code: e.Code, Message: e.Message}
	switch e.Code {
	case errs.CodeServiceUnavailable:
		// The store (or Redis) is down: its watcher logs the outage once, not every event.
		log.Debug("socket action failed: service unavailable", "event", ev.Name(), "err", err)
	case errs.CodeInternal:
		log.Error("socket handler failed", "event", ev.Name(), "code", e.Code, "err", err)
	default:
		log.Debug("socket action refused", "event", ev.Name(), "code", e.Code, "message", e.Message)
	}
	if s := ev.Socket(); s != nil {
		if err := s.Emit(ErrorEvent, body); err != nil && !errors.Is(err, socketio.ErrDisconnected) {
			log.Warn("sending error event failed", "event", ev.Name(), "err", err)
		}
	}
	if ev.HasAck() {
		_ = ev.Ack(failedAck{OK: false, Error: body})
	}
}

// OK acknowledges a successful action with {ok:true, ...fields}, where
// fields (a struct or map marshalling to a JSON object, or nil) are merged
// beside ok. Without an ack requested it does nothing. A second ack of the
// same event is ignored.
func OK(ev *socketio.Event, fields any) error {
	if !ev.HasAck() {
		return nil
	}
	out := map[string]json.RawMessage{}
	if fields != nil {
		raw, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("socket: marshal ack of %s: %w", ev.Name(), err)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("socket: ack fields of %s are not an object: %w", ev.Name(), err)
		}
	}
	out["ok"] = json.RawMessage("true")
	if err := ev.Ack(out); err != nil && !errors.Is(err, socketio.ErrAlreadyAcked) {
		return err
	}
	return nil
}

// RateLimitedAck is the ack answer of an event the protocol layer refused for going past the
// per-socket event rate (socketio.Limits.RateLimitedAck): the same {ok:false, error} shape as Fail.
func RateLimitedAck(event string) []any {
	return []any{failedAck{OK: false, Error: ErrorBody{Code: errs.CodeRateLimited,
		Message: "Too many events: slow down"}}}
}
