package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// CountFleet implements storage.FleetCounter in one read transaction,
// decoding only the fields it counts.
func (s *Store) CountFleet(ctx context.Context, now time.Time, within []time.Duration) (*storage.FleetCounts, error) {
	out := storage.NewFleetCounts(within)
	err := s.view(func(tx *bolt.Tx) error {
		n := 0
		err := tx.Bucket(bInventory).ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var inv struct {
				Platform  string `json:"platform"`
				OSVersion string `json:"os_version"`
				Retired   bool   `json:"retired"`
			}
			if err := json.Unmarshal(v, &inv); err != nil {
				return fmt.Errorf("decode inventory %s: %w", k, err)
			}
			if inv.Retired {
				return nil
			}
			out.Platforms[inv.Platform]++
			if inv.OSVersion != "" {
				out.OSVersions[storage.PlatformVersion{Platform: inv.Platform, OSVersion: inv.OSVersion}]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bEnrollments)).ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if bytes.Contains(k, []byte(mdm.ChannelSeparator)) {
				return nil // a user channel
			}
			var e struct {
				Enrolled bool      `json:"enrolled"`
				LastSeen time.Time `json:"last_seen"`
			}
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode enrollment %s: %w", k, err)
			}
			if e.Enrolled {
				out.Add(now, e.LastSeen, within)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: count fleet: %w", err)
	}
	return out, nil
}
