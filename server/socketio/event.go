package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/maoga/maoga/server/parser"
)

// ErrAlreadyAcked is returned by a second Event.Ack.
var ErrAlreadyAcked = errors.New("socketio: event already acknowledged")

// ErrNoAck is returned by Event.Ack when the sender did not ask for an acknowledgement.
var ErrNoAck = errors.New("socketio: event has no acknowledgement")

// Event is one event received from a client (or from another node, see Namespace.OnServerSideEmit).
type Event struct {
	name   string
	args   []json.RawMessage
	atts   [][]byte
	socket *Socket
	ack    func(data json.RawMessage, atts [][]byte)
	acked  atomic.Bool
}

// Name returns the event name.
func (e *Event) Name() string { return e.name }

// Socket returns the socket the event came from (nil for server-side events).
func (e *Event) Socket() *Socket { return e.socket }

// Args returns the arguments as received, binary placeholders kept (see Attachments).
func (e *Event) Args() []json.RawMessage { return e.args }

// Attachments returns the binary attachments the placeholders of Args refer to.
func (e *Event) Attachments() [][]byte { return e.atts }

// Decode decodes the positional arguments into ptrs (ptrs[i] receives argument i), like json.Unmarshal;
// binary placeholders decode into []byte (or []byte inside any). Missing arguments leave their target
// untouched; a nil pointer skips that argument.
func (e *Event) Decode(ptrs ...any) error {
	for i, p := range ptrs {
		if p == nil || i >= len(e.args) {
			continue
		}
		if err := parser.Decode(e.args[i], e.atts, p); err != nil {
			return fmt.Errorf("socketio: event %q argument %d: %w", e.name, i, err)
		}
	}
	return nil
}

// HasAck reports whether the sender waits for an acknowledgement.
func (e *Event) HasAck() bool { return e.ack != nil }

// Ack answers the event with args ([]byte values become binary attachments). Only the first call sends.
func (e *Event) Ack(args ...any) error {
	if e.ack == nil {
		return ErrNoAck
	}
	if !e.acked.CompareAndSwap(false, true) {
		return ErrAlreadyAcked
	}
	data, atts, err := parser.MarshalArgs(args...)
	if err != nil {
		e.acked.Store(false)
		return err
	}
	e.ack(data, atts)
	return nil
}

// repliesFromPacket splits an ack payload into its arguments. Binary placeholders are replaced by the
// attachment as a base64 JSON string, so that json.Unmarshal into []byte restores it.
func repliesFromPacket(data json.RawMessage, atts [][]byte) ([]json.RawMessage, error) {
	if len(data) == 0 {
		return []json.RawMessage{}, nil
	}
	args, err := parser.ReconstructArgs(data, atts)
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return args, nil
	}
	out := make([]json.RawMessage, len(args))
	for i, a := range args {
		var v any
		if err := parser.Decode(a, atts, &v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
