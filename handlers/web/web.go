// Package web serves the built web client (the React app in /web) at `/` beside the REST API and
// Socket.IO. It only answers GET and HEAD for files that exist in the build ("/" is index.html) and never
// for /api/ or /socket.io/; every other request goes to the next handler, so the API keeps its routes
// and its JSON 404s.
package web

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"

	ui "github.com/maoga/maoga/web"
)

// Embedded serves the client compiled into the binary (web/dist), falling back to next.
func Embedded(next http.Handler) http.Handler { return Handler(ui.Dist(), next) }

// Handler serves files from files, falling back to next for anything that is not one of them.
func Handler(files fs.FS, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := fileName(r)
		if ok && serveFile(w, r, files, name) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fileName maps the request to a file of the build; ok is false for requests the client never answers.
func fileName(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	p := r.URL.Path
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "/api/") || p == "/api" || strings.HasPrefix(p, "/socket.io/") {
		return "", false
	}
	if p == "/" {
		return "index.html", true
	}
	clean := path.Clean(p)
	if clean != p { // "..", "//", trailing slashes: not a file of ours
		return "", false
	}
	name := clean[1:]
	return name, fs.ValidPath(name)
}

// serveFile writes the file and reports true, or reports false when there is no such regular file.
func serveFile(w http.ResponseWriter, r *http.Request, files fs.FS, name string) bool {
	f, err := files.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok { // every fs this serves (embed, os.DirFS, fstest.MapFS) seeks; anything else is a wiring bug
		http.Error(w, errors.New("web: file is not seekable").Error(), http.StatusInternalServerError)
		return true
	}
	if strings.HasPrefix(name, "assets/") {
		// Vite puts a content hash in every asset name: a changed file has a new name.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	// Embedded files have no modification time; ServeContent then skips Last-Modified.
	http.ServeContent(w, r, name, st.ModTime(), rs)
	return true
}
