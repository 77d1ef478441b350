package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bEnrollSessions        = []byte("enrollment_sessions")          // id -> EnrollmentSession
	bEnrollSessionsByStart = []byte("enrollment_sessions_by_start") // started(8) \x00 id -> empty
)

func init() {
	registerBuckets(string(bEnrollSessions), string(bEnrollSessionsByStart))
}

var _ storage.EnrollmentSessionStore = (*Store)(nil)

func startKey(t time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
	return append(append(k, sep), id...)
}

// RecordEnrollmentStage implements storage.EnrollmentSessionStore.
func (s *Store) RecordEnrollmentStage(ctx context.Context, id string, st storage.EnrollmentStage, facts storage.EnrollmentFacts) (*storage.EnrollmentSession, error) {
	if err := dirName("session", id); err != nil {
		return nil, err
	}
	var out *storage.EnrollmentSession
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bEnrollSessions)
		sess := &storage.EnrollmentSession{}
		err := getJSON(b, []byte(id), sess)
		if errors.Is(err, storage.ErrNotFound) {
			sess = &storage.EnrollmentSession{ID: id, StartedAt: st.At}
			if err := tx.Bucket(bEnrollSessionsByStart).Put(startKey(st.At, id), []byte{}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		sess.Merge(facts)
		sess.AddStage(st)
		out = sess
		return putJSON(b, []byte(id), sess)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EnrollmentSession implements storage.EnrollmentSessionStore.
func (s *Store) EnrollmentSession(ctx context.Context, id string) (*storage.EnrollmentSession, error) {
	var sess storage.EnrollmentSession
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bEnrollSessions), []byte(id), &sess) }); err != nil {
		return nil, fmt.Errorf("enrollment session %q: %w", id, err)
	}
	return &sess, nil
}

// parseSessionCursor reads an EnrollmentSession.Cursor.
func parseSessionCursor(c string) (time.Time, string, bool) {
	ns, id, ok := strings.Cut(c, "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || n < 0 || id == "" {
		return time.Time{}, "", false
	}
	return time.Unix(0, n), id, true
}

// ListEnrollmentSessions implements storage.EnrollmentSessionStore.
func (s *Store) ListEnrollmentSessions(ctx context.Context, since time.Time, after string, limit int) ([]storage.EnrollmentSession, error) {
	start := startKey(since, "")
	var skip []byte
	if after != "" {
		t, id, ok := parseSessionCursor(after)
		if !ok {
			return nil, fmt.Errorf("bolt: bad session cursor %q", after)
		}
		if k := startKey(t, id); string(k) > string(start) {
			start, skip = k, k
		}
	}
	var out []storage.EnrollmentSession
	err := s.view(func(tx *bolt.Tx) error {
		sessions := tx.Bucket(bEnrollSessions)
		c := tx.Bucket(bEnrollSessionsByStart).Cursor()
		for k, _ := c.Seek(start); k != nil; k, _ = c.Next() {
			if skip != nil && string(k) == string(skip) {
				continue
			}
			if limit > 0 && len(out) >= limit {
				break
			}
			var sess storage.EnrollmentSession
			if err := getJSON(sessions, k[9:], &sess); err != nil {
				return err
			}
			out = append(out, sess)
		}
		return nil
	})
	return out, err
}

// DeleteEnrollmentSessions implements storage.EnrollmentSessionStore.
func (s *Store) DeleteEnrollmentSessions(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		idx, sessions := tx.Bucket(bEnrollSessionsByStart), tx.Bucket(bEnrollSessions)
		end := startKey(before, "")
		var keys [][]byte
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && string(k) < string(end); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := idx.Delete(k); err != nil {
				return err
			}
			if err := sessions.Delete(k[9:]); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
