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
func (s *Store) ListEnrollmentFailures(ctx context.Context, after string, limit int) (out []storage.EnrollmentFailure, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		out, err = decodeFailures(tx.Bucket(bucketEnrollFailures), after, limit)
		return err
	})
	return out, err
}

// bucketSCEPFailures: storage.SCEPFailureID -> JSON, at most
// storage.MaxSCEPFailures plus one per code from storage.OtherSources.
var bucketSCEPFailures = []byte("scep_failures")

func init() { registerBuckets(string(bucketSCEPFailures)) }

// RecordSCEPFailures folds batch into the stored aggregates in one write.
func (s *Store) RecordSCEPFailures(ctx context.Context, batch []storage.EnrollmentFailure) error {
	if err := storage.CheckSCEPFailures(batch); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	if len(batch) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSCEPFailures)
		kept, err := decodeFailures(b, "", 0)
		if err != nil {
			return err
		}
		put, del, err := storage.MergeSCEPFailures(kept, batch, func() (string, error) {
			seq, err := b.NextSequence()
			return storage.SCEPFailureID(seq), err
		})
		if err != nil {
			return err
		}
		for _, id := range del {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for i := range put {
			if err := putJSON(b, []byte(put[i].ID), &put[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListSCEPFailures returns aggregates in ID order after the given one.
func (s *Store) ListSCEPFailures(ctx context.Context, after string, limit int) (out []storage.EnrollmentFailure, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		out, err = decodeFailures(tx.Bucket(bucketSCEPFailures), after, limit)
		return err
	})
	return out, err
}

// decodeFailures reads failure records (or aggregates) in key order.
func decodeFailures(b *bolt.Bucket, after string, limit int) ([]storage.EnrollmentFailure, error) {
	var out []storage.EnrollmentFailure
	err := scanValues(b, nil, after, limit, func(v []byte) error {
		var f storage.EnrollmentFailure
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("decode enrollment failure: %w", err)
		}
		out = append(out, f)
		return nil
	})
	return out, err
}
