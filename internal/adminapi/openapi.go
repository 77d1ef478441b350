package adminapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of routes.go (an OpenAPI 3.1 document,
// written by hand; TestOpenAPIMatchesRoutes keeps the two in step).
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the admin API.
func OpenAPI() []byte { return openAPIDoc }

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
