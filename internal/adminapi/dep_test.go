package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/adminapi/apitest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

const depTestKey = "dep-test-key"

type api struct {
	t     *testing.T
	srv   *httptest.Server
	fake  *deptest.Server
	tok   deptest.Token
	keys  *dep.KeyPair
	store *bolt.Store
	clock *deptest.Clock
}

func newAPI(t *testing.T, devices int) *api {
	t.Helper()
	db, box, dir, _ := openStore(t)
	keys, err := dep.LoadOrCreateKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: t, tok: deptest.NewToken(), keys: keys, store: db, clock: deptest.NewClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}
	a.fake = deptest.NewServer(t, a.tok, devices)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := dep.New(context.Background(), dep.Config{Store: db, Box: box, Keys: keys,
		EnrollURL: func(string, string) string { return "https://mdm.example.com/mdm/enroll/ade" }},
		dep.WithServiceClock(a.clock), dep.WithServiceLogger(quiet), dep.WithClientOptions(dep.WithBaseURL(a.fake.URL)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := adminapi.New(adminapi.Config{APIKey: depTestKey, Store: db, DEP: svc, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewServer(h)
	t.Cleanup(a.srv.Close)
	return a
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (a *api) call(method, path, contentType string, body []byte, out any) (*http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+depTestKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	apitest.Conforms(a.t, method, a.srv.URL+path, contentType, body, resp, raw)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return resp, string(raw)
}

func jsonBody(v any) []byte { b, _ := json.Marshal(v); return b }

func (a *api) upload() dep.TokenView {
	a.t.Helper()
	var v dep.TokenView
	resp, body := a.call("POST", "/v1/dep/tokens?name=Main&note=it%40example.com", "application/pkcs7-mime",
		deptest.P7M(a.t, a.keys.Cert, a.tok), &v)
	if resp.StatusCode != http.StatusCreated {
		a.t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	return v
}

func TestPublicKey(t *testing.T) {
	a := newAPI(t, 0)
	resp, body := a.call("GET", "/v1/dep/public-key", "", nil, nil)
	if resp.StatusCode != 200 || body != string(a.keys.CertPEM()) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestTokenUploadListNeverShowsSecrets(t *testing.T) {
	a := newAPI(t, 3)
	v := a.upload()
	if v.Name != "Main" || v.Note != "it@example.com" || v.ServerName != "Orchard Fake Server" || v.Status != storage.DEPTokenOK {
		t.Fatalf("view: %+v", v)
	}
	resp, body := a.call("GET", "/v1/dep/tokens", "", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, v.ID) {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	for _, secret := range []string{a.tok.ConsumerSecret, a.tok.AccessSecret, a.tok.AccessToken, "sealed_credentials"} {
		if strings.Contains(body, secret) {
			t.Fatalf("token list reveals %q", secret)
		}
	}
	// The same token again is a renewal, not a second token.
	resp, body = a.call("POST", "/v1/dep/tokens", "application/json",
		jsonBody(map[string]string{"name": "Again", "token": string(deptest.P7M(t, a.keys.Cert, a.tok))}), nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "renew") {
		t.Fatalf("duplicate: %d %s", resp.StatusCode, body)
	}
}

func TestTokenExpiryWarning(t *testing.T) {
	a := newAPI(t, 0)
	a.tok.Expiry = a.clock.Now().Add(20 * 24 * time.Hour)
	a.fake.AddToken(a.tok)
	v := a.upload()
	if !strings.Contains(v.Warning, "expires in 20 days") {
		t.Fatalf("warning %q", v.Warning)
	}
	a.clock.Advance(21 * 24 * time.Hour)
	var got dep.TokenView
	a.call("GET", "/v1/dep/tokens/"+v.ID, "", nil, &got)
	if !strings.Contains(got.Warning, "expired") {
		t.Fatalf("warning %q", got.Warning)
	}
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	a := newAPI(t, 0)
	other, err := dep.LoadOrCreateKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		want                      string
	}{
		{"token for another server", "POST", "/v1/dep/tokens?name=x", "", deptest.P7M(t, other.Cert, a.tok), 400, "another MDM server"},
		{"garbage token", "POST", "/v1/dep/tokens?name=x", "", []byte("hello"), 400, "invalid server token"},
		{"no name", "POST", "/v1/dep/tokens", "", deptest.P7M(t, a.keys.Cert, a.tok), 400, "name is required"},
		{"empty token", "POST", "/v1/dep/tokens?name=x", "", nil, 400, "upload the .p7m"},
		{"token too big", "POST", "/v1/dep/tokens?name=x", "", make([]byte, 100<<10), 413, "larger than"},
		{"unknown JSON field", "POST", "/v1/dep/tokens", "application/json", []byte(`{"name":"x","tokn":"y"}`), 400, "unknown field"},
		{"trailing JSON", "POST", "/v1/dep/tokens", "application/json", []byte(`{"name":"x"} {}`), 400, "trailing data"},
		{"unknown token sync", "POST", "/v1/dep/tokens/nope/sync", "", nil, 404, "not found"},
		{"bad status filter", "GET", "/v1/dep/devices?status=lost", "", nil, 400, "status must be"},
		{"bad limit", "GET", "/v1/dep/devices?limit=0", "", nil, 400, "limit must be"},
		{"profile on unknown token", "POST", "/v1/dep/tokens/nope/profiles", "application/json", []byte(`{"name":"x"}`), 404, "not found"},
		{"delete unknown device", "DELETE", "/v1/dep/devices/NOPE", "", nil, 404, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := a.call(tc.method, tc.path, tc.ctype, tc.body, nil)
			var e struct{ Error string }
			json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != tc.status || !strings.Contains(e.Error, tc.want) || strings.Contains(e.Error, "\n") {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	if ts, _ := a.store.DEPTokens(context.Background()); len(ts) != 0 {
		t.Fatalf("bad input stored %d tokens", len(ts))
	}
}

func TestSyncDevicesProfilesAndDeleteRefusal(t *testing.T) {
	a := newAPI(t, 30)
	v := a.upload()
	var res dep.SyncResult
	if resp, body := a.call("POST", "/v1/dep/tokens/"+v.ID+"/sync", "", nil, &res); resp.StatusCode != 200 || res.Devices != 30 {
		t.Fatalf("sync: %d %s", resp.StatusCode, body)
	}
	resp, body := a.call("POST", "/v1/dep/tokens/"+v.ID+"/sync", "", nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "900" || !strings.Contains(body, "retry in 15m0s") {
		t.Fatalf("second sync: %d %s %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	var list struct {
		Devices []storage.DEPDevice
		Next    string
	}
	a.call("GET", "/v1/dep/devices?token="+v.ID+"&status=missing_profile&limit=20", "", nil, &list)
	if len(list.Devices) != 20 || list.Next != list.Devices[19].Serial {
		t.Fatalf("page 1: %d next %q", len(list.Devices), list.Next)
	}
	after := list.Next
	list.Devices, list.Next = nil, ""
	a.call("GET", "/v1/dep/devices?after="+after+"&limit=20", "", nil, &list)
	if len(list.Devices) != 10 || list.Next != "" {
		t.Fatalf("page 2: %d next %q", len(list.Devices), list.Next)
	}
	a.call("GET", "/v1/dep/devices?serial="+deptest.Serial(3), "", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].Serial != deptest.Serial(3) {
		t.Fatalf("by serial: %+v", list.Devices)
	}

	resp, body = a.call("POST", "/v1/dep/tokens/"+v.ID+"/profiles", "application/json",
		[]byte(`{"name":"Shared","shared_ipad":true,"user_affinity":"setup_assistant"}`), nil)
	if resp.StatusCode != 400 || !strings.Contains(body, "shared_ipad requires") {
		t.Fatalf("invalid profile: %d %s", resp.StatusCode, body)
	}
	var p dep.ProfileView
	resp, body = a.call("POST", "/v1/dep/tokens/"+v.ID+"/profiles", "application/json",
		[]byte(`{"name":"Default","default":true,"supervised":true,"screens":{"siri":"hide"}}`), &p)
	if resp.StatusCode != 201 || !p.Default || p.Reassigned != 30 || p.Screens["siri"] != "hide" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	a.call("GET", "/v1/dep/devices?status=ready", "", nil, &list)
	if len(list.Devices) != 30 {
		t.Fatalf("ready after default profile: %d", len(list.Devices))
	}
	var assigned dep.AssignResult
	resp, body = a.call("POST", "/v1/dep/tokens/"+v.ID+"/profiles/"+p.ID+"/devices", "application/json",
		jsonBody(map[string]any{"devices": []string{deptest.Serial(1)}}), &assigned)
	if resp.StatusCode != 200 || len(assigned.Assigned) != 1 {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}

	resp, body = a.call("DELETE", "/v1/dep/tokens/"+v.ID, "", nil, nil)
	var refusal struct {
		Error     string
		Remaining storage.DEPTokenInUseError
	}
	json.Unmarshal([]byte(body), &refusal)
	if resp.StatusCode != 409 || refusal.Remaining.Devices != 30 || refusal.Remaining.Profiles != 1 || refusal.Remaining.DefaultProfile != p.ID {
		t.Fatalf("delete refusal: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.call("DELETE", "/v1/dep/tokens/"+v.ID+"/profiles/"+p.ID, "", nil, nil); resp.StatusCode != 409 {
		t.Fatalf("deleting the default profile: %d %s", resp.StatusCode, body)
	}
	p.Default = false
	if resp, body := a.call("PUT", "/v1/dep/tokens/"+v.ID+"/profiles/"+p.ID, "application/json", jsonBody(p.ProfileSpec), nil); resp.StatusCode != 200 {
		t.Fatalf("clear default: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.call("DELETE", "/v1/dep/tokens/"+v.ID+"/profiles/"+p.ID, "", nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete profile: %d", resp.StatusCode)
	}
	for i := range 30 {
		if resp, _ := a.call("DELETE", "/v1/dep/devices/"+deptest.Serial(i), "", nil, nil); resp.StatusCode != 204 {
			t.Fatalf("delete device: %d", resp.StatusCode)
		}
	}
	if resp, body := a.call("DELETE", "/v1/dep/tokens/"+v.ID, "", nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete empty token: %d %s", resp.StatusCode, body)
	}
}

func TestRenewKeepsToken(t *testing.T) {
	a := newAPI(t, 2)
	v := a.upload()
	a.call("POST", "/v1/dep/tokens/"+v.ID+"/sync", "", nil, nil)
	fresh := deptest.NewToken()
	fresh.Expiry = a.tok.Expiry.Add(365 * 24 * time.Hour)
	a.fake.AddToken(fresh)
	var got dep.TokenView
	resp, body := a.call("PUT", "/v1/dep/tokens/"+v.ID, "application/pkcs7-mime", deptest.P7M(t, a.keys.Cert, fresh), &got)
	if resp.StatusCode != 200 || got.ID != v.ID || !got.AccessTokenExpiry.Equal(fresh.Expiry) || got.LastSync.IsZero() {
		t.Fatalf("renew: %d %s", resp.StatusCode, body)
	}
	if n, _ := a.store.CountDEPDevices(context.Background(), storage.DEPDeviceFilter{TokenID: v.ID}); n != 2 {
		t.Fatalf("devices after renewal: %d", n)
	}
}

func FuzzProfileSpec(f *testing.F) {
	f.Add([]byte(`{"name":"x","shared_ipad":true,"supervised":true,"max_cached_users":3}`))
	f.Add([]byte(`{"name":"x","sync_with_computers":"configurator_cert","configurator_certs":["MAA="]}`))
	f.Add([]byte(`{"name":"x","device_name_template":"{{SERIAL}}{{","screens":{"siri":"hide"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec dep.ProfileSpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		if spec.Validate() == nil {
			rec := spec.Record()
			_ = dep.AppleProfile(rec, "https://x")
			_ = dep.SpecOf(rec, false)
		}
	})
}

// TestDEPServerFaultIsTheOne500: a storage fault under the ABM routes
// answers the same 500 body as the rest of the API.
func TestDEPServerFaultIsTheOne500(t *testing.T) {
	a := newAPI(t, 0)
	a.store.Close()
	resp, body := a.call("GET", "/v1/dep/tokens", "", nil, nil)
	var e struct{ Error string }
	if resp.StatusCode != 500 || json.Unmarshal([]byte(body), &e) != nil || e.Error != "internal server error" {
		t.Fatalf("GET /v1/dep/tokens on a closed store: %d %s", resp.StatusCode, body)
	}
}
