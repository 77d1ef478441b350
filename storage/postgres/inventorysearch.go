package postgres

import (
	"context"
	"fmt"

	"github.com/orchardmdm/orchard/storage"
)

// SearchInventory implements storage.InventorySearch: the database
// narrows by lower-case substring, and MatchesText decides, so the rule
// is storage's on every backend.
func (s *Store) SearchInventory(ctx context.Context, text, after string, limit int) ([]storage.DeviceInventory, error) {
	// lower() folds ASCII whatever the database's locale; other text is
	// matched by MatchesText alone ($2 = '' narrows nothing).
	narrow := text
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			narrow = ""
			break
		}
	}
	var out []storage.DeviceInventory
	for {
		page, err := listDocs[storage.DeviceInventory](ctx, s.pool, `SELECT doc FROM inventory WHERE device_id > $1
			AND ($2 = '' OR strpos(lower(coalesce(doc->>'device_name', '')), lower($2)) > 0
				OR strpos(lower(coalesce(doc->>'serial_number', '')), lower($2)) > 0
				OR strpos(lower(coalesce(doc->>'udid', '')), lower($2)) > 0
				OR strpos(lower(device_id), lower($2)) > 0)
			ORDER BY device_id LIMIT $3`, after, narrow, limitArg(limit))
		if err != nil {
			return nil, fmt.Errorf("postgres: search inventory: %w", err)
		}
		for i := range page {
			after = page[i].DeviceID
			if page[i].MatchesText(text) {
				out = append(out, page[i])
			}
		}
		if limit > 0 && len(out) >= limit {
			return out[:limit], nil
		}
		if limit <= 0 || len(page) < limit {
			return out, nil
		}
	}
}
