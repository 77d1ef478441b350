package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// Web sessions by kind, a zero byte and the raw SHA-256 of the session id.
var bucketWebSessions = []byte("web_sessions")

func init() { registerBuckets(string(bucketWebSessions)) }

func webSessionKey(kind string, idHash []byte) []byte {
	return append(append([]byte(kind), 0), idHash...)
}

func validWebSession(ws *storage.WebSession) error {
	if ws == nil || ws.Kind == "" || len(ws.IDHash) == 0 || ws.ExpiresAt.IsZero() || ws.IdleExpiresAt.IsZero() {
		return errors.New("bolt: web session needs a kind, an id hash and expiries")
	}
	return nil
}

// CreateWebSession implements storage.WebSessionStore.
func (s *Store) CreateWebSession(ctx context.Context, ws *storage.WebSession) error {
	if err := validWebSession(ws); err != nil {
		return err
	}
	k := webSessionKey(ws.Kind, ws.IDHash)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebSessions)
		if b.Get(k) != nil {
			return fmt.Errorf("web session: %w", storage.ErrConflict)
		}
		return putJSON(b, k, ws)
	})
}

// GetWebSession implements storage.WebSessionStore.
func (s *Store) GetWebSession(ctx context.Context, kind string, idHash []byte) (*storage.WebSession, error) {
	var ws storage.WebSession
	err := s.view(func(tx *bolt.Tx) error {
		return getJSON(tx.Bucket(bucketWebSessions), webSessionKey(kind, idHash), &ws)
	})
	if err != nil {
		return nil, fmt.Errorf("web session: %w", err)
	}
	return &ws, nil
}

// UpdateWebSession implements storage.WebSessionStore.
func (s *Store) UpdateWebSession(ctx context.Context, ws *storage.WebSession) error {
	if err := validWebSession(ws); err != nil {
		return err
	}
	k := webSessionKey(ws.Kind, ws.IDHash)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebSessions)
		var old storage.WebSession
		if err := getJSON(b, k, &old); err != nil {
			return fmt.Errorf("web session: %w", err)
		}
		rec := *ws
		rec.CreatedAt = old.CreatedAt
		return putJSON(b, k, &rec)
	})
}

// TouchWebSession implements storage.WebSessionStore.
func (s *Store) TouchWebSession(ctx context.Context, kind string, idHash []byte, idle time.Time) error {
	k := webSessionKey(kind, idHash)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebSessions)
		var ws storage.WebSession
		if err := getJSON(b, k, &ws); err != nil {
			return fmt.Errorf("web session: %w", err)
		}
		ws.IdleExpiresAt = idle
		return putJSON(b, k, &ws)
	})
}

// DeleteWebSession implements storage.WebSessionStore.
func (s *Store) DeleteWebSession(ctx context.Context, kind string, idHash []byte) error {
	k := webSessionKey(kind, idHash)
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebSessions)
		if b.Get(k) == nil {
			return fmt.Errorf("web session: %w", storage.ErrNotFound)
		}
		return b.Delete(k)
	})
}

// deleteWebSessionsIf removes the sessions for which drop says yes; the
// sessions are few (one per signed-in browser), so a scan is fine.
func (s *Store) deleteWebSessionsIf(prefix []byte, drop func(*storage.WebSession) bool) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketWebSessions)
		var doomed [][]byte
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
			var ws storage.WebSession
			if err := json.Unmarshal(v, &ws); err != nil {
				return fmt.Errorf("decode web session: %w", err)
			}
			if drop(&ws) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

// DeleteWebSessionsOf implements storage.WebSessionStore.
func (s *Store) DeleteWebSessionsOf(ctx context.Context, kind, subject string) (int, error) {
	return s.deleteWebSessionsIf(append([]byte(kind), 0), func(ws *storage.WebSession) bool {
		return ws.Kind == kind && ws.Subject == subject
	})
}

// DeleteExpiredWebSessions implements storage.WebSessionStore.
func (s *Store) DeleteExpiredWebSessions(ctx context.Context, now time.Time) (int, error) {
	return s.deleteWebSessionsIf(nil, func(ws *storage.WebSession) bool { return ws.Expired(now) })
}
