// Package console serves Ogma's web console: static files built from web/
// (Vite) into dist, embedded in the binary. The console calls only the
// public REST API, with the tenant's token, which it keeps in the browser
// session; the files themselves need no token.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed dist
var dist embed.FS

// Handler serves the console: index.html at /, the built assets under
// /assets/. Each answer forbids framing and loading from elsewhere.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: the embedded build: " + err.Error()) // a build without its assets is a programmer error
	}
	files := http.FileServer(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "+
			"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
