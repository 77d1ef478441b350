package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.TermsStore = (*Store)(nil)

// CreateTerms implements storage.TermsStore.
func (s *Store) CreateTerms(ctx context.Context, d *storage.TermsDocument) error {
	if d == nil || d.Name == "" || d.Version != 1 {
		return errors.New("postgres: create terms: a named document at version 1 is required")
	}
	b, err := jsonOf(d)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO terms (name, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING", d.Name, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("terms %q already exist: %w", d.Name, storage.ErrConflict)
		}
		_, err = tx.Exec(ctx, "INSERT INTO terms_versions (name, version, doc) VALUES ($1, 1, $2)", d.Name, b)
		return err
	})
}

// PutTermsVersion implements storage.TermsStore.
func (s *Store) PutTermsVersion(ctx context.Context, d *storage.TermsDocument) error {
	if d == nil {
		return errors.New("postgres: put terms version: nil document")
	}
	b, err := jsonOf(d)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		var cur storage.TermsDocument
		if err := getDoc(ctx, tx, &cur, "SELECT doc FROM terms WHERE name = $1 FOR UPDATE", d.Name); err != nil {
			return fmt.Errorf("terms %q: %w", d.Name, err)
		}
		if d.Version != cur.Version+1 {
			return fmt.Errorf("terms %q are at version %d, not %d: %w", d.Name, cur.Version, d.Version-1, storage.ErrConflict)
		}
		if _, err := tx.Exec(ctx, "UPDATE terms SET doc = $2 WHERE name = $1", d.Name, b); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO terms_versions (name, version, doc) VALUES ($1, $2, $3)", d.Name, d.Version, b)
		return err
	})
}

// Terms implements storage.TermsStore.
func (s *Store) Terms(ctx context.Context, name string) (*storage.TermsDocument, error) {
	var d storage.TermsDocument
	if err := getDoc(ctx, s.pool, &d, "SELECT doc FROM terms WHERE name = $1", name); err != nil {
		return nil, fmt.Errorf("terms %q: %w", name, err)
	}
	return &d, nil
}

// TermsVersion implements storage.TermsStore.
func (s *Store) TermsVersion(ctx context.Context, name string, version int) (*storage.TermsDocument, error) {
	var d storage.TermsDocument
	if err := getDoc(ctx, s.pool, &d, "SELECT doc FROM terms_versions WHERE name = $1 AND version = $2", name, version); err != nil {
		return nil, fmt.Errorf("terms %q version %d: %w", name, version, err)
	}
	return &d, nil
}

// ListTermsVersions implements storage.TermsStore.
func (s *Store) ListTermsVersions(ctx context.Context, name string) ([]storage.TermsDocument, error) {
	var out []storage.TermsDocument
	err := s.read(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM terms WHERE name = $1", name).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("terms %q: %w", name, storage.ErrNotFound)
			}
			return err
		}
		var err error
		out, err = listDocs[storage.TermsDocument](ctx, tx, "SELECT doc FROM terms_versions WHERE name = $1 ORDER BY version", name)
		return err
	})
	return out, err
}

// ListTerms implements storage.TermsStore.
func (s *Store) ListTerms(ctx context.Context, after string, limit int) ([]storage.TermsDocument, error) {
	return listDocs[storage.TermsDocument](ctx, s.pool, "SELECT doc FROM terms WHERE name > $1 ORDER BY name LIMIT $2", after, limitArg(limit))
}

// DeleteTerms implements storage.TermsStore.
func (s *Store) DeleteTerms(ctx context.Context, name string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM terms WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("terms %q: %w", name, storage.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM terms_versions WHERE name = $1", name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM terms_acceptances WHERE document = $1", name)
		return err
	})
}

// AcceptTerms implements storage.TermsStore.
func (s *Store) AcceptTerms(ctx context.Context, a *storage.TermsAcceptance) error {
	if a == nil || a.Username == "" {
		return errors.New("postgres: accept terms: an acceptance by a user is required")
	}
	b, err := jsonOf(a)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		// FOR SHARE: a concurrent new version or delete waits for this one.
		var d storage.TermsDocument
		if err := getDoc(ctx, tx, &d, "SELECT doc FROM terms WHERE name = $1 FOR SHARE", a.Document); err != nil {
			return fmt.Errorf("terms %q: %w", a.Document, err)
		}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM dir_users WHERE username = $1 FOR SHARE", a.Username).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("user %q: %w", a.Username, storage.ErrNotFound)
			}
			return err
		}
		if a.Version < 1 || a.Version > d.Version {
			return fmt.Errorf("terms %q have no version %d: %w", a.Document, a.Version, storage.ErrConflict)
		}
		_, err := tx.Exec(ctx, `INSERT INTO terms_acceptances (document, username, version, doc) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, a.Document, a.Username, a.Version, b)
		return err
	})
}

// ListTermsAcceptances implements storage.TermsStore.
func (s *Store) ListTermsAcceptances(ctx context.Context, f storage.TermsAcceptanceFilter, after string, limit int) ([]storage.TermsAcceptance, error) {
	doc, user, ver := "", "", -1
	if after != "" {
		parts := strings.Split(after, "/")
		v, err := 0, error(nil)
		if len(parts) == 3 {
			v, err = strconv.Atoi(parts[2])
		}
		if len(parts) != 3 || err != nil || v < 0 {
			return nil, fmt.Errorf("postgres: bad acceptance cursor %q", after)
		}
		doc, user, ver = parts[0], parts[1], v
	}
	return listDocs[storage.TermsAcceptance](ctx, s.pool, `SELECT doc FROM terms_acceptances
		WHERE ($1 = '' OR document = $1) AND ($2 = '' OR username = $2) AND (document, username, version) > ($3, $4, $5)
		ORDER BY document, username, version LIMIT $6`, f.Document, f.Username, doc, user, ver, limitArg(limit))
}
