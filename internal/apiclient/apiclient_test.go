package apiclient_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/orchardmdm/orchard/internal/apiclient"
)

// TestCall runs the client against a real TLS server on loopback that
// checks what a call sends and answers like the admin API.
func TestCall(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer k3y" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content type %q", r.Header.Get("Content-Type"))
			}
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "no such device"})
		default:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("not json"))
		}
	}))
	defer ts.Close()
	c := &apiclient.Client{BaseURL: ts.URL, Key: "k3y", HTTP: ts.Client()}
	ctx := t.Context()

	got, err := c.Call(ctx, http.MethodPost, "/echo", map[string]int{"n": 1})
	if err != nil || string(got) != `{"n":1}` {
		t.Fatalf("echo = %q, %v", got, err)
	}

	var se *apiclient.StatusError
	_, err = c.Call(ctx, http.MethodGet, "/missing", nil)
	if !errors.As(err, &se) || se.Code != 404 || se.Reason != "no such device" {
		t.Fatalf("404 = %v", err)
	}
	if want := "GET /missing: no such device (404)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, err = c.Call(ctx, http.MethodGet, "/broken", nil)
	if !errors.As(err, &se) || se.Code != 500 || se.Reason != "" || err.Error() != "GET /broken: status 500" {
		t.Fatalf("500 = %v", err)
	}

	anon := &apiclient.Client{BaseURL: ts.URL, HTTP: ts.Client()}
	if code, _, err := anon.Do(ctx, http.MethodGet, "/echo", nil); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("no key: %d, %v; want 401 (no Authorization header sent)", code, err)
	}
}
