package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.DEPStore = (*Store)(nil)

func putToken(ctx context.Context, q querier, t *storage.DEPToken) error {
	return putDoc(ctx, q, t, "INSERT INTO dep_tokens (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc", t.ID)
}

// PutDEPToken implements storage.DEPTokenStore.
func (s *Store) PutDEPToken(ctx context.Context, t storage.DEPToken) error {
	return s.write(ctx, func(tx pgx.Tx) error { return putToken(ctx, tx, &t) })
}

// DEPToken implements storage.DEPTokenStore.
func (s *Store) DEPToken(ctx context.Context, id string) (storage.DEPToken, error) {
	var t storage.DEPToken
	err := getDoc(ctx, s.pool, &t, "SELECT doc FROM dep_tokens WHERE id = $1", id)
	return t, err
}

// DEPTokens implements storage.DEPTokenStore.
func (s *Store) DEPTokens(ctx context.Context) ([]storage.DEPToken, error) {
	return listDocs[storage.DEPToken](ctx, s.pool, "SELECT doc FROM dep_tokens ORDER BY id")
}

// UpdateDEPToken implements storage.DEPTokenStore.
func (s *Store) UpdateDEPToken(ctx context.Context, id string, fn func(*storage.DEPToken) error) (storage.DEPToken, error) {
	var out storage.DEPToken
	err := s.write(ctx, func(tx pgx.Tx) error {
		var t storage.DEPToken
		if err := getDoc(ctx, tx, &t, "SELECT doc FROM dep_tokens WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		t.ID = id
		out = t
		return putToken(ctx, tx, &t)
	})
	return out, err
}

// DeleteDEPToken implements storage.DEPTokenStore.
func (s *Store) DeleteDEPToken(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var t storage.DEPToken
		if err := getDoc(ctx, tx, &t, "SELECT doc FROM dep_tokens WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		inUse := storage.DEPTokenInUseError{DefaultProfile: t.DefaultProfileID}
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM dep_profiles WHERE token_id = $1),
			(SELECT count(*) FROM dep_devices WHERE token_id = $1)`, id).Scan(&inUse.Profiles, &inUse.Devices); err != nil {
			return err
		}
		if inUse.Devices > 0 || inUse.Profiles > 0 || inUse.DefaultProfile != "" {
			return &inUse
		}
		if _, err := tx.Exec(ctx, "DELETE FROM dep_sync WHERE token_id = $1", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM dep_tokens WHERE id = $1", id)
		return err
	})
}

// DEPSyncState implements storage.DEPSyncStore.
func (s *Store) DEPSyncState(ctx context.Context, tokenID string) (storage.DEPSyncState, error) {
	st := storage.DEPSyncState{TokenID: tokenID}
	err := getDoc(ctx, s.pool, &st, "SELECT doc FROM dep_sync WHERE token_id = $1", tokenID)
	if errors.Is(err, storage.ErrNotFound) {
		return st, nil
	}
	return st, err
}

func putSyncState(ctx context.Context, q querier, st *storage.DEPSyncState) error {
	return putDoc(ctx, q, st, "INSERT INTO dep_sync (token_id, doc) VALUES ($1, $2) ON CONFLICT (token_id) DO UPDATE SET doc = excluded.doc", st.TokenID)
}

// PutDEPSyncState implements storage.DEPSyncStore.
func (s *Store) PutDEPSyncState(ctx context.Context, st storage.DEPSyncState) error {
	return s.write(ctx, func(tx pgx.Tx) error { return putSyncState(ctx, tx, &st) })
}

func putDevice(ctx context.Context, q querier, d *storage.DEPDevice) error {
	return putDoc(ctx, q, d, `INSERT INTO dep_devices (serial, token_id, status, profile_id, doc) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (serial) DO UPDATE SET token_id = excluded.token_id, status = excluded.status,
			profile_id = excluded.profile_id, doc = excluded.doc`,
		d.Serial, d.TokenID, string(d.Status), d.ProfileID)
}

// SaveDEPPage implements storage.DEPSyncStore.
func (s *Store) SaveDEPPage(ctx context.Context, devices []storage.DEPDevice, st storage.DEPSyncState, now time.Time) ([]storage.DEPDevice, error) {
	var changed []storage.DEPDevice
	err := s.write(ctx, func(tx pgx.Tx) error {
		changed = changed[:0]
		// A concurrent DeleteDEPToken waits for the page (or sees its devices).
		if _, err := tx.Exec(ctx, "SELECT 1 FROM dep_tokens WHERE id = $1 FOR SHARE", st.TokenID); err != nil {
			return err
		}
		for _, d := range devices {
			if d.Serial == "" {
				continue
			}
			var prev *storage.DEPDevice
			var p storage.DEPDevice
			err := getDoc(ctx, tx, &p, "SELECT doc FROM dep_devices WHERE serial = $1 FOR UPDATE", d.Serial)
			if err == nil {
				prev = &p
			} else if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			merged, ok := storage.MergeDEPDevice(prev, d, now)
			if !ok {
				continue
			}
			if err := putDevice(ctx, tx, &merged); err != nil {
				return err
			}
			changed = append(changed, merged)
		}
		return putSyncState(ctx, tx, &st)
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// MarkUnseenDEPDevicesRemoved implements storage.DEPSyncStore.
func (s *Store) MarkUnseenDEPDevicesRemoved(ctx context.Context, tokenID string, since, now time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		n = 0
		ds, err := listDocs[storage.DEPDevice](ctx, tx, `SELECT doc FROM dep_devices WHERE token_id = $1 AND status <> $2
			ORDER BY serial FOR UPDATE`, tokenID, string(storage.DEPRemoved))
		if err != nil {
			return err
		}
		for i := range ds {
			d := &ds[i]
			if !d.SeenAt.Before(since) {
				continue
			}
			d.Status, d.RemovedAt, d.UpdatedAt = storage.DEPRemoved, now, now
			if err := putDevice(ctx, tx, d); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// DEPDevice implements storage.DEPDeviceStore.
func (s *Store) DEPDevice(ctx context.Context, serial string) (storage.DEPDevice, error) {
	var d storage.DEPDevice
	err := getDoc(ctx, s.pool, &d, "SELECT doc FROM dep_devices WHERE serial = $1", serial)
	return d, err
}

// deviceWhere is the SQL of a filter (After and Limit aside), on $1..$4.
const deviceWhere = `($1 = '' OR token_id = $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR serial = $3) AND ($4 = '' OR profile_id = $4)`

func filterArgs(f storage.DEPDeviceFilter) []any {
	return []any{f.TokenID, string(f.Status), f.Serial, f.ProfileID}
}

// DEPDevices implements storage.DEPDeviceStore.
func (s *Store) DEPDevices(ctx context.Context, f storage.DEPDeviceFilter) ([]storage.DEPDevice, error) {
	return listDocs[storage.DEPDevice](ctx, s.pool, "SELECT doc FROM dep_devices WHERE "+deviceWhere+
		" AND serial > $5 ORDER BY serial LIMIT $6", append(filterArgs(f), f.After, limitArg(f.Limit))...)
}

// CountDEPDevices implements storage.DEPDeviceStore.
func (s *Store) CountDEPDevices(ctx context.Context, f storage.DEPDeviceFilter) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM dep_devices WHERE "+deviceWhere, filterArgs(f)...).Scan(&n)
	return n, err
}

// UpdateDEPDevices implements storage.DEPDeviceStore.
func (s *Store) UpdateDEPDevices(ctx context.Context, serials []string, fn func(*storage.DEPDevice) error) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, serial := range serials {
			var d storage.DEPDevice
			err := getDoc(ctx, tx, &d, "SELECT doc FROM dep_devices WHERE serial = $1 FOR UPDATE", serial)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if err := fn(&d); err != nil {
				return err
			}
			d.Serial = serial
			if err := putDevice(ctx, tx, &d); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDEPDevice implements storage.DEPDeviceStore.
func (s *Store) DeleteDEPDevice(ctx context.Context, serial string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM dep_devices WHERE serial = $1", serial)
		if err == nil && tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return err
	})
}

// PurgeRemovedDEPDevices implements storage.DEPDeviceStore.
func (s *Store) PurgeRemovedDEPDevices(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		n = 0
		ds, err := listDocs[storage.DEPDevice](ctx, tx, "SELECT doc FROM dep_devices WHERE status = $1 ORDER BY serial FOR UPDATE", string(storage.DEPRemoved))
		if err != nil {
			return err
		}
		for _, d := range ds {
			if !d.RemovedAt.Before(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, "DELETE FROM dep_devices WHERE serial = $1", d.Serial); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// CreateDEPProfile implements storage.DEPProfileStore.
func (s *Store) CreateDEPProfile(ctx context.Context, p storage.DEPProfile, max int) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		// The count below is only true while no one else adds to it.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('dep_profiles:' || $1, 0))", p.TokenID); err != nil {
			return err
		}
		var exists bool
		var n int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dep_profiles WHERE token_id = $1 AND id = $2),
			(SELECT count(*) FROM dep_profiles WHERE token_id = $1)`, p.TokenID, p.ID).Scan(&exists, &n); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("profile %s: %w", p.ID, storage.ErrConflict)
		}
		if n >= max {
			return fmt.Errorf("at most %d profiles per token: %w", max, storage.ErrLimit)
		}
		return putDoc(ctx, tx, &p, "INSERT INTO dep_profiles (token_id, id, doc) VALUES ($1, $2, $3)", p.TokenID, p.ID)
	})
}

// PutDEPProfile implements storage.DEPProfileStore.
func (s *Store) PutDEPProfile(ctx context.Context, p storage.DEPProfile) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM dep_profiles WHERE token_id = $1 AND id = $2 FOR UPDATE", p.TokenID, p.ID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		} else if err != nil {
			return err
		}
		return putDoc(ctx, tx, &p, "UPDATE dep_profiles SET doc = $3 WHERE token_id = $1 AND id = $2", p.TokenID, p.ID)
	})
}

// DEPProfile implements storage.DEPProfileStore.
func (s *Store) DEPProfile(ctx context.Context, tokenID, id string) (storage.DEPProfile, error) {
	var p storage.DEPProfile
	err := getDoc(ctx, s.pool, &p, "SELECT doc FROM dep_profiles WHERE token_id = $1 AND id = $2", tokenID, id)
	return p, err
}

// DEPProfiles implements storage.DEPProfileStore.
func (s *Store) DEPProfiles(ctx context.Context, tokenID string) ([]storage.DEPProfile, error) {
	return listDocs[storage.DEPProfile](ctx, s.pool, "SELECT doc FROM dep_profiles WHERE token_id = $1 ORDER BY id", tokenID)
}

// DeleteDEPProfile implements storage.DEPProfileStore.
func (s *Store) DeleteDEPProfile(ctx context.Context, tokenID, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM dep_profiles WHERE token_id = $1 AND id = $2", tokenID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		var t storage.DEPToken
		if err := getDoc(ctx, tx, &t, "SELECT doc FROM dep_tokens WHERE id = $1 FOR SHARE", tokenID); err == nil && t.DefaultProfileID == id {
			return fmt.Errorf("profile %s is the token's default profile: %w", id, storage.ErrConflict)
		}
		return nil
	})
}
