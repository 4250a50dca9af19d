package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type plainMsg struct {
	Room string `json:"room"`
	Text string `json:"text,omitempty"`
	N    int
}

type Inner struct {
	Blob []byte `json:"blob"`
	Tag  string `json:"tag"`
}

type fileMsg struct {
	Name    string            `json:"name"`
	Data    []byte            `json:"data"`
	Thumb   []byte            `json:"thumb,omitempty"`
	Skip    []byte            `json:"-"`
	Count   int64             `json:"count,string"`
	Nested  *Inner            `json:"nested,omitempty"`
	Parts   [][]byte          `json:"parts"`
	ByName  map[string][]byte `json:"byName"`
	Any     any               `json:"any"`
	private []byte
	Inner                   // promoted: blob, tag
	When    time.Time       `json:"when"`
	Raw     json.RawMessage `json:"raw"`
}

func TestMarshalArgsPlainMatchesEncodingJSON(t *testing.T) {
	args := []any{"ev", 1, 2.5, true, nil, "a<b>&\u2028\"\\\n\x01\xff", plainMsg{Room: "r", N: 3},
		map[string]any{"z": 1, "a": []int{1, 2}}, []string{"x"}, map[int]string{2: "b", 10: "a"},
		time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), json.RawMessage(`{"k":1}`), int8(-3), uint16(7)}
	got, atts, err := MarshalArgs(args...)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 0 {
		t.Fatalf("attachments: %d", len(atts))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(args); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(buf.String(), "\n")
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestMarshalArgsEmpty(t *testing.T) {
	got, atts, err := MarshalArgs()
	if err != nil || string(got) != "[]" || atts != nil {
		t.Fatal(string(got), atts, err)
	}
}

func TestMarshalArgsBinary(t *testing.T) {
	b0, b1, b2, b3, b4, b5 := []byte{0}, []byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5}
	msg := fileMsg{
		Name: "f", Data: b1, Skip: []byte{9}, Count: 42, Nested: &Inner{Blob: b2, Tag: "t"},
		Parts: [][]byte{b3, nil}, ByName: map[string][]byte{"k": b4}, Any: map[string]any{"deep": []any{b5}},
		private: []byte{9}, When: time.Unix(0, 0).UTC(), Raw: json.RawMessage(`[1]`),
	}
	data, atts, err := MarshalArgs("upload", b0, msg)
	if err != nil {
		t.Fatal(err)
	}
	want := `["upload",{"_placeholder":true,"num":0},{"name":"f","data":{"_placeholder":true,"num":1},"count":"42",` +
		`"nested":{"blob":{"_placeholder":true,"num":2},"tag":"t"},"parts":[{"_placeholder":true,"num":3},null],` +
		`"byName":{"k":{"_placeholder":true,"num":4}},"any":{"deep":[{"_placeholder":true,"num":5}]},` +
		`"blob":null,"tag":"","when":"1970-01-01T00:00:00Z","raw":[1]}]`
	if string(data) != want {
		t.Fatalf("got  %s\nwant %s", data, want)
	}
	if !reflect.DeepEqual(atts, [][]byte{b0, b1, b2, b3, b4, b5}) {
		t.Fatalf("attachments %v", atts)
	}
	// Shape matches encoding/json with bytes as base64 (same keys, same order).
	var viaJSON, viaUs map[string]any
	j, _ := json.Marshal(msg)
	_ = json.Unmarshal(j, &viaJSON)
	args, _ := ReconstructArgs(data, atts)
	_ = json.Unmarshal(args[2], &viaUs)
	if len(viaJSON) != len(viaUs) {
		t.Fatalf("keys differ: %v vs %v", viaJSON, viaUs)
	}
	for k := range viaJSON {
		if _, ok := viaUs[k]; !ok {
			t.Fatalf("key %q missing", k)
		}
	}
}

func TestMarshalArgsPointerAndNamedBytes(t *testing.T) {
	type Blob []byte
	b := []byte("hi")
	var nilBytes []byte
	data, atts, err := MarshalArgs(&b, Blob("x"), nilBytes, []byte{}, [2]byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},null,{"_placeholder":true,"num":2},[1,2]]`
	if string(data) != want {
		t.Fatalf("got %s", data)
	}
	if len(atts) != 3 || string(atts[0]) != "hi" || string(atts[1]) != "x" || len(atts[2]) != 0 {
		t.Fatalf("atts %q", atts)
	}
}

type node struct {
	Val  []byte  `json:"val,omitempty"`
	Next *node   `json:"next,omitempty"`
	Kids []*node `json:"kids,omitempty"`
}

func TestMarshalArgsRecursiveType(t *testing.T) {
	n := &node{Next: &node{Kids: []*node{{Val: []byte{7}}}}}
	data, atts, err := MarshalArgs(n)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `[{"next":{"kids":[{"val":{"_placeholder":true,"num":0}}]}}]` || len(atts) != 1 {
		t.Fatalf("%s %v", data, atts)
	}
	var back node
	args, _ := ReconstructArgs(data, atts)
	if err := Decode(args[0], atts, &back); err != nil {
		t.Fatal(err)
	}
	if back.Next.Kids[0].Val[0] != 7 {
		t.Fatalf("%+v", back)
	}
}

type conflict struct {
	A
	B
	C string `json:"c"`
}
type A struct {
	X string // ambiguous with B.X at the same depth: dropped
	Y []byte
}
type B struct {
	X string
	Z []byte `json:"y"` // "y" and "Y" are different names: both kept
}

func TestMarshalArgsFieldConflicts(t *testing.T) {
	v := conflict{A: A{X: "a", Y: []byte{1}}, B: B{X: "b", Z: []byte{2}}, C: "c"}
	data, atts, err := MarshalArgs(v)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json drops the ambiguous "x".
	j, _ := json.Marshal(v)
	var viaJSON map[string]any
	_ = json.Unmarshal(j, &viaJSON)
	var viaUs map[string]any
	args, _ := ReconstructArgs(data, atts)
	_ = json.Unmarshal(args[0], &viaUs)
	if len(viaJSON) != len(viaUs) {
		t.Fatalf("json %s vs ours %s", j, data)
	}
	for k := range viaJSON {
		if _, ok := viaUs[k]; !ok {
			t.Fatalf("json %s vs ours %s", j, data)
		}
	}
}

func TestMarshalArgsErrors(t *testing.T) {
	if _, _, err := MarshalArgs(make(chan int)); err == nil {
		t.Fatal("channel: no error")
	}
	if _, _, err := MarshalArgs(map[string]any{"c": make(chan int), "b": []byte{1}}); err == nil {
		t.Fatal("channel in binary map: no error")
	}
	if _, _, err := MarshalArgs(map[[2]int][]byte{{1, 2}: {1}}); err == nil {
		t.Fatal("bad key: no error")
	}
}

func TestDecodeIntoTypedTargets(t *testing.T) {
	atts := [][]byte{{0}, {1}, {2}, {3}, {4}, {5}}
	data := json.RawMessage(`{"name":"f","data":{"_placeholder":true,"num":1},"count":"42",` +
		`"nested":{"blob":{"_placeholder":true,"num":2},"tag":"t"},"parts":[{"_placeholder":true,"num":3},null],` +
		`"byName":{"k":{"_placeholder":true,"num":4}},"any":{"deep":[{"_placeholder":true,"num":5}]},` +
		`"BLOB":{"_placeholder":true,"num":0},"tag":"promoted","raw":{"_placeholder":true,"num":0}}`)
	var m fileMsg
	if err := Decode(data, atts, &m); err != nil {
		t.Fatal(err)
	}
	if m.Name != "f" || m.Count != 42 || !bytes.Equal(m.Data, []byte{1}) || !bytes.Equal(m.Nested.Blob, []byte{2}) ||
		m.Nested.Tag != "t" || !bytes.Equal(m.Parts[0], []byte{3}) || m.Parts[1] != nil ||
		!bytes.Equal(m.ByName["k"], []byte{4}) || !bytes.Equal(m.Inner.Blob, []byte{0}) || m.Inner.Tag != "promoted" {
		t.Fatalf("%+v", m)
	}
	deep := m.Any.(map[string]any)["deep"].([]any)[0]
	if !bytes.Equal(deep.([]byte), []byte{5}) {
		t.Fatalf("any: %#v", m.Any)
	}
	// A json.Unmarshaler target receives the placeholder itself.
	if string(m.Raw) != `{"_placeholder":true,"num":0}` {
		t.Fatalf("raw: %s", m.Raw)
	}
}

func TestDecodeTopLevel(t *testing.T) {
	atts := [][]byte{[]byte("A"), []byte("B")}
	ph0 := json.RawMessage(`{"_placeholder":true,"num":0}`)
	var b []byte
	if err := Decode(ph0, atts, &b); err != nil || string(b) != "A" {
		t.Fatal(string(b), err)
	}
	var a any
	if err := Decode(ph0, atts, &a); err != nil || string(a.([]byte)) != "A" {
		t.Fatal(a, err)
	}
	var pb *[]byte
	if err := Decode(ph0, atts, &pb); err != nil || string(*pb) != "A" {
		t.Fatal(pb, err)
	}
	var arr []any
	if err := Decode(json.RawMessage(`["x",{"_placeholder":true,"num":1},{"y":{"_placeholder":true,"num":0}}]`), atts, &arr); err != nil {
		t.Fatal(err)
	}
	if arr[0] != "x" || string(arr[1].([]byte)) != "B" || string(arr[2].(map[string]any)["y"].([]byte)) != "A" {
		t.Fatalf("%#v", arr)
	}
	var fixed [3][]byte
	if err := Decode(json.RawMessage(`[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]`), atts, &fixed); err != nil {
		t.Fatal(err)
	}
	if string(fixed[0]) != "B" || string(fixed[1]) != "A" || fixed[2] != nil {
		t.Fatalf("%q", fixed)
	}
	var ints map[int][]byte
	if err := Decode(json.RawMessage(`{"7":{"_placeholder":true,"num":1}}`), atts, &ints); err != nil || string(ints[7]) != "B" {
		t.Fatal(ints, err)
	}
	// A struct target for a placeholder decodes the placeholder object.
	var ph struct {
		Placeholder bool `json:"_placeholder"`
		Num         int  `json:"num"`
	}
	if err := Decode(json.RawMessage(`{"_placeholder":true,"num":1}`), atts, &ph); err != nil || !ph.Placeholder || ph.Num != 1 {
		t.Fatal(ph, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	atts := [][]byte{{1}}
	var b []byte
	if err := Decode(json.RawMessage(`{"_placeholder":true,"num":1}`), atts, &b); !errors.Is(err, ErrIllegalAttachments) {
		t.Fatalf("out of range: %v", err)
	}
	var a any
	if err := Decode(json.RawMessage(`[{"_placeholder":true,"num":"x"}]`), atts, &a); !errors.Is(err, ErrIllegalAttachments) {
		t.Fatalf("bad num into any: %v", err)
	}
	var s string
	if err := Decode(json.RawMessage(`{"_placeholder":true,"num":0}`), atts, &s); err == nil {
		t.Fatal("placeholder into string: no error")
	}
	if err := Decode(json.RawMessage(`{"_placeholder":true,"num":0}`), atts, b); err == nil {
		t.Fatal("non-pointer: no error")
	}
	var st struct{ N int }
	if err := Decode(json.RawMessage(`{"N":"x","b":{"_placeholder":true,"num":0}}`), atts, &st); err == nil {
		t.Fatal("type mismatch in plain member: no error")
	}
}

func TestDecodeWithoutAttachmentsIsUnmarshal(t *testing.T) {
	var m map[string]any
	if err := Decode(json.RawMessage(`{"_placeholder":true,"num":0}`), nil, &m); err != nil || m["num"] != float64(0) {
		t.Fatal(m, err)
	}
}

func TestMarshalDecodeRoundTrip(t *testing.T) {
	in := fileMsg{Name: "n", Data: []byte("data"), Count: 7, Nested: &Inner{Blob: []byte("nb"), Tag: "x"},
		Parts: [][]byte{[]byte("p0")}, ByName: map[string][]byte{"k": []byte("v")}, Any: []any{[]byte("any")},
		Inner: Inner{Blob: []byte("ib"), Tag: "it"}, When: time.Unix(5, 0).UTC(), Raw: json.RawMessage(`null`)}
	data, atts, err := MarshalArgs(in)
	if err != nil {
		t.Fatal(err)
	}
	args, err := ReconstructArgs(data, atts)
	if err != nil {
		t.Fatal(err)
	}
	var out fileMsg
	if err := Decode(args[0], atts, &out); err != nil {
		t.Fatal(err)
	}
	in.Skip, in.private = nil, nil
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("\n in %+v\nout %+v", in, out)
	}
}

func TestReconstructArgs(t *testing.T) {
	args, err := ReconstructArgs(json.RawMessage(`["a", {"_placeholder":true,"num":0}, 3]`), [][]byte{{1}})
	if err != nil || len(args) != 3 || string(args[1]) != `{"_placeholder":true,"num":0}` || string(args[2]) != "3" {
		t.Fatal(args, err)
	}
	if _, err := ReconstructArgs(json.RawMessage(`[{"_placeholder":true,"num":1}]`), [][]byte{{1}}); !errors.Is(err, ErrIllegalAttachments) {
		t.Fatal(err)
	}
	if args, err := ReconstructArgs(json.RawMessage(`[{"_placeholder":true,"num":0}]`), nil); err != nil || len(args) != 1 {
		t.Fatal("placeholder without attachments is plain data:", err)
	}
	if _, err := ReconstructArgs(json.RawMessage(`{}`), nil); !errors.Is(err, ErrInvalidPayload) {
		t.Fatal(err)
	}
}

func TestPlainStructHasNoBinaryWalk(t *testing.T) {
	if infoOf(reflect.TypeFor[plainMsg]()).binary {
		t.Fatal("plainMsg marked as holding binary")
	}
	if !infoOf(reflect.TypeFor[fileMsg]()).binary || !infoOf(reflect.TypeFor[node]()).binary {
		t.Fatal("binary types not marked")
	}
	if infoOf(reflect.TypeFor[json.RawMessage]()).binary {
		t.Fatal("json.RawMessage is a Marshaler, not binary")
	}
}

type ptrMarshaler struct {
	Secret []byte
}

func (p *ptrMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"hidden"`), nil }

type holder struct {
	P   ptrMarshaler `json:"p"`
	Bin []byte       `json:"bin"`
}

func TestMarshalArgsPointerReceiverMarshaler(t *testing.T) {
	h := &holder{P: ptrMarshaler{Secret: []byte{1}}, Bin: []byte{2}}
	data, atts, err := MarshalArgs(h)
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json calls (*ptrMarshaler).MarshalJSON for the addressable field.
	if string(data) != `[{"p":"hidden","bin":{"_placeholder":true,"num":0}}]` || len(atts) != 1 {
		t.Fatalf("%s %v", data, atts)
	}
	// Not addressable (passed by value): encoding/json does not call it either.
	data, atts, err = MarshalArgs(*h)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `[{"p":{"Secret":{"_placeholder":true,"num":0}},"bin":{"_placeholder":true,"num":1}}]` || len(atts) != 2 {
		t.Fatalf("%s %v", data, atts)
	}
}
