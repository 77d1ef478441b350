package bolt

import (
	"context"
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bCategories      = []byte("categories")       // name -> Category
	bDeviceCategory  = []byte("device_category")  // device -> category name
	bCategoryDevices = []byte("category_devices") // category \x00 device -> empty
)

func init() {
	registerBuckets(string(bCategories), string(bDeviceCategory), string(bCategoryDevices))
}

var _ storage.CategoryStore = (*Store)(nil)

// CreateCategory implements storage.CategoryStore.
func (s *Store) CreateCategory(ctx context.Context, c *storage.Category) error {
	if c == nil {
		return errors.New("bolt: create category: nil category")
	}
	if err := dirName("category", c.Name); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCategories)
		if b.Get([]byte(c.Name)) != nil {
			return fmt.Errorf("category %q already exists: %w", c.Name, storage.ErrConflict)
		}
		return putJSON(b, []byte(c.Name), c)
	})
}

// Category implements storage.CategoryStore.
func (s *Store) Category(ctx context.Context, name string) (*storage.Category, error) {
	var c storage.Category
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bCategories), []byte(name), &c) }); err != nil {
		return nil, fmt.Errorf("category %q: %w", name, err)
	}
	return &c, nil
}

// ListCategories implements storage.CategoryStore.
func (s *Store) ListCategories(ctx context.Context, after string, limit int) ([]storage.Category, error) {
	return listJSON[storage.Category](s, bCategories, after, limit)
}

// UpdateCategory implements storage.CategoryStore.
func (s *Store) UpdateCategory(ctx context.Context, name string, fn func(*storage.Category) error) (*storage.Category, error) {
	if fn == nil {
		return nil, errors.New("bolt: update category: function is required")
	}
	var out *storage.Category
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCategories)
		c := &storage.Category{}
		if err := getJSON(b, []byte(name), c); err != nil {
			return fmt.Errorf("category %q: %w", name, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		c.Name = name
		out = c
		return putJSON(b, []byte(name), c)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteCategory implements storage.CategoryStore.
func (s *Store) DeleteCategory(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bCategories).Get([]byte(name)) == nil {
			return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
		}
		cd, dc := tx.Bucket(bCategoryDevices), tx.Bucket(bDeviceCategory)
		p := prefix(name)
		var keys [][]byte
		c := cd.Cursor()
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := cd.Delete(k); err != nil {
				return err
			}
			if err := dc.Delete(k[len(p):]); err != nil {
				return err
			}
		}
		return tx.Bucket(bCategories).Delete([]byte(name))
	})
}

// SetDeviceCategory implements storage.CategoryStore.
func (s *Store) SetDeviceCategory(ctx context.Context, deviceID, name string) error {
	if err := dirName("device", deviceID); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if name != "" && (dirName("category", name) != nil || tx.Bucket(bCategories).Get([]byte(name)) == nil) {
			return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
		}
		dc, cd := tx.Bucket(bDeviceCategory), tx.Bucket(bCategoryDevices)
		if old := dc.Get([]byte(deviceID)); old != nil {
			if err := cd.Delete(key(string(old), deviceID)); err != nil {
				return err
			}
		}
		if name == "" {
			return dc.Delete([]byte(deviceID))
		}
		if err := dc.Put([]byte(deviceID), []byte(name)); err != nil {
			return err
		}
		return cd.Put(key(name, deviceID), []byte{})
	})
}

// DeviceCategory implements storage.CategoryStore.
func (s *Store) DeviceCategory(ctx context.Context, deviceID string) (string, error) {
	var out string
	err := s.view(func(tx *bolt.Tx) error {
		out = string(tx.Bucket(bDeviceCategory).Get([]byte(deviceID)))
		return nil
	})
	return out, err
}

// CategoryDevices implements storage.CategoryStore.
func (s *Store) CategoryDevices(ctx context.Context, name, after string, limit int) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bCategories).Get([]byte(name)) == nil {
			return fmt.Errorf("category %q: %w", name, storage.ErrNotFound)
		}
		out = scanNames(tx.Bucket(bCategoryDevices), name, after, limit)
		return nil
	})
	return out, err
}
