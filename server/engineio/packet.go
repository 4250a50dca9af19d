package engineio

import (
	"encoding/base64"
	"errors"
)

// Engine.IO v4 packet types, as their ASCII digit on the wire.
const (
	typeOpen    byte = '0'
	typeClose   byte = '1'
	typePing    byte = '2'
	typePong    byte = '3'
	typeMessage byte = '4'
	typeUpgrade byte = '5'
	typeNoop    byte = '6'
)

// separator joins packets in a long-polling payload (ASCII record separator).
const separator byte = 0x1e

// errParse reports a packet that is not valid Engine.IO v4.
var errParse = errors.New("engineio: invalid packet")

// packet is one outgoing or incoming Engine.IO packet. data is never mutated
// once queued: Message.Data slices are shared between connections.
type packet struct {
	typ    byte
	data   []byte
	binary bool          // only for typeMessage
	sent   chan struct{} // SendFlushed: closed once the packet was written or dropped
}

// signalSent closes the SendFlushed signals of pkts: they were handed to the
// transport, or dropped because the session ended. Every packet leaves the
// queue exactly once, through a write or through finish, so each signal is
// closed exactly once.
func signalSent(pkts []packet) {
	for i := range pkts {
		if pkts[i].sent != nil {
			close(pkts[i].sent)
			pkts[i].sent = nil
		}
	}
}

// decodePacket parses one text-encoded packet (a websocket text frame or one
// element of a polling payload). A "b" prefix is a base64 binary message; its
// bytes are decoded into *scratch (reused by the caller) and returned as data.
func decodePacket(text []byte, scratch *[]byte) (packet, error) {
	if len(text) == 0 {
		return packet{}, errParse
	}
	t := text[0]
	if t == 'b' {
		b, err := decodeBase64(text[1:], scratch)
		if err != nil {
			return packet{}, errParse
		}
		return packet{typ: typeMessage, data: b, binary: true}, nil
	}
	if t < typeOpen || t > typeNoop {
		return packet{}, errParse
	}
	return packet{typ: t, data: text[1:]}, nil
}

// decodeBase64 accepts padded and unpadded standard base64, like Node's Buffer.from(s, "base64").
func decodeBase64(src []byte, scratch *[]byte) ([]byte, error) {
	for len(src) > 0 && src[len(src)-1] == '=' {
		src = src[:len(src)-1]
	}
	enc := base64.RawStdEncoding
	n := enc.DecodedLen(len(src))
	var buf []byte
	if scratch != nil && cap(*scratch) >= n {
		buf = (*scratch)[:n]
	} else {
		buf = make([]byte, n)
		if scratch != nil {
			*scratch = buf
		}
	}
	m, err := enc.Decode(buf, src)
	if err != nil {
		return nil, err
	}
	return buf[:m], nil
}

// decodePayload splits a long-polling payload on the record separator and calls
// fn for each packet in order. Like Node's parser it stops at the first invalid
// packet and returns errParse after delivering the valid ones before it.
// A non-nil error from fn stops the iteration and is returned as is.
func decodePayload(payload []byte, scratch *[]byte, fn func(packet) error) error {
	for {
		end := indexByte(payload, separator)
		elem := payload
		if end >= 0 {
			elem = payload[:end]
		}
		p, err := decodePacket(elem, scratch)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		if end < 0 {
			return nil
		}
		payload = payload[end+1:]
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// appendPacket appends the text encoding of p (binary as "b"+base64) to dst.
func appendPacket(dst []byte, p packet) []byte {
	if p.binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.data)
	}
	dst = append(dst, p.typ)
	return append(dst, p.data...)
}

// appendPayload appends the long-polling encoding of pkts to dst.
func appendPayload(dst []byte, pkts []packet) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, separator)
		}
		dst = appendPacket(dst, p)
	}
	return dst
}
