package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.CommandHistory = (*Store)(nil)

// ChannelCommands implements storage.CommandHistory, on the
// targets_channel_seq index; the latest result comes from the results
// primary key.
func (s *Store) ChannelCommands(ctx context.Context, channel string, before uint64, limit int) ([]storage.ChannelCommand, error) {
	if limit <= 0 {
		limit = 100
	}
	bound := int64(math.MaxInt64)
	if before > 0 && before <= math.MaxInt64 {
		bound = int64(before)
	}
	rows, err := s.pool.Query(ctx, `SELECT c.doc, t.doc, r.doc FROM targets t
		JOIN commands c ON c.uuid = t.uuid
		LEFT JOIN LATERAL (SELECT doc FROM results WHERE uuid = t.uuid AND channel = t.channel ORDER BY n DESC LIMIT 1) r ON true
		WHERE t.channel = $1 AND (t.doc->>'seq')::bigint < $2
		ORDER BY (t.doc->>'seq')::bigint DESC LIMIT $3`, channel, bound, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: channel commands: %w", err)
	}
	defer rows.Close()
	var out []storage.ChannelCommand
	for rows.Next() {
		var cdoc, tdoc, rdoc []byte
		if err := rows.Scan(&cdoc, &tdoc, &rdoc); err != nil {
			return nil, err
		}
		var cc storage.ChannelCommand
		if err := json.Unmarshal(cdoc, &cc.Command); err != nil {
			return nil, fmt.Errorf("postgres: decode command: %w", err)
		}
		if err := json.Unmarshal(tdoc, &cc.Target); err != nil {
			return nil, fmt.Errorf("postgres: decode target: %w", err)
		}
		if rdoc != nil {
			var r storage.Result
			if err := json.Unmarshal(rdoc, &r); err != nil {
				return nil, fmt.Errorf("postgres: decode result: %w", err)
			}
			cc.Result = &r
		}
		out = append(out, cc)
	}
	return out, rows.Err()
}
