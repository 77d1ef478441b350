package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// CountFleet implements storage.FleetCounter in one read transaction,
// reading only the members it counts (topFields).
func (s *Store) CountFleet(ctx context.Context, now time.Time, within []time.Duration) (*storage.FleetCounts, error) {
	out := storage.NewFleetCounts(within)
	fields := make([][]byte, 3)
	n := 0
	each := func(tx *bolt.Tx, bucket string, keys []string, fn func(k []byte) error) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := topFields(v, keys, fields); err != nil {
				return fmt.Errorf("read %s %s: %w", bucket, k, err)
			}
			if err := fn(k); err != nil {
				return fmt.Errorf("read %s %s: %w", bucket, k, err)
			}
			return nil
		})
	}
	err := s.view(func(tx *bolt.Tx) error {
		err := each(tx, string(bInventory), []string{"platform", "os_version", "retired"}, func([]byte) error {
			if string(fields[2]) == "true" {
				return nil
			}
			platform, err := rawString(fields[0])
			if err != nil {
				return err
			}
			version, err := rawString(fields[1])
			if err != nil {
				return err
			}
			out.Platforms[platform]++
			if version != "" {
				out.OSVersions[storage.PlatformVersion{Platform: platform, OSVersion: version}]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return each(tx, bEnrollments, []string{"enrolled", "last_seen"}, func(k []byte) error {
			if string(fields[0]) != "true" || bytes.Contains(k, []byte(mdm.ChannelSeparator)) {
				return nil // not enrolled, or a user channel
			}
			seen, err := rawTime(fields[1])
			if err != nil {
				return err
			}
			out.Add(now, seen, within)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: count fleet: %w", err)
	}
	return out, nil
}
