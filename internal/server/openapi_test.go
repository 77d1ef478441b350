package server_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/adminapi/apitest"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// TestAdminAnswersMatchOpenAPI sends real requests to a running server
// with an enrolled device and checks each request and answer against
// openapi.json, so the document says what the server does.
func TestAdminAnswersMatchOpenAPI(t *testing.T) {
	srv := servertest.Start(t)
	dev := srv.EnrollOTA(t)
	// do sends a request and checks it and its answer against the document.
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
		apitest.Conforms(t, method, srv.URL+path, ctype, []byte(body), resp, data)
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
	if tarball := do("GET", "/v1/backup", "", ""); len(tarball) < 1024 {
		t.Errorf("GET /v1/backup answered %d bytes", len(tarball))
	}
	do("GET", "/v1/inventory?platform=iOS", "", "")
	var sent struct {
		UUID string `json:"command_uuid"`
	}
	out := do("POST", "/v1/commands", js, `{"targets": ["`+dev.UDID+`"], "request_type": "DeviceLock", "payload": {"Message": "hi"}}`)
	if err := json.Unmarshal(out, &sent); err != nil || sent.UUID == "" {
		t.Fatalf("POST /v1/commands: %s", out)
	}
	do("POST", "/v1/commands", js, `{"targets": [], "request_type": "DeviceLock"}`)
	future := base64.StdEncoding.EncodeToString([]byte(plistDict("RequestType", "FutureCommand")))
	do("POST", "/v1/commands", js, `{"targets": ["`+dev.UDID+`"], "plist": "`+future+`", "allow_unknown": true}`)
	if _, err := dev.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	do("GET", "/v1/commands/"+sent.UUID, "", "")
	do("GET", "/v1/commands", "", "")
	do("GET", "/v1/commands?request_type=DeviceLock&status=acknowledged&sender=bootstrap&limit=1", "", "")
	do("GET", "/v1/commands?status=Sent", "", "")
	do("GET", "/v1/commands.csv?since=2026-01-01T00:00:00Z", "", "")
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

	// Before a push certificate: the 409s are in the document too.
	bare := servertest.StartWithoutPushCert(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/enrollment/profile", ""},
		{"POST", "/v1/enrollment/invitations", `{"label": "one"}`},
		{"POST", "/v1/configurator/profiles", `{"name": "Lab"}`},
	} {
		req, _ := http.NewRequest(c.method, bare.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+bare.APIKey())
		ctype := ""
		if c.body != "" {
			ctype = js
			req.Header.Set("Content-Type", js)
		}
		resp, err := bare.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("%s %s without a push certificate = %d", c.method, c.path, resp.StatusCode)
		}
		apitest.Conforms(t, c.method, bare.URL+c.path, ctype, []byte(c.body), resp, data)
	}
}
