package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// bucketEnrollFailures: 16 hex digits of the bucket's sequence -> JSON.
// The sequence is contiguous, so the record the bound pushes out is always
// the one MaxEnrollmentFailures before the new one.
var bucketEnrollFailures = []byte("enrollment_failures")

func init() { registerBuckets(string(bucketEnrollFailures)) }

func failureKey(seq uint64) []byte { return fmt.Appendf(nil, "%016x", seq) }

// RecordEnrollmentFailure stores f under the next sequence number and drops
// the record that falls out of the bound.
func (s *Store) RecordEnrollmentFailure(ctx context.Context, f *storage.EnrollmentFailure) error {
	if f == nil || f.Reason == "" {
		return errors.New("bolt: record enrollment failure: reason is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEnrollFailures)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		rec := *f
		rec.ID = string(failureKey(seq))
		if err := putJSON(b, []byte(rec.ID), &rec); err != nil {
			return err
		}
		if seq > storage.MaxEnrollmentFailures {
			if err := b.Delete(failureKey(seq - storage.MaxEnrollmentFailures)); err != nil {
				return err
			}
		}
		f.ID = rec.ID
		return nil
	})
}

// ListEnrollmentFailures returns failures oldest first after the given ID.
func (s *Store) ListEnrollmentFailures(ctx context.Context, after string, limit int) ([]storage.EnrollmentFailure, error) {
	var out []storage.EnrollmentFailure
	err := s.view(func(tx *bolt.Tx) error {
		return scanValues(tx.Bucket(bucketEnrollFailures), nil, after, limit, func(v []byte) error {
			var f storage.EnrollmentFailure
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("decode enrollment failure: %w", err)
			}
			out = append(out, f)
			return nil
		})
	})
	return out, err
}
