package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.EnrollmentFailureStore = (*Store)(nil)

// RecordEnrollmentFailure stores f under the next sequence number and drops
// what falls out of the bound: by rank, not by number, since a sequence
// can skip numbers (a retried transaction's nextval is not given back).
func (s *Store) RecordEnrollmentFailure(ctx context.Context, f *storage.EnrollmentFailure) error {
	if f == nil || f.Reason == "" {
		return errors.New("postgres: record enrollment failure: reason is required")
	}
	var id string
	err := s.write(ctx, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, "SELECT nextval('enrollment_failure_seq')").Scan(&seq); err != nil {
			return err
		}
		rec := *f
		rec.ID = fmt.Sprintf("%016x", seq)
		if err := putDoc(ctx, tx, &rec, "INSERT INTO enrollment_failures (id, doc) VALUES ($1, $2)", rec.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM enrollment_failures WHERE id <= (
			SELECT id FROM enrollment_failures ORDER BY id DESC OFFSET $1 LIMIT 1)`, storage.MaxEnrollmentFailures); err != nil {
			return err
		}
		id = rec.ID
		return nil
	})
	if err != nil {
		return err
	}
	f.ID = id
	return nil
}

// ListEnrollmentFailures returns failures oldest first after the given ID.
func (s *Store) ListEnrollmentFailures(ctx context.Context, after string, limit int) ([]storage.EnrollmentFailure, error) {
	return listDocs[storage.EnrollmentFailure](ctx, s.pool, "SELECT doc FROM enrollment_failures WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
}

// RecordSCEPFailures folds batch into the stored aggregates in one write.
// The table lock keeps two replicas' folds from racing past the bound; a
// fold is rare (a batch every few seconds at most), so it costs nothing.
func (s *Store) RecordSCEPFailures(ctx context.Context, batch []storage.EnrollmentFailure) error {
	if err := storage.CheckSCEPFailures(batch); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if len(batch) == 0 {
		return nil
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE scep_failures IN EXCLUSIVE MODE"); err != nil {
			return err
		}
		kept, err := listDocs[storage.EnrollmentFailure](ctx, tx, "SELECT doc FROM scep_failures ORDER BY id")
		if err != nil {
			return err
		}
		put, del, err := storage.MergeSCEPFailures(kept, batch, func() (string, error) {
			var seq int64
			err := tx.QueryRow(ctx, "SELECT nextval('scep_failure_seq')").Scan(&seq)
			return storage.SCEPFailureID(uint64(seq)), err
		})
		if err != nil {
			return err
		}
		if len(del) > 0 {
			if _, err := tx.Exec(ctx, "DELETE FROM scep_failures WHERE id = ANY($1)", del); err != nil {
				return err
			}
		}
		for i := range put {
			if err := putDoc(ctx, tx, &put[i], `INSERT INTO scep_failures (id, doc) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc`, put[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListSCEPFailures returns aggregates in ID order after the given one.
func (s *Store) ListSCEPFailures(ctx context.Context, after string, limit int) ([]storage.EnrollmentFailure, error) {
	return listDocs[storage.EnrollmentFailure](ctx, s.pool, "SELECT doc FROM scep_failures WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
}
