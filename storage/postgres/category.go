package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.CategoryStore = (*Store)(nil)

// CreateCategory implements storage.CategoryStore.
func (s *Store) CreateCategory(ctx context.Context, c *storage.Category) error {
	if c == nil || c.Name == "" {
		return errors.New("postgres: create category: a named category is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		b, err := jsonOf(c)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO categories (name, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING", c.Name, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("category %q already exists: %w", c.Name, storage.ErrConflict)
		}
		return nil
	})
}

// Category implements storage.CategoryStore.
func (s *Store) Category(ctx context.Context, name string) (*storage.Category, error) {
	var c storage.Category
	if err := getDoc(ctx, s.pool, &c, "SELECT doc FROM categories WHERE name = $1", name); err != nil {
		return nil, fmt.Errorf("category %q: %w", name, err)
	}
	return &c, nil
}

// ListCategories implements storage.CategoryStore.
func (s *Store) ListCategories(ctx context.Context, after string, limit int) ([]storage.Category, error) {
	return listDocs[storage.Category](ctx, s.pool, "SELECT doc FROM categories WHERE name > $1 ORDER BY name LIMIT $2", after, limitArg(limit))
}

// UpdateCategory implements storage.CategoryStore.
func (s *Store) UpdateCategory(ctx context.Context, name string, fn func(*storage.Category) error) (*storage.Category, error) {
	if fn == nil {
		return nil, errors.New("postgres: update category: function is required")
	}
	var out *storage.Category
	err := s.write(ctx, func(tx pgx.Tx) error {
		c := &storage.Category{}
		if err := getDoc(ctx, tx, c, "SELECT doc FROM categories WHERE name = $1 FOR UPDATE", name); err != nil {
			return fmt.Errorf("category %q: %w", name, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		c.Name = name
		out = c
		return putDoc(ctx, tx, c, "UPDATE categories SET doc = $2 WHERE name = $1", name)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteCategory implements storage.CategoryStore.
func (s *Store) DeleteCategory(ctx context.Context, name string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM categories WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
		}
		_, err = tx.Exec(ctx, "DELETE FROM device_categories WHERE category = $1", name)
		return err
	})
}

// SetDeviceCategory implements storage.CategoryStore.
func (s *Store) SetDeviceCategory(ctx context.Context, deviceID, name string) error {
	if deviceID == "" {
		return errors.New("postgres: set device category: empty device ID")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if name == "" {
			_, err := tx.Exec(ctx, "DELETE FROM device_categories WHERE device_id = $1", deviceID)
			return err
		}
		var one int
		// FOR SHARE: a concurrent DeleteCategory waits, so no device is left
		// in a category that is gone.
		if err := tx.QueryRow(ctx, "SELECT 1 FROM categories WHERE name = $1 FOR SHARE", name).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
			}
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO device_categories (device_id, category) VALUES ($1, $2)
			ON CONFLICT (device_id) DO UPDATE SET category = excluded.category`, deviceID, name)
		return err
	})
}

// DeviceCategory implements storage.CategoryStore.
func (s *Store) DeviceCategory(ctx context.Context, deviceID string) (string, error) {
	var c string
	err := s.pool.QueryRow(ctx, "SELECT category FROM device_categories WHERE device_id = $1", deviceID).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return c, err
}

// CategoryDevices implements storage.CategoryStore.
func (s *Store) CategoryDevices(ctx context.Context, name, after string, limit int) ([]string, error) {
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM categories WHERE name = $1", name).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
			}
			return err
		}
		var err error
		out, err = strings1(ctx, tx, "SELECT device_id FROM device_categories WHERE category = $1 AND device_id > $2 ORDER BY device_id LIMIT $3", name, after, limitArg(limit))
		return err
	})
	return out, err
}
