package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

var placeholderKey = []byte(`"_placeholder"`)

// placeholderNum reports whether raw is a placeholder object and returns
// its num (-1 if num is missing or not a non-negative integer).
func placeholderNum(raw []byte) (num int, ok bool) {
	if firstByte(raw) != '{' || !bytes.Contains(raw, placeholderKey) {
		return 0, false
	}
	var ph map[string]any
	if json.Unmarshal(raw, &ph) != nil {
		return 0, false
	}
	if b, _ := ph["_placeholder"].(bool); !b {
		return 0, false
	}
	f, isNum := ph["num"].(float64)
	if !isNum || f < 0 || f > 1<<31 || f != float64(int(f)) {
		return -1, true
	}
	return int(f), true
}

// checkPlaceholders verifies that every placeholder in data points at one of
// the n attachments, as Node's reconstructPacket does.
func checkPlaceholders(data []byte, n int) error {
	if !bytes.Contains(data, placeholderKey) {
		return nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return walkPlaceholders(v, n)
}

// walkPlaceholders checks the placeholders in a value decoded into any.
func walkPlaceholders(v any, n int) error {
	switch x := v.(type) {
	case map[string]any:
		if ph, ok := x["_placeholder"].(bool); ok && ph {
			num, ok := x["num"].(float64)
			if !ok || num < 0 || num >= float64(n) || num != float64(int(num)) {
				return fmt.Errorf("%w: placeholder %v with %d attachments", ErrIllegalAttachments, x["num"], n)
			}
			return nil
		}
		for _, e := range x {
			if err := walkPlaceholders(e, n); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := walkPlaceholders(e, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReconstructArgs splits an EVENT or ACK payload into its elements, keeping
// placeholders as they are (decode each with Decode and the attachments).
// With attachments it checks that every placeholder points at one of them;
// without, placeholder-like objects are plain data (as in Node, which only
// interprets placeholders in binary packets).
func ReconstructArgs(data json.RawMessage, attachments [][]byte) ([]json.RawMessage, error) {
	if len(attachments) > 0 {
		if err := checkPlaceholders(data, len(attachments)); err != nil {
			return nil, err
		}
	}
	var args []json.RawMessage
	if err := json.Unmarshal(data, &args); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return args, nil
}

// Decode unmarshals raw into v like json.Unmarshal, and maps placeholders
// onto the attachments: into a []byte target (a *[]byte, a []byte struct
// field, slice element or map value) the attachment itself is stored (not
// copied); into an interface target (any, map[string]any, []any) the
// placeholder becomes a []byte. Without attachments it is json.Unmarshal.
func Decode(raw json.RawMessage, attachments [][]byte, v any) error {
	if len(attachments) == 0 || !bytes.Contains(raw, placeholderKey) {
		return json.Unmarshal(raw, v)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &json.InvalidUnmarshalError{Type: reflect.TypeOf(v)}
	}
	return decodeValue(raw, attachments, rv.Elem())
}

// decodeValue decodes raw into the settable v.
func decodeValue(raw []byte, atts [][]byte, v reflect.Value) error {
	t := v.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshType) {
		return json.Unmarshal(raw, v.Addr().Interface())
	}
	if num, ok := placeholderNum(raw); ok {
		if num < 0 || num >= len(atts) {
			return fmt.Errorf("%w: placeholder %d with %d attachments", ErrIllegalAttachments, num, len(atts))
		}
		switch {
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
			v.SetBytes(atts[num])
			return nil
		case t.Kind() == reflect.Interface && t.NumMethod() == 0:
			v.Set(reflect.ValueOf(atts[num]))
			return nil
		case t.Kind() == reflect.Pointer:
			if v.IsNil() {
				v.Set(reflect.New(t.Elem()))
			}
			return decodeValue(raw, atts, v.Elem())
		}
		return json.Unmarshal(raw, v.Addr().Interface())
	}
	if !bytes.Contains(raw, placeholderKey) {
		return json.Unmarshal(raw, v.Addr().Interface())
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return decodeValue(raw, atts, v.Elem())
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return json.Unmarshal(raw, v.Addr().Interface())
		}
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return err
		}
		x, err := substitute(x, atts)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(x))
		return nil
	case reflect.Slice:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return err
		}
		if elems == nil {
			v.SetZero()
			return nil
		}
		s := reflect.MakeSlice(t, len(elems), len(elems))
		for i, e := range elems {
			if err := decodeValue(e, atts, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Array:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return err
		}
		for i := 0; i < v.Len(); i++ {
			if i < len(elems) {
				if err := decodeValue(elems[i], atts, v.Index(i)); err != nil {
					return err
				}
			} else {
				v.Index(i).SetZero()
			}
		}
		return nil
	case reflect.Map:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		if obj == nil {
			v.SetZero()
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(obj)))
		}
		for k, e := range obj {
			kv, err := parseMapKey(k, t.Key())
			if err != nil {
				return err
			}
			ev := reflect.New(t.Elem()).Elem()
			if err := decodeValue(e, atts, ev); err != nil {
				return err
			}
			v.SetMapIndex(kv, ev)
		}
		return nil
	case reflect.Struct:
		return decodeStruct(raw, atts, v)
	}
	return json.Unmarshal(raw, v.Addr().Interface())
}

// substitute replaces placeholders in a value decoded into any.
func substitute(x any, atts [][]byte) (any, error) {
	switch y := x.(type) {
	case map[string]any:
		if ph, ok := y["_placeholder"].(bool); ok && ph {
			num, ok := y["num"].(float64)
			if !ok || num < 0 || num >= float64(len(atts)) || num != float64(int(num)) {
				return nil, fmt.Errorf("%w: placeholder %v with %d attachments", ErrIllegalAttachments, y["num"], len(atts))
			}
			return atts[int(num)], nil
		}
		for k, e := range y {
			r, err := substitute(e, atts)
			if err != nil {
				return nil, err
			}
			y[k] = r
		}
	case []any:
		for i, e := range y {
			r, err := substitute(e, atts)
			if err != nil {
				return nil, err
			}
			y[i] = r
		}
	}
	return x, nil
}

func parseMapKey(k string, t reflect.Type) (reflect.Value, error) {
	if reflect.PointerTo(t).Implements(textUnmarshType) {
		kv := reflect.New(t)
		err := kv.Interface().(interface{ UnmarshalText([]byte) error }).UnmarshalText([]byte(k))
		return kv.Elem(), err
	}
	switch t.Kind() {
	case reflect.String:
		return reflect.ValueOf(k).Convert(t), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(k, 10, t.Bits())
		if err != nil {
			return reflect.Value{}, fmt.Errorf("parser: map key %q: %w", k, err)
		}
		return reflect.ValueOf(n).Convert(t), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(k, 10, t.Bits())
		if err != nil {
			return reflect.Value{}, fmt.Errorf("parser: map key %q: %w", k, err)
		}
		return reflect.ValueOf(n).Convert(t), nil
	}
	return reflect.Value{}, fmt.Errorf("parser: unsupported map key type %s", t)
}

// decodeStruct lets encoding/json decode the members without placeholders
// (so its field matching, options and errors apply) and then decodes the
// members holding placeholders into their fields one by one.
func decodeStruct(raw []byte, atts [][]byte, v reflect.Value) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	if obj == nil { // null leaves a struct unchanged
		return nil
	}
	plain := make([]byte, 0, len(raw))
	plain = append(plain, '{')
	var special []string
	for k, e := range obj {
		if bytes.Contains(e, placeholderKey) {
			special = append(special, k)
			continue
		}
		if len(plain) > 1 {
			plain = append(plain, ',')
		}
		plain = appendString(plain, k)
		plain = append(plain, ':')
		plain = append(plain, e...)
	}
	plain = append(plain, '}')
	if err := json.Unmarshal(plain, v.Addr().Interface()); err != nil {
		return err
	}
	fields := infoOf(v.Type()).fields
	for _, k := range special {
		f := fieldByName(fields, k)
		if f == nil {
			continue
		}
		fv, err := settableField(v, f.index)
		if err != nil {
			return err
		}
		if err := decodeValue(obj[k], atts, fv); err != nil {
			return err
		}
	}
	return nil
}

// settableField follows index, allocating nil embedded pointers.
func settableField(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, fmt.Errorf("parser: cannot set embedded pointer to unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}
