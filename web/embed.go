// Package web holds the built web client: web/dist, made by `npm run build` in this folder (`make web`)
// and committed, so that `go build` and `make run` need no Node.js. handlers/web serves it at `/`.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built client (index.html, assets/...), rooted at dist/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil { // only for an invalid path literal, never at run time
		panic(err)
	}
	return sub
}
