package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.AdminStore = (*Store)(nil)

func validAdmin(a *storage.AdminAccount) error {
	if a == nil || a.Username == "" || a.Role == "" || a.PasswordHash == "" {
		return errors.New("postgres: admin account needs a username, a role and a password hash")
	}
	return nil
}

// CreateAdmin implements storage.AdminStore. The existence check runs in
// the transaction, so a racer's retry (after a unique violation) answers
// ErrConflict.
func (s *Store) CreateAdmin(ctx context.Context, a *storage.AdminAccount) error {
	if err := validAdmin(a); err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM admins WHERE username = $1", a.Username).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("admin %q already exists: %w", a.Username, storage.ErrConflict)
		}
		return putDoc(ctx, tx, a, "INSERT INTO admins (username, doc) VALUES ($1, $2)", a.Username)
	})
}

// UpdateAdmin implements storage.AdminStore.
func (s *Store) UpdateAdmin(ctx context.Context, a *storage.AdminAccount) error {
	if err := validAdmin(a); err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		b, err := jsonDoc(a)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE admins SET doc = $2 WHERE username = $1", a.Username, b)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("admin %q: %w", a.Username, storage.ErrNotFound)
		}
		return err
	})
}

// GetAdmin implements storage.AdminStore.
func (s *Store) GetAdmin(ctx context.Context, username string) (*storage.AdminAccount, error) {
	var a storage.AdminAccount
	if err := getDoc(ctx, s.pool, &a, "SELECT doc FROM admins WHERE username = $1", username); err != nil {
		return nil, fmt.Errorf("admin %q: %w", username, err)
	}
	return &a, nil
}

// ListAdmins implements storage.AdminStore.
func (s *Store) ListAdmins(ctx context.Context) ([]storage.AdminAccount, error) {
	return listDocs[storage.AdminAccount](ctx, s.pool, "SELECT doc FROM admins ORDER BY username")
}

// DeleteAdmin implements storage.AdminStore; its tokens go with it (ON
// DELETE CASCADE), in the same commit.
func (s *Store) DeleteAdmin(ctx context.Context, username string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM admins WHERE username = $1", username)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("admin %q: %w", username, storage.ErrNotFound)
		}
		return err
	})
}

// CreateAPIToken implements storage.AdminStore.
func (s *Store) CreateAPIToken(ctx context.Context, t *storage.APIToken) error {
	if t == nil || t.ID == "" || t.Admin == "" || t.Role == "" || len(t.Hash) == 0 {
		return errors.New("postgres: API token needs an ID, an admin, a role and a hash")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var admins, taken int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM admins WHERE username = $1),
			(SELECT count(*) FROM api_tokens WHERE id = $2 OR hash = $3)`, t.Admin, t.ID, t.Hash).Scan(&admins, &taken); err != nil {
			return err
		}
		if admins == 0 {
			return fmt.Errorf("admin %q: %w", t.Admin, storage.ErrNotFound)
		}
		if taken > 0 {
			return fmt.Errorf("API token %s: %w", t.ID, storage.ErrConflict)
		}
		return putDoc(ctx, tx, t, "INSERT INTO api_tokens (id, admin, hash, doc) VALUES ($1, $2, $3, $4)", t.ID, t.Admin, t.Hash)
	})
}

// APITokenByHash implements storage.AdminStore.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (*storage.APIToken, error) {
	var t storage.APIToken
	if err := getDoc(ctx, s.pool, &t, "SELECT doc FROM api_tokens WHERE hash = $1", hash); err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	return &t, nil
}

// ListAPITokens implements storage.AdminStore.
func (s *Store) ListAPITokens(ctx context.Context, admin string) ([]storage.APIToken, error) {
	return listDocs[storage.APIToken](ctx, s.pool, "SELECT doc FROM api_tokens WHERE $1 = '' OR admin = $1 ORDER BY id", admin)
}

// DeleteAPIToken implements storage.AdminStore.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM api_tokens WHERE id = $1", id)
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("API token %s: %w", id, storage.ErrNotFound)
	}
	return err
}

// AppendAudit implements storage.AdminStore.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEntry) error {
	if e == nil || e.Actor == "" || e.Action == "" {
		return errors.New("postgres: audit entry needs an actor and an action")
	}
	var id string
	err := s.write(ctx, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, "SELECT nextval('audit_seq')").Scan(&seq); err != nil {
			return err
		}
		rec := *e
		rec.ID = fmt.Sprintf("%016x", seq)
		if err := putDoc(ctx, tx, &rec, "INSERT INTO audit (id, at, actor, action, target, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			rec.ID, rec.Time, rec.Actor, rec.Action, rec.Target); err != nil {
			return err
		}
		id = rec.ID
		return nil
	})
	if err == nil {
		e.ID = id
	}
	return err
}

// ListAudit implements storage.AdminStore; the filter's rules are
// storage.AuditFilter.Match's, in SQL.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter, after string, limit int) ([]storage.AuditEntry, error) {
	ts := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t
	}
	return listDocs[storage.AuditEntry](ctx, s.pool, `SELECT doc FROM audit WHERE id > $1
		AND ($2 = '' OR actor = $2 OR starts_with(actor, $2 || '/'))
		AND ($3 = '' OR strpos(action, $3) > 0)
		AND ($4 = '' OR target = $4)
		AND ($5::timestamptz IS NULL OR at >= $5)
		AND ($6::timestamptz IS NULL OR at < $6)
		ORDER BY id LIMIT $7`, after, f.Actor, f.Action, f.Target, ts(f.Since), ts(f.Until), limitArg(limit))
}

func jsonDoc(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode record: %w", err)
	}
	return b, nil
}
