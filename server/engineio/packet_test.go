package engineio

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodePacket(t *testing.T) {
	cases := []struct {
		in     string
		typ    byte
		data   string
		binary bool
		err    bool
	}{
		{"4hello", typeMessage, "hello", false, false},
		{"4", typeMessage, "", false, false},
		{"2probe", typePing, "probe", false, false},
		{"3", typePong, "", false, false},
		{"6", typeNoop, "", false, false},
		{"0{}", typeOpen, "{}", false, false},
		{"bAQIDBA==", typeMessage, "\x01\x02\x03\x04", true, false},
		{"bAQIDBA", typeMessage, "\x01\x02\x03\x04", true, false},
		{"b", typeMessage, "", true, false},
		{"b!!", 0, "", false, true},
		{"", 0, "", false, true},
		{"7", 0, "", false, true},
		{"abc", 0, "", false, true},
		{"/", 0, "", false, true},
	}
	for _, tc := range cases {
		var scratch []byte
		p, err := decodePacket([]byte(tc.in), &scratch)
		if tc.err {
			if !errors.Is(err, errParse) {
				t.Errorf("%q: err %v, want errParse", tc.in, err)
			}
			continue
		}
		if err != nil || p.typ != tc.typ || string(p.data) != tc.data || p.binary != tc.binary {
			t.Errorf("%q: got %c %q bin=%v err=%v", tc.in, p.typ, p.data, p.binary, err)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	var got []string
	err := decodePayload([]byte("4a\x1ebAQ==\x1e3\x1e4"), nil, func(p packet) error {
		got = append(got, string(p.typ)+string(p.data))
		return nil
	})
	if err != nil || len(got) != 4 || got[0] != "4a" || got[1] != "4\x01" || got[2] != "3" || got[3] != "4" {
		t.Fatalf("got %q err %v", got, err)
	}
	// stops at the first invalid packet, after delivering the ones before it
	got = nil
	err = decodePayload([]byte("4a\x1e\x1e4b"), nil, func(p packet) error {
		got = append(got, string(p.data))
		return nil
	})
	if !errors.Is(err, errParse) || len(got) != 1 {
		t.Fatalf("empty element: got %q err %v", got, err)
	}
	stop := errors.New("stop")
	n := 0
	err = decodePayload([]byte("4a\x1e4b"), nil, func(packet) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("callback error not returned: %v after %d", err, n)
	}
}

func TestAppendPayload(t *testing.T) {
	got := appendPayload(nil, []packet{
		{typ: typeMessage, data: []byte("hello")},
		{typ: typeMessage, data: []byte{1, 2, 3, 4}, binary: true},
		{typ: typePing},
	})
	if string(got) != "4hello\x1ebAQIDBA==\x1e2" {
		t.Fatalf("got %q", got)
	}
}

// roundTrip re-encodes decoded packets and checks that decoding gives them back.
func roundTrip(t *testing.T, pkts []packet) {
	enc := appendPayload(nil, pkts)
	i := 0
	err := decodePayload(enc, nil, func(p packet) error {
		q := pkts[i]
		if p.typ != q.typ || p.binary != q.binary || !bytes.Equal(p.data, q.data) {
			t.Fatalf("packet %d: %+v != %+v (payload %q)", i, p, q, enc)
		}
		i++
		return nil
	})
	if err != nil || i != len(pkts) {
		t.Fatalf("re-decode of %q: %v after %d/%d", enc, err, i, len(pkts))
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1e4b\x1ebAQIDBA==", "2probe\x1e3\x1e6", "1", "abc", "", "\x1e", "b====", "4é\x1e5"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var pkts []packet
		var scratch []byte
		err := decodePayload(payload, &scratch, func(p packet) error {
			// data may alias scratch or payload: copy as a handler would
			p.data = append([]byte(nil), p.data...)
			pkts = append(pkts, p)
			return nil
		})
		if err != nil && !errors.Is(err, errParse) {
			t.Fatalf("unexpected error %v", err)
		}
		for _, p := range pkts {
			if p.typ < typeOpen || p.typ > typeNoop {
				t.Fatalf("invalid type %q decoded", p.typ)
			}
			// a text packet containing the separator cannot be re-encoded losslessly
			if !p.binary && bytes.IndexByte(p.data, separator) >= 0 {
				t.Fatalf("separator inside decoded packet %q", p.data)
			}
		}
		if len(pkts) > 0 {
			roundTrip(t, pkts)
		}
	})
}

func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"4hello", "bAQIDBA==", "bAQIDBA", "2probe", "0{\"sid\":\"x\"}", "7", "", "b!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var scratch []byte
		p, err := decodePacket(in, &scratch)
		if err != nil {
			if !errors.Is(err, errParse) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p.binary {
			if p.typ != typeMessage || in[0] != 'b' {
				t.Fatalf("binary packet from %q", in)
			}
			enc := appendPacket(nil, p)
			var s2 []byte
			p2, err := decodePacket(enc, &s2)
			if err != nil || !bytes.Equal(p2.data, p.data) {
				t.Fatalf("binary round trip of %q: %v", in, err)
			}
			return
		}
		if enc := appendPacket(nil, p); !bytes.Equal(enc, in) {
			t.Fatalf("text packet %q re-encoded as %q", in, enc)
		}
	})
}
