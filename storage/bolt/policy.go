package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bPolicies    = []byte("enrollment_policies") // id -> EnrollmentPolicy
	bCorporateID = []byte("corporate_ids")       // kind \x00 value -> CorporateIdentifier
	bDEMDevices  = []byte("dem_devices")         // username \x00 device -> empty
)

func init() {
	registerBuckets(string(bPolicies), string(bCorporateID), string(bDEMDevices))
}

var _ storage.PolicyStore = (*Store)(nil)

// PutEnrollmentPolicy implements storage.PolicyStore.
func (s *Store) PutEnrollmentPolicy(ctx context.Context, p *storage.EnrollmentPolicy) error {
	if p == nil || p.ID == "" {
		return errors.New("bolt: put enrollment policy: an ID is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPolicies)
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		return putJSON(b, []byte(p.ID), p)
	})
}

// EnrollmentPolicyGeneration implements storage.PolicyStore: the policy
// bucket's sequence, bumped by every write.
func (s *Store) EnrollmentPolicyGeneration(ctx context.Context) (uint64, error) {
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bPolicies).Sequence()
		return nil
	})
	return n, err
}

// EnrollmentPolicies implements storage.PolicyStore.
func (s *Store) EnrollmentPolicies(ctx context.Context) ([]storage.EnrollmentPolicy, error) {
	return listJSON[storage.EnrollmentPolicy](s, bPolicies, "", 0)
}

// DeleteEnrollmentPolicy implements storage.PolicyStore.
func (s *Store) DeleteEnrollmentPolicy(ctx context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPolicies)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("enrollment policy %q: %w", id, storage.ErrNotFound)
		}
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

func corporateKey(kind, value string) ([]byte, error) {
	if kind == "" || value == "" || strings.IndexByte(kind, sep) >= 0 || strings.IndexByte(value, sep) >= 0 {
		return nil, fmt.Errorf("bolt: corporate identifier %q/%q is empty or holds a NUL byte", kind, value)
	}
	return key(kind, value), nil
}

// ImportCorporateIdentifiers implements storage.PolicyStore.
func (s *Store) ImportCorporateIdentifiers(ctx context.Context, rows []storage.CorporateIdentifier, overwrite bool) (storage.CorporateImportResult, error) {
	keys := make([][]byte, len(rows))
	for i, r := range rows {
		k, err := corporateKey(r.Kind, r.Value)
		if err != nil {
			return storage.CorporateImportResult{}, err
		}
		keys[i] = k
	}
	var res storage.CorporateImportResult
	err := s.update(func(tx *bolt.Tx) error {
		res = storage.CorporateImportResult{Overwritten: overwrite}
		b := tx.Bucket(bCorporateID)
		for i := range rows {
			r := rows[i]
			var old storage.CorporateIdentifier
			switch err := getJSON(b, keys[i], &old); {
			case errors.Is(err, storage.ErrNotFound):
				res.Added++
			case err != nil:
				return err
			case old.Details == r.Details:
				res.Unchanged++
				continue
			default:
				res.Conflicts = append(res.Conflicts, old)
				if !overwrite {
					continue
				}
				res.Updated++
				r.AddedAt, r.EnrolledDevice, r.EnrolledAt = old.AddedAt, old.EnrolledDevice, old.EnrolledAt
			}
			if err := putJSON(b, keys[i], &r); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// CorporateIdentifier implements storage.PolicyStore.
func (s *Store) CorporateIdentifier(ctx context.Context, kind, value string) (*storage.CorporateIdentifier, error) {
	k, err := corporateKey(kind, value)
	if err != nil {
		return nil, fmt.Errorf("corporate identifier: %w", storage.ErrNotFound)
	}
	var c storage.CorporateIdentifier
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bCorporateID), k, &c) }); err != nil {
		return nil, fmt.Errorf("corporate identifier %s %q: %w", kind, value, err)
	}
	return &c, nil
}

// ListCorporateIdentifiers implements storage.PolicyStore.
func (s *Store) ListCorporateIdentifiers(ctx context.Context, kind, valuePrefix, after string, limit int) ([]storage.CorporateIdentifier, error) {
	var out []storage.CorporateIdentifier
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bCorporateID).Cursor()
		var k, v []byte
		if kind == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek(prefix(kind))
		}
		for ; k != nil; k, v = c.Next() {
			kd, val, _ := strings.Cut(string(k), string(rune(sep)))
			if kind != "" && kd != kind {
				break
			}
			if !strings.HasPrefix(val, valuePrefix) || after != "" && val <= after {
				continue
			}
			if limit > 0 && len(out) >= limit {
				break
			}
			var rec storage.CorporateIdentifier
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode corporate identifier: %w", err)
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// DeleteCorporateIdentifier implements storage.PolicyStore.
func (s *Store) DeleteCorporateIdentifier(ctx context.Context, kind, value string) error {
	k, err := corporateKey(kind, value)
	if err != nil {
		return fmt.Errorf("corporate identifier: %w", storage.ErrNotFound)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCorporateID)
		if b.Get(k) == nil {
			return fmt.Errorf("corporate identifier %s %q: %w", kind, value, storage.ErrNotFound)
		}
		return b.Delete(k)
	})
}

// MarkCorporateEnrolled implements storage.PolicyStore.
func (s *Store) MarkCorporateEnrolled(ctx context.Context, kind, value, deviceID string, at time.Time) error {
	k, err := corporateKey(kind, value)
	if err != nil {
		return fmt.Errorf("corporate identifier: %w", storage.ErrNotFound)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCorporateID)
		var c storage.CorporateIdentifier
		if err := getJSON(b, k, &c); err != nil {
			return fmt.Errorf("corporate identifier %s %q: %w", kind, value, err)
		}
		c.EnrolledDevice, c.EnrolledAt = deviceID, at
		return putJSON(b, k, &c)
	})
}

// ClaimDevice implements storage.PolicyStore: bbolt has one writer at a
// time, so the count and the write in one update cannot interleave with
// another claim.
func (s *Store) ClaimDevice(ctx context.Context, c storage.DeviceClaim) error {
	if err := dirName("device", c.DeviceID); err != nil {
		return err
	}
	if err := dirName("user", c.Username); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bUsers).Get([]byte(c.Username)) == nil {
			return fmt.Errorf("user %q: %w", c.Username, storage.ErrNotFound)
		}
		if c.DEM {
			b := tx.Bucket(bDEMDevices)
			if b.Get(key(c.Username, c.DeviceID)) != nil {
				return nil
			}
			if n := countPrefix(b, prefix(c.Username)); n >= c.Limit {
				return fmt.Errorf("%s holds %d devices: %w", c.Username, n, storage.ErrLimitReached)
			}
			return b.Put(key(c.Username, c.DeviceID), []byte{})
		}
		pu, ud := tx.Bucket(bPrimaryUser), tx.Bucket(bUserDevices)
		old := pu.Get([]byte(c.DeviceID))
		if string(old) == c.Username {
			return nil
		}
		if n := countPrefix(ud, prefix(c.Username)); n >= c.Limit {
			return fmt.Errorf("%s holds %d devices: %w", c.Username, n, storage.ErrLimitReached)
		}
		if old != nil {
			if err := ud.Delete(key(string(old), c.DeviceID)); err != nil {
				return err
			}
		}
		if err := pu.Put([]byte(c.DeviceID), []byte(c.Username)); err != nil {
			return err
		}
		return ud.Put(key(c.Username, c.DeviceID), []byte{})
	})
}

// DEMDevices implements storage.PolicyStore.
func (s *Store) DEMDevices(ctx context.Context, username string) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		out = scanNames(tx.Bucket(bDEMDevices), username, "", 0)
		return nil
	})
	return out, err
}
