package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// SearchInventory implements storage.InventorySearch. When the text is
// plain ASCII (letters, digits, space and . - _ :), a record whose JSON
// does not hold it in any case cannot match and is skipped undecoded; JSON
// writes those characters as they are. Other text decodes every record.
func (s *Store) SearchInventory(ctx context.Context, text, after string, limit int) ([]storage.DeviceInventory, error) {
	needle, plain := asciiLower(text)
	var out []storage.DeviceInventory
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bInventory).Cursor()
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
			if plain && !containsLowerASCII(v, needle) {
				continue
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

// asciiLower lowers text when every byte is one the prefilter may use.
func asciiLower(text string) ([]byte, bool) {
	out := make([]byte, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			out[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == ' ', c == '.', c == '-', c == '_', c == ':':
			out[i] = c
		default:
			return nil, false
		}
	}
	return out, len(out) > 0
}

// containsLowerASCII tells whether hay holds needle (already lower case),
// ignoring ASCII case, without allocating.
func containsLowerASCII(hay, needle []byte) bool {
	n := len(needle)
	for i := 0; i+n <= len(hay); i++ {
		j := 0
		for ; j < n; j++ {
			c := hay[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
