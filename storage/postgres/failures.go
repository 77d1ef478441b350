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
