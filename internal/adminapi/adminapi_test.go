package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage/bolt"
)

const testKey = "admin-test-key"

// newServer serves an API with the store and the command service wired
// (pushing through a push service without a certificate), over real HTTP.
func newServer(t *testing.T) (*httptest.Server, *bolt.Store) {
	t.Helper()
	srv, db, _ := serveAPI(t, false)
	return srv, db
}

// openStore opens a fresh bolt store and secret box in a temporary folder,
// closed when the test ends; it returns the folder and the database path.
func openStore(t *testing.T) (*bolt.Store, *pki.SecretBox, string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "orchard.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	box, err := pki.LoadOrCreateSecretBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	return db, box, dir, path
}

// serveAPI serves an API with the store and the command service wired, and
// with the store as the admin accounts when admins is set; it also returns
// the database path.
func serveAPI(t *testing.T, admins bool) (*httptest.Server, *bolt.Store, string) {
	t.Helper()
	db, box, _, path := openStore(t)
	quiet := slog.New(slog.DiscardHandler)
	pusher, err := push.New(t.Context(), db, box, push.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pusher.Close(context.Background()) })
	cmds, err := command.New(db, db, pusher, command.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cfg := adminapi.Config{APIKey: testKey, Store: db, Commands: cmds, Logger: quiet}
	if admins {
		cfg.Admins = db
	}
	a, err := adminapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", a)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, db, path
}

// call sends a request with the key and returns the status, the headers
// and the decoded {"error"} (failing when the body is not such JSON and
// the status is not 2xx).
func call(t *testing.T, srv *httptest.Server, method, path string, body io.Reader, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error *string `json:"error"`
	}
	if resp.StatusCode >= 300 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: %d with Content-Type %q, want application/json", method, path, resp.StatusCode, ct)
		}
		if err := json.Unmarshal(data, &e); err != nil || e.Error == nil || *e.Error == "" {
			t.Errorf("%s %s: %d body %q is not a JSON error", method, path, resp.StatusCode, data)
			return resp.StatusCode, resp.Header, ""
		}
		return resp.StatusCode, resp.Header, *e.Error
	}
	return resp.StatusCode, resp.Header, ""
}

func TestUnmatchedRoutesAnswerJSON(t *testing.T) {
	srv, _ := newServer(t)
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/nope", 404, ""},
		{"GET", "/v1/devices/X/nope", 404, ""},
		{"POST", "/v1/", 404, ""},
		{"PATCH", "/v1/devices", 405, "GET, HEAD"},
		{"DELETE", "/v1/devices/ABC", 405, "GET, HEAD"},
		{"PUT", "/v1/commands", 405, "POST, GET, HEAD"},
		{"GET", "/v1/commands/U", 200, ""}, // matched: the store answers 404 below
		{"POST", "/v1/dep/tokens/1/profiles/2", 405, "GET, HEAD, PUT, DELETE"},
	}
	for _, c := range cases {
		code, h, msg := call(t, srv, c.method, c.path, nil, testKey)
		if c.status == 200 {
			if code == 405 || (code == 404 && msg == "no such admin API route") {
				t.Errorf("%s %s: %d %q, want it routed", c.method, c.path, code, msg)
			}
			continue
		}
		if code != c.status {
			t.Errorf("%s %s: %d %q, want %d", c.method, c.path, code, msg, c.status)
		}
		if got := h.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

func TestKeyIsCheckedBeforeRouting(t *testing.T) {
	srv, _ := newServer(t)
	for _, path := range []string{"/v1/devices", "/v1/nope", "/v1/openapi.json", "/v1/backup"} {
		for _, key := range []string{"", "wrong"} {
			code, h, _ := call(t, srv, "GET", path, nil, key)
			if code != 401 || h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with key %q: %d, want 401 with WWW-Authenticate", path, key, code)
			}
		}
	}
}

func TestOversizedBodyIs413(t *testing.T) {
	srv, db := newServer(t)
	big := `{"targets": ["` + strings.Repeat("A", adminapi.MaxJSONBody) + `"]}`
	code, _, msg := call(t, srv, "POST", "/v1/commands", strings.NewReader(big), testKey)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "larger than") {
		t.Fatalf("oversized command: %d %q, want 413", code, msg)
	}
	if n, err := db.QueueDepth(t.Context(), strings.Repeat("A", 10)); err != nil || n != 0 {
		t.Errorf("queue depth %d, %v after a refused body", n, err)
	}
}

func TestUnconfiguredServiceIs503(t *testing.T) {
	srv, _ := newServer(t)
	for _, p := range []string{"/v1/dep/tokens", "/v1/push-certificate", "/v1/inventory", "/v1/certificates"} { // not wired in newServer
		if code, _, _ := call(t, srv, "GET", p, nil, testKey); code != http.StatusServiceUnavailable {
			t.Errorf("GET %s without its service: %d, want 503", p, code)
		}
	}
}

// TestServerFaultBodyIsUniform: a storage fault answers the one 500 body
// and shows nothing of the cause.
func TestServerFaultBodyIsUniform(t *testing.T) {
	srv, db := newServer(t)
	db.Close() // every read now fails
	for _, p := range []string{"/v1/devices", "/v1/commands/ABC"} {
		code, _, msg := call(t, srv, "GET", p, nil, testKey)
		if code != 500 || msg != "internal server error" {
			t.Errorf("GET %s on a closed store: %d %q, want 500 \"internal server error\"", p, code, msg)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	srv, _ := newServer(t)
	req, _ := http.NewRequest("GET", srv.URL+"/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, adminapi.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// TestRefusedCommandKeepsItsTargets: a command no target can receive is a
// 400 whose body still lists why each target was refused.
func TestRefusedCommandKeepsItsTargets(t *testing.T) {
	srv, _ := newServer(t)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/commands", strings.NewReader(`{"targets": ["UNKNOWN-UDID"], "request_type": "DeviceLock", "payload": {}}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error   string `json:"error"`
		Targets []struct {
			Target string `json:"target"`
			Queued bool   `json:"queued"`
			Error  string `json:"error"`
		} `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || body.Error == "" || len(body.Targets) != 1 || body.Targets[0].Target != "UNKNOWN-UDID" || body.Targets[0].Queued || body.Targets[0].Error == "" {
		t.Fatalf("%d %+v, want 400 with the refused target", resp.StatusCode, body)
	}
}
