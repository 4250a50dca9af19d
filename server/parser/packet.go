package parser

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Type is a Socket.IO packet type.
type Type byte

// Packet types of Socket.IO protocol v5.
const (
	Connect      Type = 0
	Disconnect   Type = 1
	Event        Type = 2
	Ack          Type = 3
	ConnectError Type = 4
	BinaryEvent  Type = 5
	BinaryAck    Type = 6
)

var typeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the seven packet types.
func (t Type) Valid() bool { return t <= BinaryAck }

// NoID is the Packet.ID of a packet that carries no ack id.
const NoID int64 = -1

// DefaultNamespace is the main namespace; it is omitted on the wire.
const DefaultNamespace = "/"

// Packet is one Socket.IO packet.
type Packet struct {
	Type        Type
	Nsp         string          // "/" when absent on the wire
	ID          int64           // ack id, NoID when absent
	Data        json.RawMessage // JSON payload as on the wire (binary placeholders kept), nil if none
	Attachments [][]byte        // binary attachments, in placeholder order
}

// Errors returned by the Decoder. They are wrapped with detail; test with errors.Is.
var (
	ErrEmptyPacket         = errors.New("parser: empty packet")
	ErrUnknownType         = errors.New("parser: unknown packet type")
	ErrIllegalAttachments  = errors.New("parser: illegal attachments")
	ErrTooManyAttachments  = errors.New("parser: too many attachments")
	ErrInvalidID           = errors.New("parser: invalid ack id")
	ErrInvalidPayload      = errors.New("parser: invalid payload")
	ErrReservedEvent       = errors.New("parser: reserved event name")
	ErrUnexpectedBinary    = errors.New("parser: got binary data when not reconstructing a packet")
	ErrUnexpectedPlaintext = errors.New("parser: got plaintext data when reconstructing a packet")
	ErrTooDeep             = errors.New("parser: JSON payload nested too deeply")
)

// reserved are the event names that have a meaning of their own in Socket.IO
// (and in Node's EventEmitter); a peer may not emit them.
var reserved = map[string]struct{}{
	"connect":        {},
	"connect_error":  {},
	"disconnect":     {},
	"disconnecting":  {},
	"newListener":    {},
	"removeListener": {},
}

// IsReservedEvent reports whether name is reserved by Socket.IO and may
// therefore neither be emitted nor received as an event name.
func IsReservedEvent(name string) bool {
	_, ok := reserved[name]
	return ok
}

// wireType is the type written on the wire: Event/Ack with attachments
// become BinaryEvent/BinaryAck. ok is false when the packet carries binary
// attachments its type cannot carry.
func wireType(p *Packet) Type {
	switch p.Type {
	case Event:
		if len(p.Attachments) > 0 {
			return BinaryEvent
		}
	case Ack:
		if len(p.Attachments) > 0 {
			return BinaryAck
		}
	}
	return p.Type
}

// Encode writes p as the text frame and the binary frames to send, in order.
// An Event or Ack with attachments is written as BINARY_EVENT/BINARY_ACK;
// attachments on other types are not sent. The namespace "/" (or "") is
// omitted. Encode does not validate the payload: it trusts the caller (use
// MarshalArgs to build event payloads).
func Encode(p *Packet) (text []byte, attachments [][]byte) {
	n := 1 + 4 + len(p.Nsp) + 1 + 20 + len(p.Data)
	text, attachments = AppendEncode(make([]byte, 0, n), p)
	return text, attachments
}

// AppendEncode is Encode appending the text frame to dst.
func AppendEncode(dst []byte, p *Packet) (text []byte, attachments [][]byte) {
	t := wireType(p)
	dst = append(dst, '0'+byte(t))
	if t == BinaryEvent || t == BinaryAck {
		attachments = p.Attachments
		dst = strconv.AppendInt(dst, int64(len(attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Nsp != "" && p.Nsp != DefaultNamespace {
		dst = append(dst, p.Nsp...)
		dst = append(dst, ',')
	}
	if p.ID >= 0 {
		dst = strconv.AppendInt(dst, p.ID, 10)
	}
	dst = append(dst, p.Data...)
	return dst, attachments
}
