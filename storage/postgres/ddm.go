package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.DeclarationStore = (*Store)(nil)

// PutDeclaration creates or replaces a declaration.
func (s *Store) PutDeclaration(ctx context.Context, d *storage.StoredDeclaration) error {
	if d == nil || d.Identifier == "" {
		return errors.New("postgres: put declaration: identifier is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		return putDoc(ctx, tx, d, `INSERT INTO ddm_declarations (id, doc) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc`, d.Identifier)
	})
}

// Declaration returns one declaration.
func (s *Store) Declaration(ctx context.Context, id string) (*storage.StoredDeclaration, error) {
	var d storage.StoredDeclaration
	if err := getDoc(ctx, s.pool, &d, "SELECT doc FROM ddm_declarations WHERE id = $1", id); err != nil {
		return nil, fmt.Errorf("declaration %q: %w", id, err)
	}
	return &d, nil
}

// Declarations returns every declaration by identifier.
func (s *Store) Declarations(ctx context.Context) ([]storage.StoredDeclaration, error) {
	return listDocs[storage.StoredDeclaration](ctx, s.pool, "SELECT doc FROM ddm_declarations ORDER BY id")
}

// DeleteDeclaration removes a declaration no set names. The sets are read
// in the same repeatable-read transaction; a set written concurrently
// that names it makes one of the two retry.
func (s *Store) DeleteDeclaration(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM ddm_declarations WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		sets, err := listDocs[storage.DeclarationSet](ctx, tx, "SELECT doc FROM ddm_sets ORDER BY name")
		if err != nil {
			return err
		}
		for _, set := range sets {
			if slices.Contains(set.Declarations, id) {
				return fmt.Errorf("declaration %q is in set %q: %w", id, set.Name, storage.ErrConflict)
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM ddm_declarations WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("declaration %q: %w", id, storage.ErrNotFound)
		}
		return nil
	})
}

// PutDeclarationSet creates or replaces a set of existing declarations.
func (s *Store) PutDeclarationSet(ctx context.Context, set *storage.DeclarationSet) error {
	if set == nil || set.Name == "" {
		return errors.New("postgres: put declaration set: name is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, id := range set.Declarations {
			var one int
			// FOR SHARE: a concurrent delete of the declaration waits or fails.
			err := tx.QueryRow(ctx, "SELECT 1 FROM ddm_declarations WHERE id = $1 FOR SHARE", id).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("declaration %q: %w", id, storage.ErrNotFound)
			} else if err != nil {
				return err
			}
		}
		return putDoc(ctx, tx, set, `INSERT INTO ddm_sets (name, doc) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc`, set.Name)
	})
}

// DeclarationSet returns one set.
func (s *Store) DeclarationSet(ctx context.Context, name string) (*storage.DeclarationSet, error) {
	var set storage.DeclarationSet
	if err := getDoc(ctx, s.pool, &set, "SELECT doc FROM ddm_sets WHERE name = $1", name); err != nil {
		return nil, fmt.Errorf("declaration set %q: %w", name, err)
	}
	return &set, nil
}

// DeclarationSets returns every set by name.
func (s *Store) DeclarationSets(ctx context.Context) ([]storage.DeclarationSet, error) {
	return listDocs[storage.DeclarationSet](ctx, s.pool, "SELECT doc FROM ddm_sets ORDER BY name")
}

// DeleteDeclarationSet removes a set.
func (s *Store) DeleteDeclarationSet(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM ddm_sets WHERE name = $1", name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("declaration set %q: %w", name, storage.ErrNotFound)
	}
	return nil
}

// UpdateDDMStatus changes a channel's status in one transaction.
func (s *Store) UpdateDDMStatus(ctx context.Context, channel string, fn func(*storage.DDMStatus) error) error {
	if channel == "" {
		return errors.New("postgres: update ddm status: channel is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		st := storage.DDMStatus{Channel: channel}
		if err := getDoc(ctx, tx, &st, "SELECT doc FROM ddm_status WHERE channel = $1 FOR UPDATE", channel); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := fn(&st); err != nil {
			return err
		}
		st.Channel = channel
		if n := len(st.Raw); n > storage.MaxDDMRawReports {
			st.Raw = st.Raw[n-storage.MaxDDMRawReports:]
		}
		return putDoc(ctx, tx, &st, `INSERT INTO ddm_status (channel, doc) VALUES ($1, $2)
			ON CONFLICT (channel) DO UPDATE SET doc = EXCLUDED.doc`, channel)
	})
}

// DDMStatus returns a channel's status.
func (s *Store) DDMStatus(ctx context.Context, channel string) (*storage.DDMStatus, error) {
	var st storage.DDMStatus
	if err := getDoc(ctx, s.pool, &st, "SELECT doc FROM ddm_status WHERE channel = $1", channel); err != nil {
		return nil, fmt.Errorf("ddm status %q: %w", channel, err)
	}
	return &st, nil
}

// DDMStatuses returns every channel's status without its raw reports.
func (s *Store) DDMStatuses(ctx context.Context) ([]storage.DDMStatus, error) {
	all, err := listDocs[storage.DDMStatus](ctx, s.pool, "SELECT doc FROM ddm_status ORDER BY channel")
	for i := range all {
		all[i].Raw = nil
	}
	return all, err
}
