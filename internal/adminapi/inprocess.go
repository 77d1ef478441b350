package adminapi

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/adminauth"
)

// Do serves one admin API request in-process, as actor (already signed in
// by its caller): the same route table, role check, handler and audit entry
// as a request over HTTP. The console's pages and forms go through it, so
// there is one place that decides access, one place that changes state and
// one audit trail. source is the client's address ("host:port"), for the
// audit log. It answers the status and the JSON body.
func (a *API) Do(ctx context.Context, actor *adminauth.Actor, source, method, target string, body []byte) (int, []byte) {
	rec := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
	if actor == nil {
		apijson.WriteError(rec, http.StatusUnauthorized, "unauthorized")
		return rec.status, rec.body.Bytes()
	}
	r, err := http.NewRequestWithContext(adminauth.WithActor(ctx, actor), method, target, bytes.NewReader(body))
	if err != nil || !strings.HasPrefix(r.URL.Path, "/v1/") {
		apijson.WriteError(rec, http.StatusBadRequest, "bad in-process request")
		return rec.status, rec.body.Bytes()
	}
	r.RemoteAddr = source
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	a.dispatch(rec, r)
	return rec.status, rec.body.Bytes()
}

// Allows tells whether actor may make the request method target, by the
// route's own access rule: what the console asks before it shows a button.
// A request no route serves is not allowed.
func (a *API) Allows(actor *adminauth.Actor, method, target string) bool {
	if actor == nil {
		return false
	}
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		return false
	}
	_, pattern := a.mux.Handler(r)
	rt, ok := a.byPattern[pattern]
	if !ok {
		return false
	}
	// ServeMux.Handler does not set path values: take them from the pattern.
	pp := strings.Split(rt.path, "/")
	tp := strings.Split(r.URL.Path, "/")
	for i, seg := range pp {
		if i < len(tp) && strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			r.SetPathValue(strings.Trim(seg, "{}"), tp[i])
		}
	}
	return actor.Role.Allows(rt.access(r))
}
