package bolt

import (
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

func TestDEPConformance(t *testing.T) {
	storagetest.RunDEP(t, func(t *testing.T) storage.DEPStore {
		s, err := Open(filepath.Join(t.TempDir(), "orchard.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
