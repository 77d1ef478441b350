package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// TestAdminAnswersMatchOpenAPI sends real requests to a running server
// with an enrolled device and checks each request and answer against
// openapi.json, so the document says what the server does.
func TestAdminAnswersMatchOpenAPI(t *testing.T) {
	srv := servertest.Start(t)
	dev := srv.EnrollOTA(t)
	doc, err := libopenapi.NewDocument(adminapi.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// do sends a request and validates the answer, and the request too
	// unless it is meant to be refused.
	do := func(method, path, ctype, body string) []byte {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+srv.APIKey())
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		// The validator reads both bodies again.
		req, _ = http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+srv.APIKey())
		resp.Body = io.NopCloser(bytes.NewReader(data))
		check := v.ValidateHttpRequestResponse
		if resp.StatusCode == http.StatusBadRequest {
			check = v.ValidateHttpResponse
		}
		if ok, verrs := check(req, resp); !ok {
			for _, e := range verrs {
				t.Errorf("%s %s (%d): %s: %s", method, path, resp.StatusCode, e.Message, e.Reason)
				for _, se := range e.SchemaValidationErrors {
					t.Errorf("    %s: %s", se.FieldPath, se.Reason)
				}
			}
			t.Logf("%s %s answered: %.300s", method, path, data)
		}
		return data
	}
	const js = "application/json"
	do("GET", "/v1/devices", "", "")
	do("GET", "/v1/devices?limit=1", "", "")
	do("GET", "/v1/devices/"+dev.UDID, "", "")
	do("GET", "/v1/devices/"+dev.UDID+"?reveal=push_magic", "", "")
	do("GET", "/v1/devices/NOPE", "", "")
	do("GET", "/v1/devices/"+dev.UDID+"/inventory", "", "")
	do("GET", "/v1/devices/"+dev.UDID+"/apps", "", "")
	do("GET", "/v1/inventory?platform=iOS", "", "")
	var sent struct {
		UUID string `json:"command_uuid"`
	}
	out := do("POST", "/v1/commands", js, `{"targets": ["`+dev.UDID+`"], "request_type": "DeviceLock", "payload": {"Message": "hi"}}`)
	if err := json.Unmarshal(out, &sent); err != nil || sent.UUID == "" {
		t.Fatalf("POST /v1/commands: %s", out)
	}
	do("POST", "/v1/commands", js, `{"targets": [], "request_type": "DeviceLock"}`)
	if _, err := dev.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	do("GET", "/v1/commands/"+sent.UUID, "", "")
	do("DELETE", "/v1/commands/"+sent.UUID, "", "")
	do("POST", "/v1/devices/"+dev.UDID+"/actions/lock", js, `{"message": "call IT"}`)
	do("GET", "/v1/push-certificate", "", "")
	do("POST", "/v1/enrollment/invitations", js, `{"label": "one"}`)
	do("GET", "/v1/enrollment/invitations", "", "")
	do("POST", "/v1/configurator/profiles", js, `{"name": "Lab"}`)
	do("GET", "/v1/configurator/profiles", "", "")
	do("GET", "/v1/configurator/serials", "", "")
	do("GET", "/v1/certificates", "", "")
	do("GET", "/v1/dep/tokens", "", "")
	do("GET", "/v1/dep/devices", "", "")
	do("GET", "/v1/dep/tokens/nope", "", "")
	do("GET", "/v1/schema/commands", "", "")
	do("POST", "/v1/devices/"+dev.UDID+"/release", "", "")
	do("POST", "/v1/devices/00008030-00000000DEADBEEF/release", "", "")
}
