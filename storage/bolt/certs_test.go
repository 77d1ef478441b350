package bolt

import (
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

func openScepTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "orchard.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCerts(t *testing.T) {
	storagetest.RunCerts(t, func(t *testing.T) storage.CertStore { return openScepTestStore(t) })
}

func TestEnroll(t *testing.T) {
	storagetest.RunEnroll(t, func(t *testing.T) storage.EnrollStore { return openScepTestStore(t) })
}
