package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// MarshalArgs encodes args as a JSON array, the payload of an EVENT (with
// the event name as first arg) or of an ACK. Every []byte found in the
// values — at the top level, in slices, maps, pointers, interfaces and
// struct fields — is moved into attachments and replaced by a placeholder
// {"_placeholder":true,"num":N}. A nil []byte is written as null, like
// encoding/json does. Values that implement json.Marshaler are encoded by
// it and not searched. Without binary the output is exactly what
// encoding/json produces (with HTML escaping off, as JavaScript does).
func MarshalArgs(args ...any) (data json.RawMessage, attachments [][]byte, err error) {
	e := encoderPool.Get().(*argEncoder)
	defer e.release()
	e.buf = append(e.buf, '[')
	for i, a := range args {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(reflect.ValueOf(a)); err != nil {
			return nil, nil, err
		}
	}
	e.buf = append(e.buf, ']')
	return bytes.Clone(e.buf), e.atts, nil
}

type argEncoder struct {
	buf   []byte
	atts  [][]byte
	plain bytes.Buffer
	enc   *json.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	e := &argEncoder{}
	e.enc = json.NewEncoder(&e.plain)
	e.enc.SetEscapeHTML(false)
	return e
}}

func (e *argEncoder) release() {
	if cap(e.buf) > 64<<10 {
		e.buf = nil
	}
	e.buf = e.buf[:0]
	e.atts = nil
	e.plain.Reset()
	if e.plain.Cap() > 64<<10 {
		e.plain = bytes.Buffer{}
		e.enc = json.NewEncoder(&e.plain)
		e.enc.SetEscapeHTML(false)
	}
	encoderPool.Put(e)
}

// plainValue hands v to encoding/json.
func (e *argEncoder) plainValue(v reflect.Value) error {
	if !v.CanInterface() {
		return fmt.Errorf("parser: cannot encode %s reached through an unexported field", v.Type())
	}
	x := v.Interface()
	if v.CanAddr() && v.Addr().CanInterface() {
		// As encoding/json does for addressable values: methods with
		// pointer receivers (MarshalJSON on *T) apply.
		x = v.Addr().Interface()
	}
	e.plain.Reset()
	if err := e.enc.Encode(x); err != nil {
		return err
	}
	b := e.plain.Bytes()
	e.buf = append(e.buf, b[:len(b)-1]...) // Encode adds a newline
	return nil
}

func (e *argEncoder) value(v reflect.Value) error {
	if !v.IsValid() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	t := v.Type()
	if !infoOf(t).binary {
		return e.fastValue(v)
	}
	if v.CanAddr() && t.Kind() != reflect.Pointer && customMarshal(reflect.PointerTo(t)) {
		return e.plainValue(v)
	}
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.value(v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if isBytes(t) {
			e.buf = append(e.buf, `{"_placeholder":true,"num":`...)
			e.buf = strconv.AppendInt(e.buf, int64(len(e.atts)), 10)
			e.buf = append(e.buf, '}')
			e.atts = append(e.atts, v.Bytes())
			return nil
		}
		return e.array(v)
	case reflect.Array:
		return e.array(v)
	case reflect.Map:
		return e.mapValue(v)
	case reflect.Struct:
		return e.structValue(v)
	}
	return e.plainValue(v)
}

// fastValue writes the common scalar types without encoding/json and
// hands the rest to it.
func (e *argEncoder) fastValue(v reflect.Value) error {
	if customMarshal(v.Type()) || v.CanAddr() && customMarshal(reflect.PointerTo(v.Type())) {
		return e.plainValue(v)
	}
	switch v.Kind() {
	case reflect.String:
		e.buf = appendString(e.buf, v.String())
		return nil
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
		return nil
	}
	return e.plainValue(v)
}

func (e *argEncoder) array(v reflect.Value) error {
	e.buf = append(e.buf, '[')
	for i := 0; i < v.Len(); i++ {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(v.Index(i)); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

func (e *argEncoder) mapValue(v reflect.Value) error {
	if v.IsNil() {
		e.buf = append(e.buf, "null"...)
		return nil
	}
	type kv struct {
		key string
		val reflect.Value
	}
	entries := make([]kv, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		k, err := mapKey(it.Key())
		if err != nil {
			return err
		}
		entries = append(entries, kv{k, it.Value()})
	}
	slices.SortFunc(entries, func(a, b kv) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	e.buf = append(e.buf, '{')
	for i, en := range entries {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, en.key)
		e.buf = append(e.buf, ':')
		if err := e.value(en.val); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if k.Type().Implements(textMarshalerType) {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := k.Interface().(interface{ MarshalText() ([]byte, error) }).MarshalText()
		return string(b), err
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("parser: unsupported map key type %s", k.Type())
}

func (e *argEncoder) structValue(v reflect.Value) error {
	e.buf = append(e.buf, '{')
	first := true
	for i := range infoOf(v.Type()).fields {
		f := &infoOf(v.Type()).fields[i]
		fv, ok := fieldValue(v, f.index)
		if !ok {
			continue
		}
		if f.omitEmpty && isEmptyValue(fv) {
			continue
		}
		if f.omitZero && isZeroValue(fv) {
			continue
		}
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		e.buf = append(e.buf, f.nameJSON...)
		if f.quoted {
			// ",string": the scalar's JSON, quoted as a string.
			start := len(e.buf)
			if err := e.plainValue(fv); err != nil {
				return err
			}
			inner := string(e.buf[start:])
			e.buf = appendString(e.buf[:start], inner)
			continue
		}
		if err := e.value(fv); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// fieldValue follows index through embedded pointers; ok is false when one
// of them is nil (encoding/json then skips the field).
func fieldValue(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

func isZeroValue(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does with
// HTML escaping off (invalid UTF-8 becomes U+FFFD; U+2028/2029 escaped).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
