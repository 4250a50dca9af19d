package rest

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/services/errs"
)

// Bind decodes the JSON request body into v (a pointer to a struct) strictly: the body must be one
// JSON object, no unknown fields, every field of the declared type (so `{"$ne": ...}` where a string
// belongs is refused, not passed to a query), nothing after it. Errors are VALIDATION_ERROR with
// details.fields naming the field, or PAYLOAD_TOO_LARGE past the body limit.
func Bind(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errs.Validation("Content-Type must be application/json", nil)
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return errs.Validation("request body is required", nil)
	}
	// The body must be an object: JSON null would decode into v as "nothing given" and a route whose
	// fields are all optional would then act on it (hardening: PATCH /users/me with `null` was a 200).
	br := bufio.NewReader(r.Body)
	if first, err := firstByte(br); err != nil {
		return decodeError(err)
	} else if first != '{' {
		return errs.Validation("request body must be a JSON object", nil)
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return errs.Validation("request body must be a single JSON object", nil)
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return errs.PayloadTooLarge("request body too large").WithDetails(map[string]any{"limit": mbe.Limit})
	case errors.Is(err, io.EOF):
		return errs.Validation("request body is required", nil)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syn):
		return errs.Validation("malformed JSON", nil)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return errs.Validation("request body must be a JSON object", nil)
		}
		return errs.Validation("invalid field type", map[string]string{typ.Field: "must be " + jsonType(typ.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.Validation("unknown field", map[string]string{name: "unknown field"})
	}
	return errs.Validation("malformed JSON", nil)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// OK writes `{ "data": data }` with status.
func OK(c echo.Context, status int, data any) error {
	return c.JSON(status, map[string]any{"data": data})
}

// List writes `{ "data": items, "nextCursor": cursor|null }`.
func List(c echo.Context, items any, nextCursor *string) error {
	return c.JSON(http.StatusOK, map[string]any{"data": items, "nextCursor": nextCursor})
}

// firstByte peeks at the first byte that is not JSON whitespace.
func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}
