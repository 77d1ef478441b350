// Package apitest checks admin API exchanges against openapi.json, for the
// tests of every package whose routes the table mounts.
package apitest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/orchardmdm/orchard/internal/adminapi"
)

var docValidator = sync.OnceValues(func() (validator.Validator, error) {
	doc, err := libopenapi.NewDocument(adminapi.OpenAPI())
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return v, nil
})

// Conforms reports, as test errors, where one exchange departs from
// openapi.json: the answer always, the request too unless it was refused
// as bad input (tests send those on purpose). 401 and 405 come from the
// key and route checks, before any operation, and are not checked; a
// request for a path the table lacks fails.
func Conforms(t testing.TB, method, url, ctype string, body []byte, resp *http.Response, answer []byte) {
	t.Helper()
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusMethodNotAllowed:
		return
	}
	v, err := docValidator()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer key") // sent; the API checks it itself
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	check := v.ValidateHttpRequestResponse
	if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge {
		check = v.ValidateHttpResponse
	}
	if ok, errs := check(req, resp); !ok {
		for _, e := range errs {
			t.Errorf("%s %s (%d) does not match openapi.json: %s: %s", method, url, resp.StatusCode, e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("    %s: %s", se.FieldPath, se.Reason)
			}
		}
	}
}
