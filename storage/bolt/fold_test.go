package bolt

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// A database written before the case-folding index existed gets it built
// on open; two records that differ only in case are reported and kept,
// and from then on no third spelling can enroll.
func TestOpenBuildsDeviceFoldIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const upper, lower, other = "00008030-001A35E11E88802E", "00008030-001a35e11e88802e", "00008030-0000000000000ABC"
	// Written as an older release would have: plain records, no index.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bEnrollments))
		for _, id := range []string{upper, lower, other, other + ":user-1"} {
			dev, _, _ := strings.Cut(id, ":")
			if err := putJSON(b, []byte(id), &storage.Enrollment{ID: id, DeviceID: dev, Enrolled: true, CertHash: "cert-" + id}); err != nil {
				return err
			}
		}
		return tx.DeleteBucket([]byte(bDeviceFold))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Notes(); len(n) != 1 || !strings.Contains(n[0], upper) || !strings.Contains(n[0], lower) {
		t.Fatalf("Notes = %q, want one naming %s and %s", n, upper, lower)
	}
	for _, id := range []string{upper, lower} {
		if e, err := s.Enrollment(t.Context(), id); err != nil || e.ID != id {
			t.Errorf("record %s after reopen: %+v %v (records must stay as they were)", id, e, err)
		}
	}
	if e, err := s.Enrollment(t.Context(), strings.ToLower(other)); err != nil || e.ID != other {
		t.Errorf("Enrollment(lower-case %s) = %+v, %v", other, e, err)
	}
	rec := &storage.AuthenticateRecord{Enrollment: storage.Enrollment{ID: strings.ToLower(other), DeviceID: strings.ToLower(other), CertHash: "cert-new"}}
	if err := s.Authenticate(t.Context(), rec); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Authenticate of a lower-case copy after the index was built: %v, want ErrConflict", err)
	}
	// A third open finds the index in place and says nothing.
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.Notes(); len(n) != 0 {
		t.Errorf("Notes on a later open = %q", n)
	}
}
