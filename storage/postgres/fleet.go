package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

// CountFleet implements storage.FleetCounter with aggregate queries in one
// snapshot, over the columns of migration 0016 rather than the documents.
func (s *Store) CountFleet(ctx context.Context, now time.Time, within []time.Duration) (*storage.FleetCounts, error) {
	out := storage.NewFleetCounts(within)
	err := s.read(ctx, func(tx pgx.Tx) error {
		if err := countInventories(ctx, tx, out); err != nil {
			return fmt.Errorf("count inventories: %w", err)
		}
		if err := countCheckIns(ctx, tx, now, within, out); err != nil {
			return fmt.Errorf("count check-ins: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: count fleet: %w", err)
	}
	return out, nil
}

// countInventories groups the inventories by their platform and version
// columns, and decodes the few without them (no search key: written by a
// replica not yet upgraded since this one opened the database).
func countInventories(ctx context.Context, tx pgx.Tx, out *storage.FleetCounts) error {
	add := func(platform, version string, n int) {
		out.Platforms[platform] += n
		if version != "" {
			out.OSVersions[storage.PlatformVersion{Platform: platform, OSVersion: version}] += n
		}
	}
	rows, err := tx.Query(ctx, `SELECT platform, os_version, count(*) FROM inventory
		WHERE search IS NOT NULL AND retired IS NOT TRUE GROUP BY 1, 2`)
	if err != nil {
		return err
	}
	var platform, version []byte
	var n int
	_, err = pgx.ForEachRow(rows, []any{&platform, &version, &n}, func() error { add(string(platform), string(version), n); return nil })
	if err != nil {
		return err
	}
	rows, err = tx.Query(ctx, "SELECT doc FROM inventory WHERE search IS NULL")
	if err != nil {
		return err
	}
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		var inv storage.DeviceInventory
		if err := json.Unmarshal(raw, &inv); err != nil {
			return fmt.Errorf("decode an inventory: %w", err)
		}
		if !inv.Retired {
			add(inv.Platform, inv.OSVersion, 1)
		}
		return nil
	})
	return err
}

// countCheckIns counts the enrolled devices seen since each cutoff (a
// shorter window's devices are in the longer ones' too) and never, in one
// pass, and takes the buckets apart.
func countCheckIns(ctx context.Context, tx pgx.Tx, now time.Time, within []time.Duration, out *storage.FleetCounts) error {
	var sql strings.Builder
	sql.WriteString("SELECT count(*), count(*) FILTER (WHERE last_seen IS NULL)")
	args := []any{}
	for _, w := range within {
		args = append(args, now.Add(-w))
		fmt.Fprintf(&sql, ", count(*) FILTER (WHERE last_seen > $%d)", len(args))
	}
	sql.WriteString(" FROM enrollments WHERE enrolled AND id = device_id")
	counts := make([]int, 2+len(within))
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	if err := tx.QueryRow(ctx, sql.String(), args...).Scan(dest...); err != nil {
		return err
	}
	out.Enrolled, out.Never = counts[0], counts[1]
	prev := 0
	for i := range within {
		out.Seen[i] = counts[2+i] - prev
		prev = counts[2+i]
	}
	out.Seen[len(within)] = out.Enrolled - out.Never - prev
	return nil
}
