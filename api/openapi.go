package api

import (
	_ "embed"
	"net/http"
)

// openAPI is the REST face's OpenAPI (Swagger 2.0) document, generated
// from the .proto (make proto copies it here to embed it).
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI answers GET /openapi.json; it needs no token.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
