package bolt

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// A database written before the search index existed (or with an older
// version of it) gets the current one built on open, and the old version
// dropped; a third open changes nothing.
func TestOpenBuildsInventorySearchIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orchard.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Written as an older release would have: plain records, an old index.
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bInventory)
		for _, inv := range []storage.DeviceInventory{{DeviceID: "D1", DeviceName: "Hall iPad"}, {DeviceID: "D2", SerialNumber: "C02HALL"}, {DeviceID: "D3"}} {
			if err := putJSON(b, []byte(inv.DeviceID), &inv); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket([]byte("inventory_search.v0")); err != nil {
			return err
		}
		return tx.DeleteBucket(bInventorySearch)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := s.Notes(); len(n) != 1 || !strings.Contains(n[0], "indexed 3 device inventories") {
		t.Errorf("Notes = %q", n)
	}
	got, err := s.SearchInventory(t.Context(), "HALL", "", 0)
	if err != nil || len(got) != 2 || got[0].DeviceID != "D1" || got[1].DeviceID != "D2" {
		t.Errorf("search after the rebuild = %+v, %v", got, err)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("inventory_search.v0")) != nil {
			t.Error("the old index version is still there")
		}
		if k := tx.Bucket(bInventorySearch).Get([]byte("D1")); string(k) != "hall ipad\n\n\nd1" {
			t.Errorf("key of D1 = %q", k)
		}
		return nil
	})
	s.Close()
	if s, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.Notes(); len(n) != 0 {
		t.Errorf("third open: Notes = %q", n)
	}
}
