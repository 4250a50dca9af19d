package parser

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// This file holds the per-type facts the binary-aware encoder and decoder
// need, computed once per type: whether a type can hold a []byte at all
// (most argument types cannot, and are handed to encoding/json untouched)
// and the JSON fields of struct types, following encoding/json's rules.

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	unmarshalerType   = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshType   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

type typeInfo struct {
	binary bool    // a value of this type may contain a []byte to move out
	fields []field // struct types only
}

type field struct {
	name      string
	nameJSON  []byte // `"name":`
	index     []int
	typ       reflect.Type
	tagged    bool
	omitEmpty bool
	omitZero  bool
	quoted    bool // ",string"
}

var typeCache sync.Map // reflect.Type → *typeInfo

func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{binary: mayHoldBinary(t, map[reflect.Type]bool{})}
	if t.Kind() == reflect.Struct {
		ti.fields = structFields(t)
	}
	actual, _ := typeCache.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

// isBytes reports whether encoding/json would write t as base64, which is
// where we put a placeholder instead.
func isBytes(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	e := t.Elem()
	p := reflect.PointerTo(e)
	return !e.Implements(marshalerType) && !p.Implements(marshalerType) &&
		!e.Implements(textMarshalerType) && !p.Implements(textMarshalerType)
}

func customMarshal(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType)
}

// mayHoldBinary is conservative: types on the current path of a recursive
// type are assumed to hold binary, which only costs a dynamic walk.
func mayHoldBinary(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if customMarshal(t) {
		return false
	}
	if visiting[t] {
		return true
	}
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo).binary
	}
	visiting[t] = true
	defer delete(visiting, t)
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Slice:
		if isBytes(t) {
			return true
		}
		return mayHoldBinary(t.Elem(), visiting)
	case reflect.Array, reflect.Pointer:
		return mayHoldBinary(t.Elem(), visiting)
	case reflect.Map:
		return mayHoldBinary(t.Elem(), visiting)
	case reflect.Struct:
		for _, f := range structFields(t) {
			if mayHoldBinary(f.typ, visiting) {
				return true
			}
		}
	}
	return false
}

// structFields lists the JSON fields of a struct type as encoding/json sees
// them: exported fields, json tags, "-" skipped, embedded structs promoted,
// name conflicts resolved by depth then by tag (ambiguous names dropped).
func structFields(t reflect.Type) []field {
	type queued struct {
		typ   reflect.Type
		index []int
	}
	var all []field
	current := []queued{}
	next := []queued{{typ: t}}
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current, next = next, current[:0]
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := 0; i < q.typ.NumField(); i++ {
				sf := q.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(append([]int(nil), q.index...), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					next = append(next, queued{typ: ft, index: index})
					continue
				}
				f := field{
					name:   name,
					index:  index,
					typ:    sf.Type,
					tagged: name != "",
				}
				if f.name == "" {
					f.name = sf.Name
				}
				for _, o := range strings.Split(opts, ",") {
					switch o {
					case "omitempty":
						f.omitEmpty = true
					case "omitzero":
						f.omitZero = true
					case "string":
						switch sf.Type.Kind() {
						case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
							reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
							reflect.Float32, reflect.Float64, reflect.String:
							f.quoted = true
						}
					}
				}
				f.nameJSON = appendString(nil, f.name)
				f.nameJSON = append(f.nameJSON, ':')
				all = append(all, f)
			}
		}
	}
	// Resolve conflicts: for each name keep the shallowest field; among
	// equally shallow ones the single tagged one; otherwise drop the name.
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].name != all[j].name {
			return all[i].name < all[j].name
		}
		if len(all[i].index) != len(all[j].index) {
			return len(all[i].index) < len(all[j].index)
		}
		return all[i].tagged && !all[j].tagged
	})
	out := all[:0]
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		group := all[i:j]
		i = j
		if len(group) > 1 && len(group[0].index) == len(group[1].index) && group[0].tagged == group[1].tagged {
			continue
		}
		out = append(out, group[0])
	}
	sort.Slice(out, func(i, j int) bool { return lessIndex(out[i].index, out[j].index) })
	return out
}

func lessIndex(a, b []int) bool {
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return a[k] < b[k]
		}
	}
	return len(a) < len(b)
}

// fieldByName finds the field a JSON key maps to: exact name first, then
// case-insensitively, as encoding/json does.
func fieldByName(fields []field, key string) *field {
	for i := range fields {
		if fields[i].name == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}
