package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecoder feeds a text frame followed by up to three binary frames.
// The decoder must never panic, must report only its own errors, and any
// packet it produces must survive Encode → Decoder unchanged.
func FuzzDecoder(f *testing.F) {
	f.Add(`2["hello",1]`, []byte(nil), []byte(nil), uint8(0))
	f.Add(`51-/admin,12["up",{"_placeholder":true,"num":0}]`, []byte{1, 2}, []byte(nil), uint8(1))
	f.Add(`62-3[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`, []byte{1}, []byte{}, uint8(2))
	f.Add(`0/chat,{"token":"x"}`, []byte(nil), []byte(nil), uint8(0))
	f.Add(`4{"message":"nope","data":{"a":1}}`, []byte(nil), []byte(nil), uint8(0))
	f.Add(`1/x,`, []byte(nil), []byte(nil), uint8(0))
	f.Add(`51-["a",{"_placeholder":true,"num":0}]`, []byte{1}, []byte{2}, uint8(3))
	f.Fuzz(func(t *testing.T, text string, b1, b2 []byte, nbin uint8) {
		d := Decoder{MaxAttachments: 3}
		frames := [][]byte{b1, b2, b1}[:nbin%4]
		p, err := d.Add([]byte(text), false)
		for _, b := range frames {
			if err != nil {
				break
			}
			var q *Packet
			q, err = d.Add(b, true)
			if q != nil {
				p = q
			}
		}
		if err != nil {
			if !isParserError(err) {
				t.Fatalf("foreign error %v", err)
			}
			return
		}
		if p == nil {
			return
		}
		if p.Type > ConnectError {
			t.Fatalf("binary type not normalised: %v", p.Type)
		}
		text2, atts := Encode(p)
		var d2 Decoder
		p2, err := d2.Add(text2, false)
		for _, a := range atts {
			if err != nil {
				break
			}
			p2, err = d2.Add(a, true)
		}
		if err != nil || p2 == nil {
			t.Fatalf("re-encoded %q (from %q) does not decode: %v", text2, text, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip of %q:\n%+v\n%+v", text, p, p2)
		}
		if p.Type == Event || p.Type == Ack {
			args, err := ReconstructArgs(p.Data, p.Attachments)
			if err != nil {
				t.Fatalf("decoded packet %q has bad args: %v", text, err)
			}
			for _, a := range args {
				var v any
				if err := Decode(a, p.Attachments, &v); err != nil && len(p.Attachments) > 0 &&
					errors.Is(err, ErrIllegalAttachments) {
					t.Fatalf("placeholder accepted by decoder rejected by Decode: %s", a)
				}
			}
		}
	})
}

func isParserError(err error) bool {
	for _, e := range []error{ErrEmptyPacket, ErrUnknownType, ErrIllegalAttachments, ErrTooManyAttachments,
		ErrInvalidID, ErrInvalidPayload, ErrReservedEvent, ErrUnexpectedBinary, ErrUnexpectedPlaintext, ErrTooDeep} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzRoundTrip builds packets from Go values and checks that encoding and
// decoding gives back the packet and the values.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(2), "/", int64(-1), "hello", []byte(nil))
	f.Add(uint8(2), "/chat", int64(7), "with binary", []byte{0, 1, 2})
	f.Add(uint8(3), "/a", int64(0), "", []byte{})
	f.Add(uint8(0), "/x", int64(-1), "token", []byte(nil))
	f.Add(uint8(4), "/", int64(-1), "Not authorized", []byte(nil))
	f.Add(uint8(1), "/y", int64(-1), "", []byte(nil))
	f.Add(uint8(2), "/", int64(1<<53), "\u2028\x00\"\\", []byte{255})
	f.Fuzz(func(t *testing.T, typ uint8, nsp string, id int64, arg string, bin []byte) {
		p := &Packet{Type: Type(typ % 5), Nsp: "/" + strings.ReplaceAll(nsp, ",", ""), ID: id}
		if p.ID < 0 {
			p.ID = NoID
		}
		p.ID %= maxSafeID + 1
		var err error
		var args []any
		switch p.Type {
		case Connect:
			p.Data, err = json.Marshal(map[string]string{"token": arg})
		case Disconnect:
		case ConnectError:
			p.Data, err = json.Marshal(map[string]any{"message": arg, "data": nil})
		case Event:
			if IsReservedEvent(arg) {
				arg += "!"
			}
			args = []any{arg, arg, bin, map[string]any{"b": bin, "n": 1.5}}
			p.Data, p.Attachments, err = MarshalArgs(args...)
		case Ack:
			args = []any{bin, arg}
			p.Data, p.Attachments, err = MarshalArgs(args...)
		}
		if err != nil {
			t.Fatal(err)
		}
		text, atts := Encode(p)
		var d Decoder
		got, err := d.Add(text, false)
		for _, a := range atts {
			if err != nil {
				break
			}
			got, err = d.Add(a, true)
		}
		if err != nil || got == nil {
			t.Fatalf("%q: %v", text, err)
		}
		if got.Nsp != p.Nsp && !(p.Nsp == "/" && got.Nsp == DefaultNamespace) {
			t.Fatalf("nsp %q → %q", p.Nsp, got.Nsp)
		}
		if got.Type != p.Type || got.ID != p.ID || !bytes.Equal(got.Data, p.Data) || len(got.Attachments) != len(p.Attachments) {
			t.Fatalf("%q:\n got %+v\nwant %+v", text, got, p)
		}
		if args == nil {
			return
		}
		raw, err := ReconstructArgs(got.Data, got.Attachments)
		if err != nil || len(raw) != len(args) {
			t.Fatalf("args: %v %v", raw, err)
		}
		for i, want := range args {
			switch want := want.(type) {
			case string:
				var s string
				if err := Decode(raw[i], got.Attachments, &s); err != nil {
					t.Fatal(err)
				}
				// Invalid UTF-8 becomes U+FFFD per byte, as with encoding/json.
				var viaJSON string
				j, _ := json.Marshal(want)
				_ = json.Unmarshal(j, &viaJSON)
				if s != viaJSON {
					t.Fatalf("string %q → %q", want, s)
				}
			case []byte:
				var b []byte
				if err := Decode(raw[i], got.Attachments, &b); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, want) || (want == nil) != (b == nil) {
					t.Fatalf("bytes %v → %v", want, b)
				}
			case map[string]any:
				var m map[string]any
				if err := Decode(raw[i], got.Attachments, &m); err != nil {
					t.Fatal(err)
				}
				if want["b"] == nil || len(want["b"].([]byte)) == 0 && want["b"].([]byte) == nil {
					continue
				}
				if !bytes.Equal(m["b"].([]byte), want["b"].([]byte)) || m["n"] != 1.5 {
					t.Fatalf("map %v → %v", want, m)
				}
			}
		}
	})
}
