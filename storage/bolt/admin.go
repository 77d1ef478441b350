package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// Admin accounts by username; API tokens by ID with an index from the
// hex SHA-256 of the secret to the ID; the audit log by a 16-hex-digit
// sequence, so keys sort in the order entries were written.
var (
	bucketAdmins      = []byte("admins")
	bucketAPITokens   = []byte("api_tokens")
	bucketTokenHashes = []byte("api_token_hashes")
	bucketAudit       = []byte("audit")
)

func init() {
	registerBuckets(string(bucketAdmins), string(bucketAPITokens), string(bucketTokenHashes), string(bucketAudit))
}

func validAdmin(a *storage.AdminAccount) error {
	if a == nil || a.Username == "" || a.Role == "" || a.PasswordHash == "" {
		return errors.New("bolt: admin account needs a username, a role and a password hash")
	}
	return nil
}

// CreateAdmin implements storage.AdminStore.
func (s *Store) CreateAdmin(ctx context.Context, a *storage.AdminAccount) error {
	if err := validAdmin(a); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAdmins)
		if b.Get([]byte(a.Username)) != nil {
			return fmt.Errorf("admin %q already exists: %w", a.Username, storage.ErrConflict)
		}
		return putJSON(b, []byte(a.Username), a)
	})
}

// UpdateAdmin implements storage.AdminStore.
func (s *Store) UpdateAdmin(ctx context.Context, a *storage.AdminAccount) error {
	if err := validAdmin(a); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAdmins)
		if b.Get([]byte(a.Username)) == nil {
			return fmt.Errorf("admin %q: %w", a.Username, storage.ErrNotFound)
		}
		return putJSON(b, []byte(a.Username), a)
	})
}

// GetAdmin implements storage.AdminStore.
func (s *Store) GetAdmin(ctx context.Context, username string) (*storage.AdminAccount, error) {
	var a storage.AdminAccount
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketAdmins), []byte(username), &a) })
	if err != nil {
		return nil, fmt.Errorf("admin %q: %w", username, err)
	}
	return &a, nil
}

// ListAdmins implements storage.AdminStore.
func (s *Store) ListAdmins(ctx context.Context) ([]storage.AdminAccount, error) {
	var out []storage.AdminAccount
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAdmins).ForEach(func(_, v []byte) error {
			var a storage.AdminAccount
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode admin: %w", err)
			}
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// DeleteAdmin implements storage.AdminStore.
func (s *Store) DeleteAdmin(ctx context.Context, username string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAdmins)
		if b.Get([]byte(username)) == nil {
			return fmt.Errorf("admin %q: %w", username, storage.ErrNotFound)
		}
		toks, err := tokensOf(tx, username)
		if err != nil {
			return err
		}
		for _, t := range toks {
			if err := deleteToken(tx, &t); err != nil {
				return err
			}
		}
		return b.Delete([]byte(username))
	})
}

func tokensOf(tx *bolt.Tx, admin string) ([]storage.APIToken, error) {
	var out []storage.APIToken
	err := tx.Bucket(bucketAPITokens).ForEach(func(_, v []byte) error {
		var t storage.APIToken
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode API token: %w", err)
		}
		if admin == "" || t.Admin == admin {
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

func deleteToken(tx *bolt.Tx, t *storage.APIToken) error {
	if err := tx.Bucket(bucketTokenHashes).Delete([]byte(hex.EncodeToString(t.Hash))); err != nil {
		return err
	}
	return tx.Bucket(bucketAPITokens).Delete([]byte(t.ID))
}

// CreateAPIToken implements storage.AdminStore.
func (s *Store) CreateAPIToken(ctx context.Context, t *storage.APIToken) error {
	if t == nil || t.ID == "" || t.Admin == "" || t.Role == "" || len(t.Hash) == 0 {
		return errors.New("bolt: API token needs an ID, an admin, a role and a hash")
	}
	hk := []byte(hex.EncodeToString(t.Hash))
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAdmins).Get([]byte(t.Admin)) == nil {
			return fmt.Errorf("admin %q: %w", t.Admin, storage.ErrNotFound)
		}
		b, h := tx.Bucket(bucketAPITokens), tx.Bucket(bucketTokenHashes)
		if b.Get([]byte(t.ID)) != nil || h.Get(hk) != nil {
			return fmt.Errorf("API token %s: %w", t.ID, storage.ErrConflict)
		}
		if err := h.Put(hk, []byte(t.ID)); err != nil {
			return err
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// APITokenByHash implements storage.AdminStore.
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (*storage.APIToken, error) {
	var t storage.APIToken
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokenHashes).Get([]byte(hex.EncodeToString(hash)))
		if id == nil {
			return storage.ErrNotFound
		}
		return getJSON(tx.Bucket(bucketAPITokens), id, &t)
	})
	if err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	return &t, nil
}

// ListAPITokens implements storage.AdminStore.
func (s *Store) ListAPITokens(ctx context.Context, admin string) ([]storage.APIToken, error) {
	var out []storage.APIToken
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = tokensOf(tx, admin)
		return err
	})
	return out, err
}

// DeleteAPIToken implements storage.AdminStore.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		var t storage.APIToken
		if err := getJSON(tx.Bucket(bucketAPITokens), []byte(id), &t); err != nil {
			return fmt.Errorf("API token %s: %w", id, err)
		}
		return deleteToken(tx, &t)
	})
}

// AppendAudit implements storage.AdminStore.
func (s *Store) AppendAudit(ctx context.Context, e *storage.AuditEntry) error {
	if e == nil || e.Actor == "" || e.Action == "" {
		return errors.New("bolt: audit entry needs an actor and an action")
	}
	var id string
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		rec := *e
		rec.ID = fmt.Sprintf("%016x", seq)
		id = rec.ID
		return putJSON(b, []byte(rec.ID), &rec)
	})
	if err == nil {
		e.ID = id
	}
	return err
}

// ListAudit implements storage.AdminStore.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter, after string, limit int) ([]storage.AuditEntry, error) {
	var out []storage.AuditEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		k, v := c.Seek([]byte(after))
		if after != "" && bytes.Equal(k, []byte(after)) {
			k, v = c.Next()
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var e storage.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry: %w", err)
			}
			if f.Match(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}
