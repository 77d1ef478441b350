package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

var (
	bDEPTokens   = []byte("dep_tokens")   // token ID -> DEPToken
	bDEPSync     = []byte("dep_sync")     // token ID -> DEPSyncState
	bDEPDevices  = []byte("dep_devices")  // serial -> DEPDevice
	bDEPProfiles = []byte("dep_profiles") // token ID "/" profile ID -> DEPProfile
)

func init() {
	registerBuckets(string(bDEPTokens), string(bDEPSync), string(bDEPDevices), string(bDEPProfiles))
}

var _ storage.DEPStore = (*Store)(nil)

// PutDEPToken implements storage.DEPTokenStore.
func (s *Store) PutDEPToken(ctx context.Context, t storage.DEPToken) error {
	return s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bDEPTokens), []byte(t.ID), t)
	})
}

// DEPToken implements storage.DEPTokenStore.
func (s *Store) DEPToken(ctx context.Context, id string) (storage.DEPToken, error) {
	var t storage.DEPToken
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bDEPTokens), []byte(id), &t) })
	return t, err
}

// DEPTokens implements storage.DEPTokenStore.
func (s *Store) DEPTokens(ctx context.Context) ([]storage.DEPToken, error) {
	var out []storage.DEPToken
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bDEPTokens).ForEach(func(k, v []byte) error {
			var t storage.DEPToken
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("bolt: decode token %s: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// UpdateDEPToken implements storage.DEPTokenStore.
func (s *Store) UpdateDEPToken(ctx context.Context, id string, fn func(*storage.DEPToken) error) (storage.DEPToken, error) {
	var out storage.DEPToken
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPTokens)
		var t storage.DEPToken
		if err := getJSON(b, []byte(id), &t); err != nil {
			return err
		}
		if err := fn(&t); err != nil {
			return err
		}
		t.ID = id
		out = t
		return putJSON(b, []byte(id), t)
	})
	return out, err
}

// DeleteDEPToken implements storage.DEPTokenStore.
func (s *Store) DeleteDEPToken(ctx context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		var t storage.DEPToken
		if err := getJSON(tx.Bucket(bDEPTokens), []byte(id), &t); err != nil {
			return err
		}
		inUse := storage.DEPTokenInUseError{DefaultProfile: t.DefaultProfileID}
		inUse.Profiles = countPrefix(tx.Bucket(bDEPProfiles), profilePrefix(id))
		n, err := countDevices(tx, storage.DEPDeviceFilter{TokenID: id})
		if err != nil {
			return err
		}
		inUse.Devices = n
		if inUse.Devices > 0 || inUse.Profiles > 0 || inUse.DefaultProfile != "" {
			return &inUse
		}
		if err := tx.Bucket(bDEPSync).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bDEPTokens).Delete([]byte(id))
	})
}

// DEPSyncState implements storage.DEPSyncStore.
func (s *Store) DEPSyncState(ctx context.Context, tokenID string) (storage.DEPSyncState, error) {
	st := storage.DEPSyncState{TokenID: tokenID}
	err := s.view(func(tx *bolt.Tx) error {
		err := getJSON(tx.Bucket(bDEPSync), []byte(tokenID), &st)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
	return st, err
}

// PutDEPSyncState implements storage.DEPSyncStore.
func (s *Store) PutDEPSyncState(ctx context.Context, st storage.DEPSyncState) error {
	return s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bDEPSync), []byte(st.TokenID), st)
	})
}

// SaveDEPPage implements storage.DEPSyncStore.
func (s *Store) SaveDEPPage(ctx context.Context, devices []storage.DEPDevice, st storage.DEPSyncState, now time.Time) ([]storage.DEPDevice, error) {
	var changed []storage.DEPDevice
	err := s.update(func(tx *bolt.Tx) error {
		changed = changed[:0]
		b := tx.Bucket(bDEPDevices)
		for _, d := range devices {
			if d.Serial == "" {
				continue
			}
			key := []byte(d.Serial)
			var prev *storage.DEPDevice
			if raw := b.Get(key); raw != nil {
				prev = new(storage.DEPDevice)
				if err := json.Unmarshal(raw, prev); err != nil {
					return fmt.Errorf("bolt: decode device %s: %w", key, err)
				}
			}
			merged, ok := storage.MergeDEPDevice(prev, d, now)
			if !ok {
				continue
			}
			if err := putJSON(b, key, merged); err != nil {
				return err
			}
			changed = append(changed, merged)
		}
		return putJSON(tx.Bucket(bDEPSync), []byte(st.TokenID), st)
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// MarkUnseenDEPDevicesRemoved implements storage.DEPSyncStore.
func (s *Store) MarkUnseenDEPDevicesRemoved(ctx context.Context, tokenID string, since, now time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		return rewriteDevices(tx, func(d *storage.DEPDevice) (bool, error) {
			if d.TokenID != tokenID || d.Status == storage.DEPRemoved || !d.SeenAt.Before(since) {
				return false, nil
			}
			d.Status, d.RemovedAt, d.UpdatedAt = storage.DEPRemoved, now, now
			n++
			return true, nil
		})
	})
	return n, err
}

// rewriteDevices walks every device and stores those fn changed, after the
// walk: bbolt cursors are invalidated by writes during iteration.
func rewriteDevices(tx *bolt.Tx, fn func(*storage.DEPDevice) (bool, error)) error {
	b := tx.Bucket(bDEPDevices)
	var keys, vals [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var d storage.DEPDevice
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("bolt: decode device %s: %w", k, err)
		}
		changed, err := fn(&d)
		if err != nil || !changed {
			return err
		}
		raw, err := json.Marshal(d)
		if err != nil {
			return err
		}
		keys, vals = append(keys, bytes.Clone(k)), append(vals, raw)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range keys {
		if err := b.Put(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// DEPDevice implements storage.DEPDeviceStore.
func (s *Store) DEPDevice(ctx context.Context, serial string) (storage.DEPDevice, error) {
	var d storage.DEPDevice
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bDEPDevices), []byte(serial), &d) })
	return d, err
}

// DEPDevices implements storage.DEPDeviceStore.
func (s *Store) DEPDevices(ctx context.Context, f storage.DEPDeviceFilter) ([]storage.DEPDevice, error) {
	var out []storage.DEPDevice
	err := s.view(func(tx *bolt.Tx) error {
		if f.Serial != "" {
			var d storage.DEPDevice
			err := getJSON(tx.Bucket(bDEPDevices), []byte(f.Serial), &d)
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			if err == nil && f.Match(&d) && d.Serial > f.After {
				out = append(out, d)
			}
			return err
		}
		return eachDevice(tx, f, func(d *storage.DEPDevice) bool {
			out = append(out, *d)
			return f.Limit <= 0 || len(out) < f.Limit
		})
	})
	return out, err
}

// eachDevice calls fn for devices matching f after f.After until fn
// returns false.
func eachDevice(tx *bolt.Tx, f storage.DEPDeviceFilter, fn func(*storage.DEPDevice) bool) error {
	c := tx.Bucket(bDEPDevices).Cursor()
	k, v := c.First()
	if f.After != "" {
		k, v = c.Seek([]byte(f.After))
		if k != nil && string(k) == f.After {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		var d storage.DEPDevice
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("bolt: decode device %s: %w", k, err)
		}
		if f.Match(&d) && !fn(&d) {
			return nil
		}
	}
	return nil
}

func countDevices(tx *bolt.Tx, f storage.DEPDeviceFilter) (int, error) {
	f.After = ""
	n := 0
	err := eachDevice(tx, f, func(*storage.DEPDevice) bool { n++; return true })
	return n, err
}

// CountDEPDevices implements storage.DEPDeviceStore.
func (s *Store) CountDEPDevices(ctx context.Context, f storage.DEPDeviceFilter) (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = countDevices(tx, f)
		return err
	})
	return n, err
}

// UpdateDEPDevices implements storage.DEPDeviceStore.
func (s *Store) UpdateDEPDevices(ctx context.Context, serials []string, fn func(*storage.DEPDevice) error) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPDevices)
		for _, serial := range serials {
			var d storage.DEPDevice
			err := getJSON(b, []byte(serial), &d)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(&d); err != nil {
				return err
			}
			d.Serial = serial
			if err := putJSON(b, []byte(serial), d); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDEPDevice implements storage.DEPDeviceStore.
func (s *Store) DeleteDEPDevice(ctx context.Context, serial string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPDevices)
		if b.Get([]byte(serial)) == nil {
			return storage.ErrNotFound
		}
		return b.Delete([]byte(serial))
	})
}

// PurgeRemovedDEPDevices implements storage.DEPDeviceStore.
func (s *Store) PurgeRemovedDEPDevices(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		var doomed [][]byte
		err := eachDevice(tx, storage.DEPDeviceFilter{Status: storage.DEPRemoved}, func(d *storage.DEPDevice) bool {
			if d.RemovedAt.Before(cutoff) {
				doomed = append(doomed, []byte(d.Serial))
			}
			return true
		})
		if err != nil {
			return err
		}
		b := tx.Bucket(bDEPDevices)
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

func profilePrefix(tokenID string) []byte { return []byte(tokenID + "/") }

func profileKey(tokenID, id string) []byte { return []byte(tokenID + "/" + id) }

func countPrefix(b *bolt.Bucket, prefix []byte) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// CreateDEPProfile implements storage.DEPProfileStore.
func (s *Store) CreateDEPProfile(ctx context.Context, p storage.DEPProfile, max int) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPProfiles)
		if b.Get(profileKey(p.TokenID, p.ID)) != nil {
			return fmt.Errorf("profile %s: %w", p.ID, storage.ErrConflict)
		}
		if countPrefix(b, profilePrefix(p.TokenID)) >= max {
			return fmt.Errorf("at most %d profiles per token: %w", max, storage.ErrLimit)
		}
		return putJSON(b, profileKey(p.TokenID, p.ID), p)
	})
}

// PutDEPProfile implements storage.DEPProfileStore.
func (s *Store) PutDEPProfile(ctx context.Context, p storage.DEPProfile) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPProfiles)
		if b.Get(profileKey(p.TokenID, p.ID)) == nil {
			return storage.ErrNotFound
		}
		return putJSON(b, profileKey(p.TokenID, p.ID), p)
	})
}

// DEPProfile implements storage.DEPProfileStore.
func (s *Store) DEPProfile(ctx context.Context, tokenID, id string) (storage.DEPProfile, error) {
	var p storage.DEPProfile
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bDEPProfiles), profileKey(tokenID, id), &p) })
	return p, err
}

// DEPProfiles implements storage.DEPProfileStore.
func (s *Store) DEPProfiles(ctx context.Context, tokenID string) ([]storage.DEPProfile, error) {
	var out []storage.DEPProfile
	err := s.view(func(tx *bolt.Tx) error {
		prefix := profilePrefix(tokenID)
		c := tx.Bucket(bDEPProfiles).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var p storage.DEPProfile
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("bolt: decode profile %s: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// DeleteDEPProfile implements storage.DEPProfileStore.
func (s *Store) DeleteDEPProfile(ctx context.Context, tokenID, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bDEPProfiles)
		if b.Get(profileKey(tokenID, id)) == nil {
			return storage.ErrNotFound
		}
		var t storage.DEPToken
		if err := getJSON(tx.Bucket(bDEPTokens), []byte(tokenID), &t); err == nil && t.DefaultProfileID == id {
			return fmt.Errorf("profile %s is the token's default profile: %w", id, storage.ErrConflict)
		}
		return b.Delete(profileKey(tokenID, id))
	})
}
