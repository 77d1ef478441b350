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
// snapshot. SQL cannot read a field of a document that holds U+0000
// anywhere (which a device may report, see TestDeviceStringsWithNUL): the
// few such documents are decoded and counted here, the rest in SQL.
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

// holdsNUL is true for the documents that hold an escaped U+0000 (or an
// escaped backslash before "u0000", which decoding tells apart). Queries
// test it before reading any field, in a CASE where it matters: SQL may
// order an AND's operands as it likes.
const holdsNUL = `strpos(doc::text, '\u0000') > 0`

func countInventories(ctx context.Context, tx pgx.Tx, out *storage.FleetCounts) error {
	add := func(platform, version string, n int) {
		out.Platforms[platform] += n
		if version != "" {
			out.OSVersions[storage.PlatformVersion{Platform: platform, OSVersion: version}] += n
		}
	}
	rows, err := tx.Query(ctx, `SELECT coalesce(doc->>'platform', ''), coalesce(doc->>'os_version', ''), count(*) FROM inventory
		WHERE CASE WHEN `+holdsNUL+` THEN false ELSE coalesce(doc->>'retired', '') <> 'true' END GROUP BY 1, 2`)
	if err != nil {
		return err
	}
	var platform, version string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&platform, &version, &n}, func() error { add(platform, version, n); return nil })
	if err != nil {
		return err
	}
	return decodeEach(ctx, tx, "SELECT doc FROM inventory WHERE "+holdsNUL, func(inv *struct {
		Platform  string `json:"platform"`
		OSVersion string `json:"os_version"`
		Retired   bool   `json:"retired"`
	}) {
		if !inv.Retired {
			add(inv.Platform, inv.OSVersion, 1)
		}
	})
}

// countCheckIns counts the enrolled devices seen since each cutoff (a
// shorter window's devices are in the longer ones' too) and never, in one
// pass, and takes the buckets apart.
func countCheckIns(ctx context.Context, tx pgx.Tx, now time.Time, within []time.Duration, out *storage.FleetCounts) error {
	const devices = "FROM enrollments WHERE enrolled AND id = device_id"
	var sql strings.Builder
	sql.WriteString("SELECT count(*), count(*) FILTER (WHERE seen IS NULL)")
	args := []any{}
	for _, w := range within {
		args = append(args, now.Add(-w))
		fmt.Fprintf(&sql, ", count(*) FILTER (WHERE seen > $%d)", len(args))
	}
	sql.WriteString(" FROM (SELECT (doc->>'last_seen')::timestamptz AS seen " + devices + " AND NOT " + holdsNUL + ") AS d")
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
	return decodeEach(ctx, tx, "SELECT doc "+devices+" AND "+holdsNUL, func(e *struct {
		LastSeen time.Time `json:"last_seen"`
	}) {
		out.Add(now, e.LastSeen, within)
	})
}

// decodeEach decodes every document a query returns into a T for fn.
func decodeEach[T any](ctx context.Context, tx pgx.Tx, sql string, fn func(*T)) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode a document: %w", err)
		}
		fn(&v)
		return nil
	})
	return err
}
