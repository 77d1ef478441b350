package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.EnrollmentSessionStore = (*Store)(nil)

// RecordEnrollmentStage implements storage.EnrollmentSessionStore.
func (s *Store) RecordEnrollmentStage(ctx context.Context, id string, st storage.EnrollmentStage, facts storage.EnrollmentFacts) (*storage.EnrollmentSession, error) {
	if id == "" {
		return nil, errors.New("postgres: record enrollment stage: empty session ID")
	}
	var out *storage.EnrollmentSession
	err := s.write(ctx, func(tx pgx.Tx) error {
		// Make the row first so two first stages at once serialise on it.
		first := &storage.EnrollmentSession{ID: id, StartedAt: st.At}
		b, err := jsonOf(first)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO enrollment_sessions (id, started_at, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", id, st.At, b); err != nil {
			return err
		}
		sess := &storage.EnrollmentSession{}
		if err := getDoc(ctx, tx, sess, "SELECT doc FROM enrollment_sessions WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		sess.Merge(facts)
		sess.AddStage(st)
		out = sess
		return putDoc(ctx, tx, sess, "UPDATE enrollment_sessions SET doc = $2 WHERE id = $1", id)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EnrollmentSession implements storage.EnrollmentSessionStore.
func (s *Store) EnrollmentSession(ctx context.Context, id string) (*storage.EnrollmentSession, error) {
	var sess storage.EnrollmentSession
	if err := getDoc(ctx, s.pool, &sess, "SELECT doc FROM enrollment_sessions WHERE id = $1", id); err != nil {
		return nil, fmt.Errorf("enrollment session %q: %w", id, err)
	}
	return &sess, nil
}

// ListEnrollmentSessions implements storage.EnrollmentSessionStore.
func (s *Store) ListEnrollmentSessions(ctx context.Context, since time.Time, after string, limit int) ([]storage.EnrollmentSession, error) {
	at, id := since, ""
	if after != "" {
		ns, aid, ok := strings.Cut(after, "/")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil || n < 0 || aid == "" {
			return nil, fmt.Errorf("postgres: bad session cursor %q", after)
		}
		if t := time.Unix(0, n); !t.Before(since) {
			at, id = t, aid
		}
	}
	// (started_at, id) > (at, id) with id "" is started_at >= at for every
	// real (non-empty) ID.
	return listDocs[storage.EnrollmentSession](ctx, s.pool, `SELECT doc FROM enrollment_sessions
		WHERE (started_at, id) > ($1, $2::text) ORDER BY started_at, id LIMIT $3`, at, id, limitArg(limit))
}

// DeleteEnrollmentSessions implements storage.EnrollmentSessionStore.
func (s *Store) DeleteEnrollmentSessions(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM enrollment_sessions WHERE started_at < $1", before)
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}
