package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

// SearchInventory implements storage.InventorySearch: the database
// narrows by the search column (migration 0016, under a trigram index),
// and MatchesText decides, so the rule is storage's on every backend.
func (s *Store) SearchInventory(ctx context.Context, text, after string, limit int) ([]storage.DeviceInventory, error) {
	pattern := searchPattern(text)
	var out []storage.DeviceInventory
	for {
		// Planned for this pattern each time (not a cached generic plan):
		// a pattern few devices match reads the trigram index, one most
		// match walks the primary key until the page is full.
		page, err := listDocs[storage.DeviceInventory](ctx, s.pool, `SELECT doc FROM inventory
			WHERE device_id > $1 AND (search LIKE $2 OR search IS NULL) ORDER BY device_id LIMIT $3`,
			pgx.QueryExecModeExec, after, pattern, limitArg(limit))
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

// inventoryColumns are the values of inventory's columns but doc for inv,
// in table order (migration 0016).
func inventoryColumns(inv *storage.DeviceInventory) []any {
	return []any{inv.DeviceID, searchColumn(inv), []byte(inv.Platform), []byte(inv.OSVersion), inv.Retired}
}

// searchColumn is inv's search key as PostgreSQL text, which cannot hold
// NUL: each becomes a space, which searchPattern's any-character stands for.
func searchColumn(inv *storage.DeviceInventory) string {
	return strings.ReplaceAll(inv.SearchKey(), "\x00", " ")
}

// searchPattern is a LIKE pattern that the search column of every record
// that MatchesText(text) matches: the needle, with NUL as any character.
// Text the key cannot answer for narrows nothing.
func searchPattern(text string) string {
	needle, ok := storage.SearchNeedle(text)
	if !ok {
		return "%"
	}
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range needle {
		switch r {
		case 0:
			b.WriteByte('_')
		case '%', '_', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('%')
	return b.String()
}

// fillInventoryColumns writes the columns of migration 0016 for the
// inventories that have no search key (written before it), a page at a
// time; replicas opening at once write the same values.
func (s *Store) fillInventoryColumns(ctx context.Context) error {
	after := ""
	for {
		page, err := listDocs[storage.DeviceInventory](ctx, s.pool,
			"SELECT doc FROM inventory WHERE search IS NULL AND device_id > $1 ORDER BY device_id LIMIT 1000", after)
		if err != nil {
			return fmt.Errorf("read inventories without a search key: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		var batch pgx.Batch
		for i := range page {
			after = page[i].DeviceID
			batch.Queue("UPDATE inventory SET search = $2, platform = $3, os_version = $4, retired = $5 WHERE device_id = $1 AND search IS NULL",
				inventoryColumns(&page[i])...)
		}
		if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
			return fmt.Errorf("write search keys: %w", err)
		}
	}
}
