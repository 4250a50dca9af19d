package redisadapter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// value is an ordered tree of a JSON/MessagePack document. Node's messages are JavaScript objects whose
// key order is visible to clients, so neither encoding/json's maps nor msgpack's generic decoding
// (both unordered) are used; binary data (msgpack bin) is a kind of its own.
type value struct {
	kind kind
	b    bool
	num  string // JSON number text
	s    string
	bin  []byte
	arr  []*value
	keys []string
	vals []*value
}

type kind uint8

const (
	kNull kind = iota
	kBool
	kNum
	kStr
	kBin
	kArr
	kObj
)

const maxDepth = 64

var errDepth = errors.New("redisadapter: document nested too deeply")

func vStr(s string) *value { return &value{kind: kStr, s: s} }
func vInt(n int64) *value  { return &value{kind: kNum, num: strconv.FormatInt(n, 10)} }
func vBool(b bool) *value  { return &value{kind: kBool, b: b} }
func vStrs(list []string) *value {
	v := &value{kind: kArr, arr: make([]*value, 0, len(list))}
	for _, s := range list {
		v.arr = append(v.arr, vStr(s))
	}
	return v
}

// obj builds an object from key/value pairs, skipping nil values (as notepack skips undefined).
func obj(kv ...any) *value {
	v := &value{kind: kObj}
	for i := 0; i+1 < len(kv); i += 2 {
		val, _ := kv[i+1].(*value)
		if val == nil {
			continue
		}
		v.keys = append(v.keys, kv[i].(string))
		v.vals = append(v.vals, val)
	}
	return v
}

// get returns the value of key in an object, nil when absent or not an object.
func (v *value) get(key string) *value {
	if v == nil || v.kind != kObj {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

func (v *value) str() (string, bool) {
	if v == nil || v.kind != kStr {
		return "", false
	}
	return v.s, true
}

func (v *value) int() (int64, bool) {
	if v == nil || v.kind != kNum {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.num, 64)
	if err != nil || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// strs returns the strings of an array (numbers are rendered, as JavaScript Sets of rooms may hold them).
func (v *value) strs() []string {
	if v == nil || v.kind != kArr {
		return nil
	}
	out := make([]string, 0, len(v.arr))
	for _, e := range v.arr {
		switch e.kind {
		case kStr:
			out = append(out, e.s)
		case kNum:
			out = append(out, e.num)
		}
	}
	return out
}

func (v *value) hasBinary() bool {
	if v == nil {
		return false
	}
	switch v.kind {
	case kBin:
		return true
	case kArr:
		for _, e := range v.arr {
			if e.hasBinary() {
				return true
			}
		}
	case kObj:
		for _, e := range v.vals {
			if e.hasBinary() {
				return true
			}
		}
	}
	return false
}

// ---- MessagePack ----

func decodeMsgpack(b []byte) (*value, error) {
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	v, err := readMsgpack(&mpReader{d: d, r: r, b: b}, 0)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: msgpack: %w", err)
	}
	return v, nil
}

// mpReader is a msgpack.Decoder over a byte slice whose declared string/binary/extension lengths are
// checked against the bytes left before the decoder allocates them (a 5-byte message must not make
// it allocate 4 GiB).
type mpReader struct {
	d *msgpack.Decoder
	r *bytes.Reader
	b []byte
}

var errLength = errors.New("declared length exceeds the message")

func (m *mpReader) checkLen(c byte) error {
	pos := len(m.b) - m.r.Len() // the decoder reads the bytes.Reader directly (it is an io.ByteScanner)
	size := 0
	switch c {
	case msgpcode.Str8, msgpcode.Bin8, msgpcode.Ext8:
		size = 1
	case msgpcode.Str16, msgpcode.Bin16, msgpcode.Ext16:
		size = 2
	case msgpcode.Str32, msgpcode.Bin32, msgpcode.Ext32:
		size = 4
	default:
		return nil
	}
	if pos+1+size > len(m.b) {
		return io.ErrUnexpectedEOF
	}
	n := 0
	for _, x := range m.b[pos+1 : pos+1+size] {
		n = n<<8 | int(x)
	}
	if n > len(m.b)-pos-1-size {
		return errLength
	}
	return nil
}

func readMsgpack(m *mpReader, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	d := m.d
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	if err := m.checkLen(c); err != nil {
		return nil, err
	}
	switch {
	case c == msgpcode.Nil:
		return &value{kind: kNull}, d.DecodeNil()
	case c == msgpcode.True || c == msgpcode.False:
		b, err := d.DecodeBool()
		return vBool(b), err
	case msgpcode.IsFixedNum(c) || c == msgpcode.Int8 || c == msgpcode.Int16 || c == msgpcode.Int32 || c == msgpcode.Int64:
		n, err := d.DecodeInt64()
		return vInt(n), err
	case c == msgpcode.Uint8 || c == msgpcode.Uint16 || c == msgpcode.Uint32 || c == msgpcode.Uint64:
		n, err := d.DecodeUint64()
		return &value{kind: kNum, num: strconv.FormatUint(n, 10)}, err
	case c == msgpcode.Float || c == msgpcode.Double:
		f, err := d.DecodeFloat64()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) { // JSON.stringify renders them as null
			return &value{kind: kNull}, nil
		}
		num, _ := json.Marshal(f)
		return &value{kind: kNum, num: string(num)}, nil
	case msgpcode.IsString(c):
		s, err := d.DecodeString()
		return vStr(s), err
	case msgpcode.IsBin(c):
		b, err := d.DecodeBytes()
		if b == nil {
			b = []byte{}
		}
		return &value{kind: kBin, bin: b}, err
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		v := &value{kind: kArr, arr: make([]*value, 0, min(n, 1024))}
		for i := 0; i < n; i++ {
			e, err := readMsgpack(m, depth+1)
			if err != nil {
				return nil, err
			}
			v.arr = append(v.arr, e)
		}
		return v, nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		v := &value{kind: kObj}
		for i := 0; i < n; i++ {
			k, err := readMsgpack(m, depth+1)
			if err != nil {
				return nil, err
			}
			e, err := readMsgpack(m, depth+1)
			if err != nil {
				return nil, err
			}
			key := k.s
			if k.kind == kNum {
				key = k.num
			}
			v.keys = append(v.keys, key)
			v.vals = append(v.vals, e)
		}
		return v, nil
	case msgpcode.IsExt(c):
		// notepack's undefined/Date extensions: no JSON equivalent worth keeping.
		return &value{kind: kNull}, d.Skip()
	default:
		return nil, fmt.Errorf("unexpected code 0x%x", c)
	}
}

func encodeMsgpack(v *value) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	writeMsgpack(e, v)
	return buf.Bytes()
}

// writeMsgpack writes v the way notepack.io encodes the equivalent JavaScript value: integral numbers
// as the smallest int/uint, other numbers as float64. Writes to a bytes.Buffer do not fail.
func writeMsgpack(e *msgpack.Encoder, v *value) {
	switch v.kind {
	case kNull:
		_ = e.EncodeNil()
	case kBool:
		_ = e.EncodeBool(v.b)
	case kNum:
		if n, err := strconv.ParseInt(v.num, 10, 64); err == nil {
			_ = e.EncodeInt(n)
			return
		}
		if n, err := strconv.ParseUint(v.num, 10, 64); err == nil {
			_ = e.EncodeUint(n)
			return
		}
		f, _ := strconv.ParseFloat(v.num, 64)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			_ = e.EncodeInt(int64(f))
			return
		}
		_ = e.EncodeFloat64(f)
	case kStr:
		_ = e.EncodeString(v.s)
	case kBin:
		_ = e.EncodeBytes(append([]byte{}, v.bin...))
	case kArr:
		_ = e.EncodeArrayLen(len(v.arr))
		for _, x := range v.arr {
			writeMsgpack(e, x)
		}
	case kObj:
		_ = e.EncodeMapLen(len(v.keys))
		for i, k := range v.keys {
			_ = e.EncodeString(k)
			writeMsgpack(e, v.vals[i])
		}
	}
}

// ---- JSON ----

func decodeJSON(b []byte) (*value, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := readJSON(d, 0)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: json: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("redisadapter: json: trailing data")
	}
	return v, nil
}

func readJSON(d *json.Decoder, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case nil:
		return &value{kind: kNull}, nil
	case bool:
		return vBool(t), nil
	case json.Number:
		return &value{kind: kNum, num: t.String()}, nil
	case string:
		return vStr(t), nil
	case json.Delim:
		switch t {
		case '[':
			v := &value{kind: kArr}
			for d.More() {
				e, err := readJSON(d, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			_, err := d.Token()
			return v, err
		case '{':
			v := &value{kind: kObj}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				e, err := readJSON(d, depth+1)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, kt.(string))
				v.vals = append(v.vals, e)
			}
			_, err := d.Token()
			return v, err
		}
	}
	return nil, fmt.Errorf("unexpected token %v", t)
}

// binMode says how binary values are rendered in JSON.
type binMode uint8

const (
	binBase64      binMode = iota // a base64 string, as the adapter.AckFunc contract says
	binPlaceholder                // a Socket.IO placeholder, the bytes going to the attachments
	binNode                       // {"type":"Buffer","data":[...]}, as JSON.stringify renders a Buffer
)

func encodeJSON(v *value, mode binMode) (json.RawMessage, [][]byte) {
	var buf bytes.Buffer
	var atts [][]byte
	writeJSON(&buf, v, mode, &atts)
	return buf.Bytes(), atts
}

func writeJSON(buf *bytes.Buffer, v *value, mode binMode, atts *[][]byte) {
	switch v.kind {
	case kNull:
		buf.WriteString("null")
	case kBool:
		buf.WriteString(strconv.FormatBool(v.b))
	case kNum:
		buf.WriteString(v.num)
	case kStr:
		s, _ := json.Marshal(v.s)
		buf.Write(s)
	case kBin:
		switch mode {
		case binPlaceholder:
			fmt.Fprintf(buf, `{"_placeholder":true,"num":%d}`, len(*atts))
			*atts = append(*atts, v.bin)
		case binNode:
			buf.WriteString(`{"type":"Buffer","data":[`)
			for i, c := range v.bin {
				if i > 0 {
					buf.WriteByte(',')
				}
				buf.WriteString(strconv.Itoa(int(c)))
			}
			buf.WriteString(`]}`)
		default:
			buf.WriteByte('"')
			buf.WriteString(base64.StdEncoding.EncodeToString(v.bin))
			buf.WriteByte('"')
		}
	case kArr:
		buf.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, e, mode, atts)
		}
		buf.WriteByte(']')
	case kObj:
		buf.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			s, _ := json.Marshal(k)
			buf.Write(s)
			buf.WriteByte(':')
			writeJSON(buf, v.vals[i], mode, atts)
		}
		buf.WriteByte('}')
	}
}

// fromJSON parses a JSON payload and puts attachments back where their placeholders are.
func fromJSON(raw json.RawMessage, atts [][]byte) (*value, error) {
	if len(raw) == 0 {
		return &value{kind: kNull}, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		v = resolvePlaceholders(v, atts)
	}
	return v, nil
}

func resolvePlaceholders(v *value, atts [][]byte) *value {
	switch v.kind {
	case kArr:
		for i, e := range v.arr {
			v.arr[i] = resolvePlaceholders(e, atts)
		}
	case kObj:
		if ph := v.get("_placeholder"); ph != nil && ph.kind == kBool && ph.b && len(v.keys) == 2 {
			if n, ok := v.get("num").int(); ok && n >= 0 && int(n) < len(atts) {
				return &value{kind: kBin, bin: atts[n]}
			}
		}
		for i, e := range v.vals {
			v.vals[i] = resolvePlaceholders(e, atts)
		}
	}
	return v
}

// toAny converts to the generic Go value json.Unmarshal into any would give (binary as []byte).
func (v *value) toAny() any {
	if v == nil {
		return nil
	}
	switch v.kind {
	case kBool:
		return v.b
	case kNum:
		f, _ := strconv.ParseFloat(v.num, 64)
		return f
	case kStr:
		return v.s
	case kBin:
		return v.bin
	case kArr:
		out := make([]any, len(v.arr))
		for i, e := range v.arr {
			out[i] = e.toAny()
		}
		return out
	case kObj:
		out := make(map[string]any, len(v.keys))
		for i, k := range v.keys {
			out[k] = v.vals[i].toAny()
		}
		return out
	}
	return nil
}

// fromAny converts a Go value through encoding/json ([]byte values become base64 strings, as JSON does).
func fromAny(x any) *value {
	raw, err := json.Marshal(x)
	if err != nil {
		return &value{kind: kNull}
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return &value{kind: kNull}
	}
	return v
}
