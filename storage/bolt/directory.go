package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bUsers        = []byte("users")         // username -> User
	bGroups       = []byte("groups")        // name -> Group
	bGroupMembers = []byte("group_members") // group \x00 username -> empty
	bUserGroups   = []byte("user_groups")   // username \x00 group -> empty
	bPrimaryUser  = []byte("primary_user")  // device -> username
	bUserDevices  = []byte("user_devices")  // username \x00 device -> empty
)

func init() {
	registerBuckets(string(bUsers), string(bGroups), string(bGroupMembers), string(bUserGroups), string(bPrimaryUser), string(bUserDevices))
}

var _ storage.DirectoryStore = (*Store)(nil)

// dirName refuses names that would break composite keys.
func dirName(kind, name string) error {
	if name == "" || strings.IndexByte(name, sep) >= 0 {
		return fmt.Errorf("bolt: %s name is empty or holds a NUL byte", kind)
	}
	return nil
}

// CreateUsers implements storage.DirectoryStore.
func (s *Store) CreateUsers(ctx context.Context, users []storage.DirectoryUser) error {
	for _, u := range users {
		if err := dirName("user", u.Username); err != nil {
			return err
		}
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bUsers)
		seen := map[string]bool{}
		for i := range users {
			u := &users[i]
			if seen[u.Username] || b.Get([]byte(u.Username)) != nil {
				return fmt.Errorf("user %q already exists: %w", u.Username, storage.ErrConflict)
			}
			seen[u.Username] = true
			if err := putJSON(b, []byte(u.Username), u); err != nil {
				return err
			}
		}
		return nil
	})
}

// User implements storage.DirectoryStore.
func (s *Store) User(ctx context.Context, username string) (*storage.DirectoryUser, error) {
	var u storage.DirectoryUser
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bUsers), []byte(username), &u) }); err != nil {
		return nil, fmt.Errorf("user %q: %w", username, err)
	}
	return &u, nil
}

// UpdateUser implements storage.DirectoryStore.
func (s *Store) UpdateUser(ctx context.Context, username string, fn func(*storage.DirectoryUser) error) (*storage.DirectoryUser, error) {
	if fn == nil {
		return nil, errors.New("bolt: update user: function is required")
	}
	var out *storage.DirectoryUser
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bUsers)
		u := &storage.DirectoryUser{}
		if err := getJSON(b, []byte(username), u); err != nil {
			return fmt.Errorf("user %q: %w", username, err)
		}
		if err := fn(u); err != nil {
			return err
		}
		u.Username = username
		out = u
		return putJSON(b, []byte(username), u)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUsers implements storage.DirectoryStore.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]storage.DirectoryUser, error) {
	return listJSON[storage.DirectoryUser](s, bUsers, after, limit)
}

// CreateGroup implements storage.DirectoryStore.
func (s *Store) CreateGroup(ctx context.Context, g *storage.Group) error {
	if g == nil {
		return errors.New("bolt: create group: nil group")
	}
	if err := dirName("group", g.Name); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bGroups)
		if b.Get([]byte(g.Name)) != nil {
			return fmt.Errorf("group %q already exists: %w", g.Name, storage.ErrConflict)
		}
		return putJSON(b, []byte(g.Name), g)
	})
}

// Group implements storage.DirectoryStore.
func (s *Store) Group(ctx context.Context, name string) (*storage.Group, error) {
	var g storage.Group
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bGroups), []byte(name), &g) }); err != nil {
		return nil, fmt.Errorf("group %q: %w", name, err)
	}
	return &g, nil
}

// ListGroups implements storage.DirectoryStore.
func (s *Store) ListGroups(ctx context.Context, after string, limit int) ([]storage.Group, error) {
	return listJSON[storage.Group](s, bGroups, after, limit)
}

// DeleteGroup implements storage.DirectoryStore.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bGroups).Get([]byte(name)) == nil {
			return fmt.Errorf("group %q: %w", name, storage.ErrNotFound)
		}
		members, ug := tx.Bucket(bGroupMembers), tx.Bucket(bUserGroups)
		p := prefix(name)
		var keys [][]byte
		c := members.Cursor()
		for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := members.Delete(k); err != nil {
				return err
			}
			if err := ug.Delete(key(string(k[len(p):]), name)); err != nil {
				return err
			}
		}
		return tx.Bucket(bGroups).Delete([]byte(name))
	})
}

// AddGroupMembers implements storage.DirectoryStore.
func (s *Store) AddGroupMembers(ctx context.Context, group string, usernames []string) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bGroups).Get([]byte(group)) == nil {
			return fmt.Errorf("group %q: %w", group, storage.ErrNotFound)
		}
		users, members, ug := tx.Bucket(bUsers), tx.Bucket(bGroupMembers), tx.Bucket(bUserGroups)
		for _, u := range usernames {
			if dirName("user", u) != nil || users.Get([]byte(u)) == nil {
				return fmt.Errorf("user %q: %w", u, storage.ErrNotFound)
			}
			if err := members.Put(key(group, u), []byte{}); err != nil {
				return err
			}
			if err := ug.Put(key(u, group), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveGroupMember implements storage.DirectoryStore.
func (s *Store) RemoveGroupMember(ctx context.Context, group, username string) error {
	return s.update(func(tx *bolt.Tx) error {
		members := tx.Bucket(bGroupMembers)
		if members.Get(key(group, username)) == nil {
			return fmt.Errorf("user %q in group %q: %w", username, group, storage.ErrNotFound)
		}
		if err := members.Delete(key(group, username)); err != nil {
			return err
		}
		return tx.Bucket(bUserGroups).Delete(key(username, group))
	})
}

// GroupMembers implements storage.DirectoryStore.
func (s *Store) GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bGroups).Get([]byte(group)) == nil {
			return fmt.Errorf("group %q: %w", group, storage.ErrNotFound)
		}
		out = scanNames(tx.Bucket(bGroupMembers), group, after, limit)
		return nil
	})
	return out, err
}

// UserGroups implements storage.DirectoryStore.
func (s *Store) UserGroups(ctx context.Context, username string) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		out = scanNames(tx.Bucket(bUserGroups), username, "", 0)
		return nil
	})
	return out, err
}

// scanNames returns the second parts of the keys under owner's prefix.
func scanNames(b *bolt.Bucket, owner, after string, limit int) []string {
	p := prefix(owner)
	var out []string
	c := b.Cursor()
	start := append(append([]byte{}, p...), after...)
	for k, _ := c.Seek(start); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		name := string(k[len(p):])
		if after != "" && name == after {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, name)
	}
	return out
}

// SetPrimaryUser implements storage.DirectoryStore.
func (s *Store) SetPrimaryUser(ctx context.Context, deviceID, username string) error {
	if err := dirName("device", deviceID); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if username != "" && (dirName("user", username) != nil || tx.Bucket(bUsers).Get([]byte(username)) == nil) {
			return fmt.Errorf("user %q: %w", username, storage.ErrNotFound)
		}
		pu, ud := tx.Bucket(bPrimaryUser), tx.Bucket(bUserDevices)
		if old := pu.Get([]byte(deviceID)); old != nil {
			if err := ud.Delete(key(string(old), deviceID)); err != nil {
				return err
			}
		}
		if username == "" {
			return pu.Delete([]byte(deviceID))
		}
		if err := pu.Put([]byte(deviceID), []byte(username)); err != nil {
			return err
		}
		return ud.Put(key(username, deviceID), []byte{})
	})
}

// PrimaryUser implements storage.DirectoryStore.
func (s *Store) PrimaryUser(ctx context.Context, deviceID string) (string, error) {
	var out string
	err := s.view(func(tx *bolt.Tx) error {
		out = string(tx.Bucket(bPrimaryUser).Get([]byte(deviceID)))
		return nil
	})
	return out, err
}

// UserDevices implements storage.DirectoryStore.
func (s *Store) UserDevices(ctx context.Context, username string) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		out = scanNames(tx.Bucket(bUserDevices), username, "", 0)
		return nil
	})
	return out, err
}
