package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	ui "github.com/maoga/maoga/web"
)

func testFiles() fstest.MapFS {
	return fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><div id=root></div>")},
		"assets/app-1a2b.js": {Data: []byte("console.log(1)")},
		"api/secret.txt":     {Data: []byte("must never be served")},
		"healthz":            {Data: []byte("shadow")},
	}
}

// next answers like the API would: a marker body, so each test sees who answered.
var next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusTeapot)
	_, _ = io.WriteString(w, "next")
})

func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestServesBuiltFiles(t *testing.T) {
	h := Handler(testFiles(), next)
	rec := do(t, h, http.MethodGet, "/")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "id=root") {
		t.Fatalf("GET / = %d %q", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / content type %q", ct)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("GET / cache-control %q, want no-cache (index names the current assets)", cc)
	}
	rec = do(t, h, http.MethodGet, "/assets/app-1a2b.js")
	if rec.Code != http.StatusOK || rec.Body.String() != "console.log(1)" {
		t.Fatalf("GET asset = %d %q", rec.Code, rec.Body.String())
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("asset cache-control %q", cc)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("asset content type %q", ct)
	}
	rec = do(t, h, http.MethodHead, "/")
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD / = %d with %d body bytes", rec.Code, rec.Body.Len())
	}
}

// Everything that is not a GET/HEAD of an existing file goes to next, and /api/ and /socket.io/ always do.
func TestFallsThroughToNext(t *testing.T) {
	h := Handler(testFiles(), next)
	for _, c := range []struct{ method, target string }{
		{http.MethodGet, "/api/secret.txt"},
		{http.MethodGet, "/api"},
		{http.MethodGet, "/socket.io/?EIO=4&transport=polling"},
		{http.MethodGet, "/missing.js"},
		{http.MethodGet, "/assets/"},
		{http.MethodGet, "/assets"},
		{http.MethodGet, "/index.html/"},
		{http.MethodGet, "//index.html"},
		{http.MethodGet, "/assets/../index.html"},
		{http.MethodPost, "/"},
		{http.MethodDelete, "/index.html"},
		{http.MethodOptions, "/"},
	} {
		rec := do(t, h, c.method, c.target)
		if rec.Code != http.StatusTeapot || rec.Body.String() != "next" {
			t.Errorf("%s %s = %d %q, want next handler", c.method, c.target, rec.Code, rec.Body.String())
		}
	}
}

func TestEmbeddedBuildHasIndex(t *testing.T) {
	rec := do(t, Embedded(next), http.MethodGet, "/")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="root"`) {
		t.Fatalf("embedded GET / = %d %q (run make web?)", rec.Code, rec.Body.String())
	}
	// The index names its assets; each one must be in the embedded build.
	body := rec.Body.String()
	for _, part := range strings.Split(body, `"/assets/`)[1:] {
		name := "assets/" + part[:strings.IndexByte(part, '"')]
		if _, err := fs.Stat(ui.Dist(), name); err != nil {
			t.Errorf("index.html names %s, not in the build: %v", name, err)
		}
	}
}
