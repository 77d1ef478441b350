package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// A new key written to <data>/api-key takes over at ReloadAPIKey (serve's
// SIGHUP) while serving: the old key gets 401 from then on. A key file too
// short to be a key leaves the current one in place.
func TestReloadAPIKey(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	old := s.APIKey()
	status := func(key string) int {
		t.Helper()
		c := &apiclient.Client{BaseURL: s.URL, Key: key, HTTP: s.Client}
		code, _, err := c.Do(ctx, http.MethodGet, "/v1/devices", nil)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	const fresh = "a-brand-new-admin-key-0123456789"
	path := filepath.Join(s.Dir, "api-key")
	if err := os.WriteFile(path, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if status(fresh) != http.StatusUnauthorized {
		t.Fatal("the new key works before the reload")
	}
	if err := s.ReloadAPIKey(); err != nil {
		t.Fatal(err)
	}
	if got := status(fresh); got != http.StatusOK {
		t.Errorf("new key after reload: %d", got)
	}
	if got := status(old); got != http.StatusUnauthorized {
		t.Errorf("old key after reload: %d, want 401", got)
	}
	if s.APIKey() != fresh {
		t.Error("APIKey() still reports the old key")
	}

	os.WriteFile(path, []byte("short\n"), 0o600)
	if err := s.ReloadAPIKey(); err == nil {
		t.Error("a too short key was taken")
	}
	os.Remove(path)
	if err := s.ReloadAPIKey(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if got := status(fresh); got != http.StatusOK {
		t.Errorf("after refused reloads the key in place answers %d", got)
	}
}
