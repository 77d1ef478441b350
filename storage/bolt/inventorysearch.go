package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// bInventorySearch holds every inventory's storage.SearchKey, written in
// the transaction that writes the inventory. The version in its name
// changes with the key's format: Open builds the new one from the
// inventories and drops the old (see registerIndex).
var bInventorySearch = []byte("inventory_search.v1") // channel -> SearchKey

func init() { registerIndex(string(bInventorySearch), buildInventorySearch) }

// buildInventorySearch fills the search index from the inventories of a
// database written before it existed.
func buildInventorySearch(tx *bolt.Tx) ([]string, error) {
	ix := tx.Bucket(bInventorySearch)
	n := 0
	err := tx.Bucket(bInventory).ForEach(func(k, v []byte) error {
		var inv storage.DeviceInventory
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode inventory %s: %w", k, err)
		}
		n++
		return ix.Put(k, []byte(inv.SearchKey()))
	})
	if err != nil || n == 0 {
		return nil, err
	}
	return []string{fmt.Sprintf("indexed %d device inventories for search", n)}, nil
}

// indexInventory keeps inv's search key current; the key rarely changes,
// so most inventory writes only read it.
func indexInventory(tx *bolt.Tx, inv *storage.DeviceInventory) error {
	ix, k, sk := tx.Bucket(bInventorySearch), []byte(inv.DeviceID), []byte(inv.SearchKey())
	if old := ix.Get(k); old != nil && bytes.Equal(old, sk) {
		return nil
	}
	return ix.Put(k, sk)
}

// SearchInventory implements storage.InventorySearch: it walks the search
// keys in device ID order and decodes only the inventories whose key
// holds the folded text, where MatchesText decides. Text the keys cannot
// answer for (see storage.SearchNeedle) decodes every inventory.
func (s *Store) SearchInventory(ctx context.Context, text, after string, limit int) ([]storage.DeviceInventory, error) {
	needle, indexed := storage.SearchNeedle(text)
	nb := []byte(needle)
	walk := bInventorySearch
	if !indexed {
		walk = bInventory
	}
	var out []storage.DeviceInventory
	err := s.view(func(tx *bolt.Tx) error {
		records := tx.Bucket(bInventory)
		c := tx.Bucket(walk).Cursor()
		k, v := c.Seek([]byte(after))
		n := 0
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if after != "" && string(k) == after {
				continue
			}
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if indexed {
				if !bytes.Contains(v, nb) {
					continue
				}
				if v = records.Get(k); v == nil {
					return fmt.Errorf("search index names inventory %s, which is missing", k)
				}
			}
			var inv storage.DeviceInventory
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode inventory %s: %w", k, err)
			}
			if inv.MatchesText(text) {
				out = append(out, inv)
			}
		}
		return nil
	})
	return out, err
}
