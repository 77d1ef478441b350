package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.CommandLog = (*Store)(nil)

// logScan is the part of the command log one ListCommands call examines:
// at most $2 targets below the cursor $1, newest first, on the targets_seq
// index; $3 (when set) ends it at targets queued before Since's slack.
const logScan = `SELECT uuid, channel, doc, (doc->>'seq')::bigint AS seq FROM targets
	WHERE (doc->>'seq')::bigint < $1 AND ($3::timestamptz IS NULL OR (doc->>'queued_at')::timestamptz >= $3)
	ORDER BY (doc->>'seq')::bigint DESC LIMIT $2`

// ListCommands implements storage.CommandLog.
func (s *Store) ListCommands(ctx context.Context, f storage.CommandFilter) ([]storage.ChannelCommand, uint64, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	before := int64(math.MaxInt64)
	if f.Before > 0 && f.Before <= math.MaxInt64 {
		before = int64(f.Before)
	}
	var stop, since, until *time.Time
	if !f.Since.IsZero() {
		at := f.Since.Add(-storage.SinceSlack)
		stop, since = &at, &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	var out []storage.ChannelCommand
	var next uint64
	err := s.read(ctx, func(tx pgx.Tx) error {
		out, next = out[:0], 0
		rows, err := tx.Query(ctx, `SELECT s.seq, c.doc, s.doc, r.doc FROM (`+logScan+`) s
			JOIN commands c ON c.uuid = s.uuid
			LEFT JOIN LATERAL (SELECT doc FROM results WHERE uuid = s.uuid AND channel = s.channel ORDER BY n DESC LIMIT 1) r ON true
			WHERE ($4 = '' OR c.doc->>'request_type' = $4) AND ($5 = '' OR s.doc->>'status' = $5)
				AND ($6 = '' OR c.doc->>'sender' = $6 OR starts_with(c.doc->>'sender', $6 || '`+storage.SenderTokenSep+`'))
				AND ($7::timestamptz IS NULL OR (c.doc->>'created_at')::timestamptz >= $7)
				AND ($8::timestamptz IS NULL OR (c.doc->>'created_at')::timestamptz < $8)
			ORDER BY s.seq DESC LIMIT $9`,
			before, storage.CommandLogScan, stop, f.RequestType, string(f.Status), f.Sender, since, until, limit+1)
		if err != nil {
			return fmt.Errorf("postgres: command log: %w", err)
		}
		defer rows.Close()
		var lastSeq int64
		for rows.Next() {
			var seq int64
			var cdoc, tdoc, rdoc []byte
			if err := rows.Scan(&seq, &cdoc, &tdoc, &rdoc); err != nil {
				return err
			}
			if len(out) == limit {
				// One more matched: the next page starts below the last one kept.
				next = uint64(lastSeq)
				break
			}
			lastSeq = seq
			var cc storage.ChannelCommand
			if err := json.Unmarshal(cdoc, &cc.Command); err != nil {
				return fmt.Errorf("postgres: decode command: %w", err)
			}
			if err := json.Unmarshal(tdoc, &cc.Target); err != nil {
				return fmt.Errorf("postgres: decode target: %w", err)
			}
			if rdoc != nil {
				var r storage.Result
				if err := json.Unmarshal(rdoc, &r); err != nil {
					return fmt.Errorf("postgres: decode result: %w", err)
				}
				cc.Result = &r
			}
			out = append(out, cc)
		}
		rows.Close()
		if err := rows.Err(); err != nil || next != 0 {
			return err
		}
		// Fewer matched than a page: more are left only when the scan
		// stopped at its bound.
		var n int
		var oldest *int64
		if err := tx.QueryRow(ctx, `SELECT count(*), min(seq) FROM (`+logScan+`) s`, before, storage.CommandLogScan, stop).Scan(&n, &oldest); err != nil {
			return fmt.Errorf("postgres: command log scan: %w", err)
		}
		if n == storage.CommandLogScan && oldest != nil {
			next = uint64(*oldest)
		}
		return nil
	})
	return out, next, err
}
