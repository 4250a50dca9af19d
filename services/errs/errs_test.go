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

// A registered classifier turns matching causes into SERVICE_UNAVAILABLE (503, retry) wherever they
// pass through Internal or From; everything else stays INTERNAL.
func TestInternalClassifiesUnavailableCauses(t *testing.T) {
	down := errors.New("database unreachable")
	RegisterUnavailable(func(err error) bool { return errors.Is(err, down) })
	wrapped := fmt.Errorf("insert lobby: %w", down)
	for _, e := range []*Error{Internal(wrapped), From(wrapped)} {
		if e.Code != CodeServiceUnavailable || e.Status != 503 || e.Message != MsgUnavailable || !errors.Is(e, down) {
			t.Fatalf("%+v", e)
		}
	}
	if !IsUnavailable(wrapped) || !IsUnavailable(Internal(wrapped)) || !IsUnavailable(New(CodeServiceUnavailable, "not ready")) {
		t.Fatal("IsUnavailable missed an unavailable error")
	}
	other := errors.New("boom")
	if Internal(other).Code != CodeInternal || IsUnavailable(other) || IsUnavailable(Conflict("x")) || IsUnavailable(nil) {
		t.Fatal("ordinary errors classified as unavailable")
	}
}
