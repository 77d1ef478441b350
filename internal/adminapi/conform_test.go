package adminapi_test

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

// conforms checks one exchange against openapi.json: the answer always,
// the request too unless it was refused as bad input (those are sent on
// purpose). Unmatched routes (404/405 from the route check) are skipped:
// the document has no operation for them.
func conforms(t *testing.T, method, url, ctype string, body []byte, resp *http.Response, answer []byte) {
	t.Helper()
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusUnauthorized {
		return
	}
	v, err := docValidator()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer key") // sent, and checked by the API itself
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
