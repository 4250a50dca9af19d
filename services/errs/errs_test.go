package errs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatusAndIs(t *testing.T) {
	cases := map[string]int{
		CodeValidation: 400, CodeUnauthorized: 401, CodeForbidden: 403, CodeNotFound: 404,
		CodeConflict: 409, CodePayloadTooLarge: 413, CodeRateLimited: 429, CodeInternal: 500,
		CodeServiceUnavailable: 503, CodeLobbyNotFound: 404, CodeNotHost: 403, "SOMETHING_ELSE": 500,
	}
	for code, want := range cases {
		if got := New(code, "m").Status; got != want {
			t.Errorf("%s: status %d, want %d", code, got, want)
		}
	}
	wrapped := fmt.Errorf("ctx: %w", Conflict("taken"))
	if !Is(wrapped, CodeConflict) || Is(wrapped, CodeNotFound) || Is(errors.New("x"), CodeConflict) {
		t.Fatal("Is does not follow the chain or matches the wrong code")
	}
	if CodeOf(errors.New("plain")) != CodeInternal || CodeOf(nil) != "" || CodeOf(wrapped) != CodeConflict {
		t.Fatal("CodeOf")
	}
}

func TestInternalHidesCause(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	e := From(cause)
	if e.Code != CodeInternal || e.Message != "internal error" || e.Status != http.StatusInternalServerError {
		t.Fatalf("got %+v", e)
	}
	if !errors.Is(e, cause) {
		t.Fatal("cause not reachable through errors.Is")
	}
	if From(nil) != nil {
		t.Fatal("From(nil) must be nil")
	}
}

func TestValidationDetails(t *testing.T) {
	e := Validation("invalid input", map[string]string{"username": "is required"})
	f, ok := e.Details["fields"].(map[string]any)
	if !ok || f["username"] != "is required" {
		t.Fatalf("details %v", e.Details)
	}
	if Validation("x", nil).Details != nil {
		t.Fatal("no fields → no details")
	}
	d := e.WithDetails(map[string]any{"a": 1})
	if e.Details["a"] != nil || d.Details["a"] != 1 {
		t.Fatal("WithDetails must copy")
	}
}
