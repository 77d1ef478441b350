package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.DirectoryStore = (*Store)(nil)

// CreateUsers implements storage.DirectoryStore.
func (s *Store) CreateUsers(ctx context.Context, users []storage.DirectoryUser) error {
	for _, u := range users {
		if u.Username == "" {
			return errors.New("postgres: create users: empty username")
		}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		seen := map[string]bool{}
		for i := range users {
			u := &users[i]
			if seen[u.Username] {
				return fmt.Errorf("user %q already exists: %w", u.Username, storage.ErrConflict)
			}
			seen[u.Username] = true
			b, err := jsonOf(u)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, "INSERT INTO dir_users (username, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING", u.Username, b)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("user %q already exists: %w", u.Username, storage.ErrConflict)
			}
		}
		return nil
	})
}

// User implements storage.DirectoryStore.
func (s *Store) User(ctx context.Context, username string) (*storage.DirectoryUser, error) {
	var u storage.DirectoryUser
	if err := getDoc(ctx, s.pool, &u, "SELECT doc FROM dir_users WHERE username = $1", username); err != nil {
		return nil, fmt.Errorf("user %q: %w", username, err)
	}
	return &u, nil
}

// UpdateUser implements storage.DirectoryStore.
func (s *Store) UpdateUser(ctx context.Context, username string, fn func(*storage.DirectoryUser) error) (*storage.DirectoryUser, error) {
	if fn == nil {
		return nil, errors.New("postgres: update user: function is required")
	}
	var out *storage.DirectoryUser
	err := s.write(ctx, func(tx pgx.Tx) error {
		u := &storage.DirectoryUser{}
		if err := getDoc(ctx, tx, u, "SELECT doc FROM dir_users WHERE username = $1 FOR UPDATE", username); err != nil {
			return fmt.Errorf("user %q: %w", username, err)
		}
		if err := fn(u); err != nil {
			return err
		}
		u.Username = username
		out = u
		return putDoc(ctx, tx, u, "UPDATE dir_users SET doc = $2 WHERE username = $1", username)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListUsers implements storage.DirectoryStore.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]storage.DirectoryUser, error) {
	return listDocs[storage.DirectoryUser](ctx, s.pool, "SELECT doc FROM dir_users WHERE username > $1 ORDER BY username LIMIT $2", after, limitArg(limit))
}

// CreateGroup implements storage.DirectoryStore.
func (s *Store) CreateGroup(ctx context.Context, g *storage.Group) error {
	if g == nil || g.Name == "" {
		return errors.New("postgres: create group: a named group is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		b, err := jsonOf(g)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO dir_groups (name, doc) VALUES ($1, $2) ON CONFLICT DO NOTHING", g.Name, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("group %q already exists: %w", g.Name, storage.ErrConflict)
		}
		return nil
	})
}

// Group implements storage.DirectoryStore.
func (s *Store) Group(ctx context.Context, name string) (*storage.Group, error) {
	var g storage.Group
	if err := getDoc(ctx, s.pool, &g, "SELECT doc FROM dir_groups WHERE name = $1", name); err != nil {
		return nil, fmt.Errorf("group %q: %w", name, err)
	}
	return &g, nil
}

// ListGroups implements storage.DirectoryStore.
func (s *Store) ListGroups(ctx context.Context, after string, limit int) ([]storage.Group, error) {
	return listDocs[storage.Group](ctx, s.pool, "SELECT doc FROM dir_groups WHERE name > $1 ORDER BY name LIMIT $2", after, limitArg(limit))
}

// DeleteGroup implements storage.DirectoryStore.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM dir_groups WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("group %q: %w", name, storage.ErrNotFound)
		}
		_, err = tx.Exec(ctx, "DELETE FROM dir_group_members WHERE group_name = $1", name)
		return err
	})
}

// AddGroupMembers implements storage.DirectoryStore.
func (s *Store) AddGroupMembers(ctx context.Context, group string, usernames []string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM dir_groups WHERE name = $1 FOR SHARE", group).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("group %q: %w", group, storage.ErrNotFound)
			}
			return err
		}
		for _, u := range usernames {
			if err := tx.QueryRow(ctx, "SELECT 1 FROM dir_users WHERE username = $1 FOR SHARE", u).Scan(&one); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("user %q: %w", u, storage.ErrNotFound)
				}
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO dir_group_members (group_name, username) VALUES ($1, $2) ON CONFLICT DO NOTHING", group, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemoveGroupMember implements storage.DirectoryStore.
func (s *Store) RemoveGroupMember(ctx context.Context, group, username string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM dir_group_members WHERE group_name = $1 AND username = $2", group, username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %q in group %q: %w", username, group, storage.ErrNotFound)
		}
		return nil
	})
}

// GroupMembers implements storage.DirectoryStore.
func (s *Store) GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error) {
	var out []string
	err := s.read(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM dir_groups WHERE name = $1", group).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("group %q: %w", group, storage.ErrNotFound)
			}
			return err
		}
		var err error
		out, err = strings1(ctx, tx, "SELECT username FROM dir_group_members WHERE group_name = $1 AND username > $2 ORDER BY username LIMIT $3", group, after, limitArg(limit))
		return err
	})
	return out, err
}

// UserGroups implements storage.DirectoryStore.
func (s *Store) UserGroups(ctx context.Context, username string) ([]string, error) {
	return strings1(ctx, s.pool, "SELECT group_name FROM dir_group_members WHERE username = $1 ORDER BY group_name", username)
}

// SetPrimaryUser implements storage.DirectoryStore.
func (s *Store) SetPrimaryUser(ctx context.Context, deviceID, username string) error {
	if deviceID == "" {
		return errors.New("postgres: set primary user: empty device ID")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if username == "" {
			_, err := tx.Exec(ctx, "DELETE FROM primary_users WHERE device_id = $1", deviceID)
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM dir_users WHERE username = $1 FOR SHARE", username).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("user %q: %w", username, storage.ErrNotFound)
			}
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO primary_users (device_id, username) VALUES ($1, $2)
			ON CONFLICT (device_id) DO UPDATE SET username = excluded.username`, deviceID, username)
		return err
	})
}

// PrimaryUser implements storage.DirectoryStore.
func (s *Store) PrimaryUser(ctx context.Context, deviceID string) (string, error) {
	var u string
	err := s.pool.QueryRow(ctx, "SELECT username FROM primary_users WHERE device_id = $1", deviceID).Scan(&u)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return u, err
}

// UserDevices implements storage.DirectoryStore.
func (s *Store) UserDevices(ctx context.Context, username string) ([]string, error) {
	return strings1(ctx, s.pool, "SELECT device_id FROM primary_users WHERE username = $1 ORDER BY device_id", username)
}

// strings1 returns the one text column a query selects.
func strings1(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func jsonOf(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("postgres: encode record: %w", err)
	}
	return b, nil
}
