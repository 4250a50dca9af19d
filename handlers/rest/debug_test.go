package rest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/maoga/maoga/handlers/rest"
)

func TestDebugRoutes(t *testing.T) {
	e := echo.New()
	rest.RegisterDebug(e)
	do := func(method, path, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	rec := do("POST", "/debug/gc", "127.0.0.1:5000")
	var gc rest.DebugGC
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &gc) != nil {
		t.Fatalf("POST /debug/gc from loopback: %d %s", rec.Code, rec.Body)
	}
	if gc.Goroutines < 1 || gc.HeapAlloc == 0 || gc.NumGC == 0 {
		t.Fatalf("gc answer %+v", gc)
	}
	if rec := do("GET", "/debug/pprof/goroutine?debug=1", "[::1]:5000"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "goroutine profile:") {
		t.Fatalf("goroutine profile from ::1: %d %.200s", rec.Code, rec.Body)
	}
	// Anyone else gets 404, whatever the headers claim.
	for _, path := range []string{"/debug/gc", "/debug/pprof/goroutine"} {
		method := "GET"
		if path == "/debug/gc" {
			method = "POST"
		}
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = "10.1.2.3:5000"
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("%s %s from 10.1.2.3: %d", method, path, rec.Code)
		}
	}
}
