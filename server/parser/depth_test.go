package parser

import (
	"errors"
	"strings"
	"testing"
)

// nest returns an EVENT payload whose deepest value sits at depth levels (the payload array is level 1).
func nest(depth int) string {
	return `["e",` + strings.Repeat("[", depth-1) + "1" + strings.Repeat("]", depth-1) + "]"
}

func TestMaxDepth(t *testing.T) {
	cases := []struct {
		name string
		max  int
		text string
		err  error
	}{
		{"default: 64 levels pass", 0, "2" + nest(64), nil},
		{"default: 65 levels refused", 0, "2" + nest(65), ErrTooDeep},
		{"10k levels refused before any decoding", 0, "2" + nest(10_000), ErrTooDeep},
		{"objects count too", 0, "2" + `["e",` + strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64) + "]", ErrTooDeep},
		{"brackets in strings do not count", 0, "2" + `["e","` + strings.Repeat("[{", 500) + `"]`, nil},
		{"escaped quotes keep the string open", 0, "2" + `["e","\"` + strings.Repeat("[", 500) + `\\"]`, nil},
		{"configured 3: 3 pass", 3, "2" + nest(3), nil},
		{"configured 3: 4 refused", 3, "2" + nest(4), ErrTooDeep},
		{"ack payload", 3, "31" + `[[[[1]]]]`, ErrTooDeep},
		{"connect payload", 2, "0" + `{"a":{"b":{}}}`, ErrTooDeep},
		{"binary event header", 2, "51-" + `["e",[{"_placeholder":true,"num":0}]]`, ErrTooDeep},
		{"off: encoding/json's own limit still refuses 10001", -1, "2" + nest(10_001), ErrInvalidPayload},
		{"off: 200 levels pass", -1, "2" + nest(200), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoder{MaxDepth: tc.max}
			_, err := d.Add([]byte(tc.text), false)
			if tc.err == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if d.Pending() && tc.err != nil {
				t.Fatal("a refused binary packet stays pending")
			}
		})
	}
}

func BenchmarkNestedDeeper900KB(b *testing.B) {
	flat := []byte("[" + strings.Repeat(`"abc",1,`, 900_000/8) + "0]")
	b.SetBytes(int64(len(flat)))
	for i := 0; i < b.N; i++ {
		if nestedDeeper(flat, DefaultMaxDepth) {
			b.Fatal("flat array reported deep")
		}
	}
}
