package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.WebSessionStore = (*Store)(nil)

func validWebSession(ws *storage.WebSession) error {
	if ws == nil || ws.Kind == "" || len(ws.IDHash) == 0 || ws.ExpiresAt.IsZero() || ws.IdleExpiresAt.IsZero() {
		return errors.New("postgres: web session needs a kind, an id hash and expiries")
	}
	return nil
}

// CreateWebSession implements storage.WebSessionStore.
func (s *Store) CreateWebSession(ctx context.Context, ws *storage.WebSession) error {
	if err := validWebSession(ws); err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM web_sessions WHERE kind = $1 AND id_hash = $2", ws.Kind, ws.IDHash).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("web session: %w", storage.ErrConflict)
		}
		return putDoc(ctx, tx, ws, `INSERT INTO web_sessions (kind, id_hash, subject, idle_expires_at, expires_at, doc)
			VALUES ($1, $2, $3, $4, $5, $6)`, ws.Kind, ws.IDHash, ws.Subject, ws.IdleExpiresAt, ws.ExpiresAt)
	})
}

// GetWebSession implements storage.WebSessionStore.
func (s *Store) GetWebSession(ctx context.Context, kind string, idHash []byte) (*storage.WebSession, error) {
	var ws storage.WebSession
	if err := getDoc(ctx, s.pool, &ws, "SELECT doc FROM web_sessions WHERE kind = $1 AND id_hash = $2", kind, idHash); err != nil {
		return nil, fmt.Errorf("web session: %w", err)
	}
	return &ws, nil
}

// UpdateWebSession implements storage.WebSessionStore; the creation time
// stays the stored one.
func (s *Store) UpdateWebSession(ctx context.Context, ws *storage.WebSession) error {
	if err := validWebSession(ws); err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var old storage.WebSession
		if err := getDoc(ctx, tx, &old, "SELECT doc FROM web_sessions WHERE kind = $1 AND id_hash = $2 FOR UPDATE", ws.Kind, ws.IDHash); err != nil {
			return fmt.Errorf("web session: %w", err)
		}
		rec := *ws
		rec.CreatedAt = old.CreatedAt
		b, err := jsonDoc(&rec)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE web_sessions SET subject = $3, idle_expires_at = $4, expires_at = $5, doc = $6
			WHERE kind = $1 AND id_hash = $2`, rec.Kind, rec.IDHash, rec.Subject, rec.IdleExpiresAt, rec.ExpiresAt, b)
		return err
	})
}

// TouchWebSession implements storage.WebSessionStore.
func (s *Store) TouchWebSession(ctx context.Context, kind string, idHash []byte, idle time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var ws storage.WebSession
		if err := getDoc(ctx, tx, &ws, "SELECT doc FROM web_sessions WHERE kind = $1 AND id_hash = $2 FOR UPDATE", kind, idHash); err != nil {
			return fmt.Errorf("web session: %w", err)
		}
		ws.IdleExpiresAt = idle
		b, err := jsonDoc(&ws)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE web_sessions SET idle_expires_at = $3, doc = $4 WHERE kind = $1 AND id_hash = $2", kind, idHash, idle, b)
		return err
	})
}

// DeleteWebSession implements storage.WebSessionStore.
func (s *Store) DeleteWebSession(ctx context.Context, kind string, idHash []byte) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM web_sessions WHERE kind = $1 AND id_hash = $2", kind, idHash)
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("web session: %w", storage.ErrNotFound)
	}
	return err
}

// DeleteWebSessionsOf implements storage.WebSessionStore.
func (s *Store) DeleteWebSessionsOf(ctx context.Context, kind, subject string) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM web_sessions WHERE kind = $1 AND subject = $2", kind, subject)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredWebSessions implements storage.WebSessionStore.
func (s *Store) DeleteExpiredWebSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM web_sessions WHERE idle_expires_at <= $1 OR expires_at <= $1", now)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
