package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultMaxAttachments is the Decoder's attachment limit when MaxAttachments is 0.
const DefaultMaxAttachments = 10

// DefaultMaxDepth is the Decoder's JSON nesting limit when MaxDepth is 0. The
// payload array of an EVENT is level 1, so its arguments may nest 63 levels.
// encoding/json's own limit (10000) is far past anything a client needs and
// lets one message make the server build thousands of nested values.
const DefaultMaxDepth = 64

// Decoder turns the Engine.IO messages of one connection back into packets.
// It keeps the state of a binary packet whose attachments are still
// arriving, so use one Decoder per connection and call Add in message order.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxAttachments bounds the attachments a binary packet may declare;
	// a packet declaring more is an error. 0 means DefaultMaxAttachments.
	MaxAttachments int
	// MaxDepth bounds the nesting of arrays and objects in a packet's JSON
	// payload; a deeper payload is an error (ErrTooDeep) before any of it is
	// decoded. 0 means DefaultMaxDepth, negative turns the check off.
	MaxDepth int

	pending *Packet // binary packet waiting for attachments
	want    int     // attachments pending wants in total
}

// Add feeds one Engine.IO message. It returns the completed packet, or
// nil, nil while a binary packet still waits for attachments. data is
// copied. After an error the Decoder is reset; the caller should close the
// connection (Socket.IO does).
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, ErrUnexpectedBinary
		}
		p := d.pending
		p.Attachments = append(p.Attachments, bytes.Clone(nonNil(data)))
		if len(p.Attachments) < d.want {
			return nil, nil
		}
		d.Reset()
		if err := checkPlaceholders(p.Data, len(p.Attachments)); err != nil {
			return nil, err
		}
		return p, nil
	}
	if d.pending != nil {
		d.Reset()
		return nil, ErrUnexpectedPlaintext
	}
	max := d.MaxAttachments
	if max <= 0 {
		max = DefaultMaxAttachments
	}
	depth := d.MaxDepth
	if depth == 0 {
		depth = DefaultMaxDepth
	}
	p, n, err := decodeText(data, max, depth)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		p.Attachments = make([][]byte, 0, n)
		d.pending, d.want = p, n
		return nil, nil
	}
	// A packet without attachments (also "50-[...]") is delivered as is:
	// like Node, placeholders in it are not interpreted (Decode only maps
	// placeholders when there are attachments).
	return p, nil
}

// Reset drops a partially received binary packet.
func (d *Decoder) Reset() {
	d.pending, d.want = nil, 0
}

// Pending reports whether a binary packet is waiting for attachments.
func (d *Decoder) Pending() bool { return d.pending != nil }

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// decodeText parses a text frame. It returns the packet (Binary types
// already normalised to Event/Ack) and the number of attachments to wait for.
func decodeText(s []byte, maxAttachments, maxDepth int) (*Packet, int, error) {
	if len(s) == 0 {
		return nil, 0, ErrEmptyPacket
	}
	t := Type(s[0] - '0')
	if s[0] < '0' || !t.Valid() {
		return nil, 0, fmt.Errorf("%w: %q", ErrUnknownType, s[0])
	}
	i := 1
	n := 0
	if t == BinaryEvent || t == BinaryAck {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			if n > maxAttachments {
				return nil, 0, fmt.Errorf("%w: more than %d", ErrTooManyAttachments, maxAttachments)
			}
			i++
		}
		if i == start || i == len(s) || s[i] != '-' {
			return nil, 0, ErrIllegalAttachments
		}
		i++
	}
	p := &Packet{Type: t, Nsp: DefaultNamespace, ID: NoID}
	if i < len(s) && s[i] == '/' {
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			p.Nsp = string(s[i:])
			i = len(s)
		} else {
			p.Nsp = string(s[i : i+j])
			i += j + 1
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		var id int64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			d := int64(s[i] - '0')
			if id > (maxSafeID-d)/10 {
				return nil, 0, ErrInvalidID
			}
			id = id*10 + d
			i++
		}
		p.ID = id
	}
	payload := s[i:]
	if maxDepth > 0 && nestedDeeper(payload, maxDepth) {
		return nil, 0, fmt.Errorf("%w: more than %d levels", ErrTooDeep, maxDepth)
	}
	if err := checkPayload(t, payload); err != nil {
		return nil, 0, err
	}
	if len(payload) > 0 {
		p.Data = bytes.Clone(payload)
	}
	switch t {
	case BinaryEvent:
		p.Type = Event
	case BinaryAck:
		p.Type = Ack
	}
	return p, n, nil
}

// nestedDeeper reports whether the arrays and objects of the JSON text b nest
// deeper than max. It only counts brackets outside strings, so it is linear
// and allocation-free; whether b is valid JSON is checked afterwards.
func nestedDeeper(b []byte, max int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// skip the string: to the next quote that is not escaped
			for i++; i < len(b); i++ {
				if b[i] == '\\' {
					i++
				} else if b[i] == '"' {
					break
				}
			}
		case '[', '{':
			depth++
			if depth > max {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

// maxSafeID is the largest ack id accepted: JavaScript numbers are exact up
// to 2^53-1, and Node's parser reads ids as numbers.
const maxSafeID = 1<<53 - 1

// checkPayload applies the payload rules of the reference parser.
func checkPayload(t Type, payload []byte) error {
	first := firstByte(payload)
	if first == 0 && len(payload) > 0 {
		return fmt.Errorf("%w: blank payload", ErrInvalidPayload)
	}
	switch t {
	case Connect:
		// absent, or an object (the auth payload)
		if first == 0 {
			return nil
		}
		if first != '{' {
			return fmt.Errorf("%w: CONNECT payload must be an object", ErrInvalidPayload)
		}
	case Disconnect:
		if len(payload) > 0 {
			return fmt.Errorf("%w: DISCONNECT carries no payload", ErrInvalidPayload)
		}
		return nil
	case ConnectError:
		if first == 0 {
			return nil
		}
		if first != '{' && first != '"' {
			return fmt.Errorf("%w: CONNECT_ERROR payload must be an object", ErrInvalidPayload)
		}
	case Event, BinaryEvent:
		if first != '[' {
			return fmt.Errorf("%w: EVENT payload must be an array", ErrInvalidPayload)
		}
		if !json.Valid(payload) {
			return fmt.Errorf("%w: malformed JSON", ErrInvalidPayload)
		}
		if raw, ok := plainStringName(payload); ok {
			// the common case, checked without allocating
			if _, bad := reserved[string(raw)]; bad {
				return fmt.Errorf("%w: %q", ErrReservedEvent, raw)
			}
			return nil
		}
		name, err := EventName(payload)
		if err != nil {
			return err
		}
		if IsReservedEvent(name) {
			return fmt.Errorf("%w: %q", ErrReservedEvent, name)
		}
		return nil
	case Ack, BinaryAck:
		if first != '[' {
			return fmt.Errorf("%w: ACK payload must be an array", ErrInvalidPayload)
		}
	}
	if !json.Valid(payload) {
		return fmt.Errorf("%w: malformed JSON", ErrInvalidPayload)
	}
	return nil
}

// firstByte returns the first non-space byte of a JSON text, 0 if none.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// EventName returns the event name of an EVENT payload: the first element
// of the array, a string or — as Node's parser allows — a number, given in
// the text form JavaScript uses as a property key (1.0 → "1"). data must be
// valid JSON.
func EventName(data json.RawMessage) (string, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return "", fmt.Errorf("%w: EVENT payload must be an array", ErrInvalidPayload)
	}
	i = skipSpace(data, i+1)
	if i < len(data) && (data[i] == '-' || data[i] >= '0' && data[i] <= '9') {
		return numberName(data[i:])
	}
	if i >= len(data) || data[i] != '"' {
		return "", fmt.Errorf("%w: EVENT payload must start with the event name", ErrInvalidPayload)
	}
	start := i
	escaped := false
	for i++; i < len(data); i++ {
		c := data[i]
		if c == '\\' {
			escaped = true
			i++
			continue
		}
		if c == '"' {
			break
		}
	}
	if i >= len(data) {
		return "", fmt.Errorf("%w: unterminated event name", ErrInvalidPayload)
	}
	if !escaped {
		return string(data[start+1 : i]), nil
	}
	var name string
	if err := json.Unmarshal(data[start:i+1], &name); err != nil {
		return "", fmt.Errorf("%w: event name: %v", ErrInvalidPayload, err)
	}
	return name, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		return i
	}
	return i
}

// numberName reads the JSON number at the start of b and formats it as
// JavaScript's Number#toString would for the usual cases.
func numberName(b []byte) (string, error) {
	end := 0
	for end < len(b) && strings.IndexByte("+-0123456789.eE", b[end]) >= 0 {
		end++
	}
	f, err := strconv.ParseFloat(string(b[:end]), 64)
	if err != nil {
		return "", fmt.Errorf("%w: event name %q", ErrInvalidPayload, b[:end])
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		if f == 0 {
			return "0", nil // -0 too
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// plainStringName returns the bytes of the event name when it is a string
// without escapes right after the opening bracket.
func plainStringName(data []byte) ([]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(data[i+1:], '"')
	if end < 0 {
		return nil, false
	}
	name := data[i+1 : i+1+end]
	if bytes.IndexByte(name, '\\') >= 0 {
		return nil, false
	}
	return name, true
}
