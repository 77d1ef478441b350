package server_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// TestConfigOpenStore checks that the server keeps its records in the store
// Config.OpenStore opens, not in a bbolt file of its own choosing.
func TestConfigOpenStore(t *testing.T) {
	var gotDir string
	open := func(dataDir string) (storage.Store, error) {
		gotDir = dataDir
		return bolt.Open(filepath.Join(dataDir, "elsewhere.db"), bolt.Options{})
	}
	s := servertest.Start(t, servertest.WithStore(open))
	if gotDir != s.Dir {
		t.Fatalf("opener got data dir %q, want %q", gotDir, s.Dir)
	}
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	if _, err := s.Store().Enrollment(t.Context(), dev.UDID); err != nil {
		t.Fatalf("enrollment not in the opened store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "orchard.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the default orchard.db was created too: %v", err)
	}
}

func TestConfigOpenStoreError(t *testing.T) {
	boom := errors.New("backend unreachable")
	_, err := server.New(server.Config{
		DataDir:   t.TempDir(),
		Logger:    slog.New(slog.DiscardHandler),
		OpenStore: func(string) (storage.Store, error) { return nil, boom },
	})
	if !errors.Is(err, boom) {
		t.Fatalf("New = %v, want the opener's error", err)
	}
}
