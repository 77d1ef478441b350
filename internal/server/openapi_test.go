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

// conformingCall sends one admin request with the API key, checks the
// request and its answer against openapi.json, and answers the status and
// the body.
func conformingCall(t *testing.T, srv *servertest.Server, method, path, ctype, body string) (int, []byte) {
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
	return resp.StatusCode, data
}

// TestAdminAnswersMatchOpenAPI sends real requests to a running server
// with an enrolled device and checks each request and answer against
// openapi.json, so the document says what the server does.
func TestAdminAnswersMatchOpenAPI(t *testing.T) {
	srv := servertest.Start(t)
	dev := srv.EnrollOTA(t)
	// do sends a request and checks it and its answer against the document.
	do := func(method, path, ctype, body string) []byte {
		t.Helper()
		_, data := conformingCall(t, srv, method, path, ctype, body)
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
	do("GET", "/v1/inventory?q="+dev.UDID[:8], "", "")
	do("GET", "/v1/inventory/counts", "", "")
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

// TestProfileReadsForTheConsole: the library and status pages by ?limit,
// a profile's versions come newest first with their payloads but never
// their content, and a device's profile states list what it was given;
// every answer matches openapi.json.
func TestProfileReadsForTheConsole(t *testing.T) {
	srv := servertest.Start(t)
	dev := srv.EnrollOTA(t)
	do := func(method, path string, body []byte, ctype string, want int) []byte {
		t.Helper()
		st, data := conformingCall(t, srv, method, path, ctype, string(body))
		if st != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, st, data, want)
		}
		return data
	}
	const cfg = "application/x-apple-aspen-config"
	for _, id := range []string{"com.example.a", "com.example.b"} {
		do("POST", "/v1/profiles", wifiProfile(t, id, "33333333-0000-4000-8000-00000000000"+id[len(id)-1:]).Body, cfg, http.StatusCreated)
	}
	do("PUT", "/v1/profiles/com.example.a", wifiProfile(t, "com.example.a", "33333333-0000-4000-8000-0000000000a2").Body, cfg, http.StatusOK)
	do("PUT", "/v1/profiles/com.example.a/scope", []byte(`{"scope": {"devices": ["`+dev.UDID+`"]}}`), "application/json", http.StatusOK)
	waitState(t, srv, "com.example.a", dev.UDID, "verified", dev)

	var list struct {
		Profiles []profileView `json:"profiles"`
	}
	if err := json.Unmarshal(do("GET", "/v1/profiles?limit=1", nil, "", http.StatusOK), &list); err != nil || len(list.Profiles) != 1 || list.Profiles[0].ID != "com.example.a" {
		t.Fatalf("first page of one: %+v, %v", list, err)
	}
	if err := json.Unmarshal(do("GET", "/v1/profiles?limit=1&after=com.example.a", nil, "", http.StatusOK), &list); err != nil || len(list.Profiles) != 1 || list.Profiles[0].ID != "com.example.b" {
		t.Fatalf("second page: %+v, %v", list, err)
	}
	do("GET", "/v1/profiles?limit=0", nil, "", http.StatusBadRequest)
	do("GET", "/v1/profiles/com.example.a/status?limit=1001", nil, "", http.StatusBadRequest)
	do("GET", "/v1/profiles/com.example.a/status?limit=1", nil, "", http.StatusOK)

	raw := do("GET", "/v1/profiles/com.example.a/versions", nil, "", http.StatusOK)
	if strings.Contains(string(raw), "correct horse") || strings.Contains(string(raw), "SSID_STR") {
		t.Fatalf("versions carry the profile's content: %s", raw)
	}
	var vs struct {
		Versions []struct {
			Version     int    `json:"version"`
			UUID        string `json:"uuid"`
			DisplayName string `json:"display_name"`
			Payloads    []struct {
				Type, Identifier string
				Known            bool
			} `json:"payloads"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil || len(vs.Versions) != 2 || vs.Versions[0].Version != 2 || vs.Versions[0].UUID != "33333333-0000-4000-8000-0000000000a2" ||
		vs.Versions[1].Version != 1 || vs.Versions[0].DisplayName != "Office Wi-Fi" || len(vs.Versions[0].Payloads) != 1 ||
		vs.Versions[0].Payloads[0].Type != "com.apple.wifi.managed" || !vs.Versions[0].Payloads[0].Known {
		t.Fatalf("versions: %s", raw)
	}
	do("GET", "/v1/profiles/com.example.nope/versions", nil, "", http.StatusNotFound)

	var states struct {
		Profiles []channelState `json:"profiles"`
	}
	if err := json.Unmarshal(do("GET", "/v1/devices/"+dev.UDID+"/profile-states", nil, "", http.StatusOK), &states); err != nil ||
		len(states.Profiles) != 1 || states.Profiles[0].State != "verified" {
		t.Fatalf("device profile states: %+v, %v", states, err)
	}
	do("GET", "/v1/devices/00008030-00000000DEADBEEF/profile-states", nil, "", http.StatusNotFound)
}
