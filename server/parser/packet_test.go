package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want string
		atts int
	}{
		{"connect main", Packet{Type: Connect, Nsp: "/", ID: NoID}, "0", 0},
		{"connect empty nsp", Packet{Type: Connect, ID: NoID}, "0", 0},
		{"connect auth", Packet{Type: Connect, Nsp: "/", ID: NoID, Data: json.RawMessage(`{"token":"x"}`)}, `0{"token":"x"}`, 0},
		{"connect nsp", Packet{Type: Connect, Nsp: "/admin", ID: NoID, Data: json.RawMessage(`{"sid":"abc"}`)}, `0/admin,{"sid":"abc"}`, 0},
		{"disconnect nsp", Packet{Type: Disconnect, Nsp: "/admin", ID: NoID}, "1/admin,", 0},
		{"event", Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["foo"]`)}, `2["foo"]`, 0},
		{"event id", Packet{Type: Event, Nsp: "/", ID: 12, Data: json.RawMessage(`["foo"]`)}, `212["foo"]`, 0},
		{"event id 0", Packet{Type: Event, Nsp: "/", ID: 0, Data: json.RawMessage(`["foo"]`)}, `20["foo"]`, 0},
		{"event nsp id", Packet{Type: Event, Nsp: "/admin", ID: 456, Data: json.RawMessage(`["bar"]`)}, `2/admin,456["bar"]`, 0},
		{"ack", Packet{Type: Ack, Nsp: "/admin", ID: 456, Data: json.RawMessage(`[]`)}, `3/admin,456[]`, 0},
		{"connect error", Packet{Type: ConnectError, Nsp: "/", ID: NoID, Data: json.RawMessage(`{"message":"Not authorized"}`)}, `4{"message":"Not authorized"}`, 0},
		{"binary event promoted", Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["baz",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2, 3}}},
			`51-["baz",{"_placeholder":true,"num":0}]`, 1},
		{"binary ack nsp id", Packet{Type: Ack, Nsp: "/admin", ID: 456, Data: json.RawMessage(`[{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{3}}},
			`61-/admin,456[{"_placeholder":true,"num":0}]`, 1},
		{"explicit binary type", Packet{Type: BinaryEvent, Nsp: "/", ID: NoID, Data: json.RawMessage(`["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: [][]byte{{1}, {2}}},
			`52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, 2},
		{"attachments on connect ignored", Packet{Type: Connect, Nsp: "/", ID: NoID, Attachments: [][]byte{{1}}}, "0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, atts := Encode(&tt.p)
			if string(text) != tt.want {
				t.Errorf("text = %q, want %q", text, tt.want)
			}
			if len(atts) != tt.atts {
				t.Errorf("attachments = %d, want %d", len(atts), tt.atts)
			}
		})
	}
}

func TestAppendEncodeReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	p := &Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["x"]`)}
	out, _ := AppendEncode(buf[:0], p)
	if &out[0] != &buf[:1][0] {
		t.Fatal("AppendEncode did not append into the given buffer")
	}
}

func decodeAll(t *testing.T, d *Decoder, frames ...any) (*Packet, error) {
	t.Helper()
	var p *Packet
	var err error
	for i, f := range frames {
		switch f := f.(type) {
		case string:
			p, err = d.Add([]byte(f), false)
		case []byte:
			p, err = d.Add(f, true)
		}
		if err != nil {
			return nil, err
		}
		if p != nil && i != len(frames)-1 {
			t.Fatalf("packet completed after frame %d of %d", i+1, len(frames))
		}
	}
	return p, nil
}

func TestDecoderValid(t *testing.T) {
	tests := []struct {
		name   string
		frames []any
		want   Packet
	}{
		{"connect", []any{"0"}, Packet{Type: Connect, Nsp: "/", ID: NoID}},
		{"connect auth", []any{`0{"token":"123"}`}, Packet{Type: Connect, Nsp: "/", ID: NoID, Data: json.RawMessage(`{"token":"123"}`)}},
		{"connect nsp", []any{`0/admin,{"token":"1"}`}, Packet{Type: Connect, Nsp: "/admin", ID: NoID, Data: json.RawMessage(`{"token":"1"}`)}},
		{"connect nsp no comma", []any{`0/admin`}, Packet{Type: Connect, Nsp: "/admin", ID: NoID}},
		{"connect nsp trailing comma", []any{`0/admin,`}, Packet{Type: Connect, Nsp: "/admin", ID: NoID}},
		{"connect nsp with query-like chars", []any{`0/a?b=1,`}, Packet{Type: Connect, Nsp: "/a?b=1", ID: NoID}},
		{"disconnect", []any{"1"}, Packet{Type: Disconnect, Nsp: "/", ID: NoID}},
		{"disconnect nsp", []any{"1/admin,"}, Packet{Type: Disconnect, Nsp: "/admin", ID: NoID}},
		{"event", []any{`2["hello",1]`}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["hello",1]`)}},
		{"event id", []any{`212["hello"]`}, Packet{Type: Event, Nsp: "/", ID: 12, Data: json.RawMessage(`["hello"]`)}},
		{"event id 0", []any{`20["hello"]`}, Packet{Type: Event, Nsp: "/", ID: 0, Data: json.RawMessage(`["hello"]`)}},
		{"event nsp id", []any{`2/admin,456["project:delete",123]`}, Packet{Type: Event, Nsp: "/admin", ID: 456, Data: json.RawMessage(`["project:delete",123]`)}},
		{"event number name (Node allows)", []any{`2[1,"a"]`}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`[1,"a"]`)}},
		{"event escaped name", []any{`2["a\"b"]`}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["a\"b"]`)}},
		{"event spaces", []any{`2 [ "x" ] `}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(` [ "x" ] `)}},
		{"ack", []any{`3/admin,456[]`}, Packet{Type: Ack, Nsp: "/admin", ID: 456, Data: json.RawMessage(`[]`)}},
		{"connect error object", []any{`4{"message":"Not authorized","data":{"a":1}}`}, Packet{Type: ConnectError, Nsp: "/", ID: NoID, Data: json.RawMessage(`{"message":"Not authorized","data":{"a":1}}`)}},
		{"connect error string (v4)", []any{`4"Not authorized"`}, Packet{Type: ConnectError, Nsp: "/", ID: NoID, Data: json.RawMessage(`"Not authorized"`)}},
		{"binary event", []any{`51-["hello",{"_placeholder":true,"num":0}]`, []byte{1, 2, 3}},
			Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["hello",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2, 3}}}},
		{"binary ack nsp", []any{`62-/admin,456[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`, []byte{1}, []byte{}},
			Packet{Type: Ack, Nsp: "/admin", ID: 456, Data: json.RawMessage(`[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1}, {}}}},
		{"binary zero attachments", []any{`50-["x"]`}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["x"]`)}},
		{"placeholder in text event stays", []any{`2["x",{"_placeholder":true,"num":7}]`}, Packet{Type: Event, Nsp: "/", ID: NoID, Data: json.RawMessage(`["x",{"_placeholder":true,"num":7}]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			p, err := decodeAll(t, &d, tt.frames...)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if p == nil {
				t.Fatal("no packet")
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *p, tt.want)
			}
			if d.Pending() {
				t.Error("decoder still pending")
			}
		})
	}
}

func TestDecoderInvalid(t *testing.T) {
	tests := []struct {
		name   string
		frames []any
		want   error
	}{
		{"empty", []any{""}, ErrEmptyPacket},
		{"unknown type 7", []any{"7"}, ErrUnknownType},
		{"unknown type letter", []any{"a"}, ErrUnknownType},
		{"unknown type below 0", []any{"/"}, ErrUnknownType},
		{"connect array", []any{`0[]`}, ErrInvalidPayload},
		{"connect blank payload", []any{"0 "}, ErrInvalidPayload},
		{"disconnect blank payload", []any{"1/a, "}, ErrInvalidPayload},
		{"connect string", []any{`0"x"`}, ErrInvalidPayload},
		{"connect null", []any{`0null`}, ErrInvalidPayload},
		{"connect bad json", []any{`0{"a"`}, ErrInvalidPayload},
		{"disconnect payload", []any{`1{}`}, ErrInvalidPayload},
		{"disconnect nsp payload", []any{`1/admin,"x"`}, ErrInvalidPayload},
		{"event no payload", []any{`2`}, ErrInvalidPayload},
		{"event object", []any{`2{}`}, ErrInvalidPayload},
		{"event empty array", []any{`2[]`}, ErrInvalidPayload},
		{"event null name", []any{`2[null]`}, ErrInvalidPayload},
		{"event bad json", []any{`2["a"`}, ErrInvalidPayload},
		{"event trailing garbage", []any{`2["a"]x`}, ErrInvalidPayload},
		{"event garbage after nsp", []any{`2/admin,abc`}, ErrInvalidPayload},
		{"reserved connect", []any{`2["connect"]`}, ErrReservedEvent},
		{"reserved disconnecting", []any{`2["disconnecting"]`}, ErrReservedEvent},
		{"reserved escaped", []any{`2["disconnec\u0074"]`}, ErrReservedEvent},
		{"reserved binary", []any{`51-["newListener",{"_placeholder":true,"num":0}]`}, ErrReservedEvent},
		{"ack no payload", []any{`3/admin,1`}, ErrInvalidPayload},
		{"ack object", []any{`31{}`}, ErrInvalidPayload},
		{"connect error array", []any{`4[]`}, ErrInvalidPayload},
		{"id overflow", []any{`29999999999999999999["a"]`}, ErrInvalidID},
		{"id past 2^53", []any{`29007199254740992["a"]`}, ErrInvalidID},
		{"binary no dash", []any{`51["a"]`}, ErrIllegalAttachments},
		{"binary no count", []any{`5-["a"]`}, ErrIllegalAttachments},
		{"binary only count", []any{`51`}, ErrIllegalAttachments},
		{"binary count letters", []any{`5a-["a"]`}, ErrIllegalAttachments},
		{"too many attachments", []any{`511-["a"]`}, ErrTooManyAttachments},
		{"huge attachments", []any{`599999999999999999999999-["a"]`}, ErrTooManyAttachments},
		{"binary without packet", []any{[]byte{1}}, ErrUnexpectedBinary},
		{"text while pending", []any{`51-["a",{"_placeholder":true,"num":0}]`, `2["b"]`}, ErrUnexpectedPlaintext},
		{"placeholder out of range", []any{`51-["a",{"_placeholder":true,"num":1}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder negative", []any{`51-["a",{"_placeholder":true,"num":-1}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder fraction", []any{`51-["a",{"_placeholder":true,"num":0.5}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder string num", []any{`51-["a",{"_placeholder":true,"num":"0"}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder no num", []any{`51-["a",{"_placeholder":true}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder nested out of range", []any{`51-["a",{"x":[{"_placeholder":true,"num":3}]}]`, []byte{1}}, ErrIllegalAttachments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			p, err := decodeAll(t, &d, tt.frames...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v (packet %+v)", err, tt.want, p)
			}
			if d.Pending() {
				t.Error("decoder still pending after an error")
			}
		})
	}
}

func TestDecoderMaxAttachments(t *testing.T) {
	// Exactly at the default limit is fine, one more is refused.
	atts := make([]any, 0, 11)
	data := `["a"`
	for i := 0; i < 10; i++ {
		data += `,{"_placeholder":true,"num":` + string(rune('0'+i)) + `}`
		atts = append(atts, []byte{byte(i)})
	}
	data += "]"
	var d Decoder
	p, err := decodeAll(t, &d, append([]any{"510-" + data}, atts...)...)
	if err != nil || p == nil || len(p.Attachments) != 10 {
		t.Fatalf("10 attachments: p=%v err=%v", p, err)
	}
	if _, err := d.Add([]byte("511-"+data), false); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("11 attachments: err = %v", err)
	}
	d2 := Decoder{MaxAttachments: 2}
	if _, err := d2.Add([]byte(`53-["a"]`), false); !errors.Is(err, ErrTooManyAttachments) {
		t.Fatalf("custom limit: err = %v", err)
	}
	if p, err := d2.Add([]byte(`52-["a"]`), false); p != nil || err != nil {
		t.Fatalf("custom limit at bound: %v %v", p, err)
	}
}

func TestDecoderCopiesInput(t *testing.T) {
	var d Decoder
	text := []byte(`51-/x,3["ev",{"_placeholder":true,"num":0}]`)
	bin := []byte{9, 9}
	if p, err := d.Add(text, false); p != nil || err != nil {
		t.Fatal(p, err)
	}
	p, err := d.Add(bin, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range text {
		text[i] = 'z'
	}
	bin[0] = 0
	if string(p.Data) != `["ev",{"_placeholder":true,"num":0}]` || p.Attachments[0][0] != 9 || p.Nsp != "/x" || p.ID != 3 {
		t.Fatalf("packet changed with the input: %+v", p)
	}
}

func TestDecoderContinuesAfterPacket(t *testing.T) {
	var d Decoder
	for i := 0; i < 3; i++ {
		p, err := decodeAll(t, &d, `51-["a",{"_placeholder":true,"num":0}]`, []byte{byte(i)})
		if err != nil || p.Attachments[0][0] != byte(i) {
			t.Fatal(p, err)
		}
		p, err = decodeAll(t, &d, `2["b"]`)
		if err != nil || p.Type != Event {
			t.Fatal(p, err)
		}
	}
	// Reset drops a half-received packet.
	if _, err := d.Add([]byte(`51-["a",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if p, err := d.Add([]byte(`2["b"]`), false); err != nil || p == nil {
		t.Fatal(p, err)
	}
}

func TestRoundTripTable(t *testing.T) {
	packets := []Packet{
		{Type: Connect, Nsp: "/", ID: NoID},
		{Type: Connect, Nsp: "/chat", ID: NoID, Data: json.RawMessage(`{"token":"abc"}`)},
		{Type: Disconnect, Nsp: "/chat", ID: NoID},
		{Type: Event, Nsp: "/", ID: 0, Data: json.RawMessage(`["msg",{"a":[1,2,"3"]}]`)},
		{Type: Ack, Nsp: "/x", ID: 99, Data: json.RawMessage(`[null]`)},
		{Type: ConnectError, Nsp: "/x", ID: NoID, Data: json.RawMessage(`{"message":"nope","data":null}`)},
		{Type: Event, Nsp: "/bin", ID: 5, Data: json.RawMessage(`["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), Attachments: [][]byte{{0xff}, {}}},
	}
	for _, want := range packets {
		text, atts := Encode(&want)
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
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", text, *got, want)
		}
	}
}

func TestEventName(t *testing.T) {
	for in, want := range map[string]string{
		`["a"]`:          "a",
		` [ "b c" , 1]`:  "b c",
		`["\u00e9\n"]`:   "é\n",
		`["x\\"]`:        `x\`,
		`["",1]`:         "",
		`["a\"b",{"c"}]`: `a"b`,
		`[1]`:            "1",
		`[ -2.50 ,"x"]`:  "-2.5",
		`[1.0]`:          "1",
		`[-0]`:           "0",
		`[1e3]`:          "1000",
		`[1e21]`:         "1e+21",
	} {
		got, err := EventName(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("EventName(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{``, `{}`, `[]`, `[null]`, `[true]`, `["abc`, `"a"`, `[-]`} {
		if _, err := EventName(json.RawMessage(in)); !errors.Is(err, ErrInvalidPayload) {
			t.Errorf("EventName(%s): err = %v", in, err)
		}
	}
}

func TestIsReservedEvent(t *testing.T) {
	for _, n := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !IsReservedEvent(n) {
			t.Errorf("%s not reserved", n)
		}
	}
	for _, n := range []string{"message", "Connect", "", "error"} {
		if IsReservedEvent(n) {
			t.Errorf("%s reserved", n)
		}
	}
}

func TestTypeString(t *testing.T) {
	if Event.String() != "EVENT" || BinaryAck.String() != "BINARY_ACK" || Type(9).String() != "UNKNOWN(9)" {
		t.Fatal(Event.String(), BinaryAck.String(), Type(9).String())
	}
	if !bytes.Equal([]byte(ConnectError.String()), []byte("CONNECT_ERROR")) {
		t.Fatal()
	}
}
