package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bTerms            = []byte("terms")             // name -> current TermsDocument
	bTermsVersions    = []byte("terms_versions")    // name \x00 version(8) -> TermsDocument
	bTermsAcceptances = []byte("terms_acceptances") // document \x00 user \x00 version(8) -> TermsAcceptance
	bUserTerms        = []byte("user_terms")        // user \x00 document \x00 version(8) -> empty
)

func init() {
	registerBuckets(string(bTerms), string(bTermsVersions), string(bTermsAcceptances), string(bUserTerms))
}

var _ storage.TermsStore = (*Store)(nil)

func termsVersionKey(name string, v int) []byte {
	return binary.BigEndian.AppendUint64(prefix(name), uint64(v))
}

func acceptanceKey(doc, user string, v int) []byte {
	return binary.BigEndian.AppendUint64(prefix(doc, user), uint64(v))
}

// CreateTerms implements storage.TermsStore.
func (s *Store) CreateTerms(ctx context.Context, d *storage.TermsDocument) error {
	if d == nil || d.Version != 1 {
		return errors.New("bolt: create terms: a document at version 1 is required")
	}
	if err := dirName("terms", d.Name); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTerms)
		if b.Get([]byte(d.Name)) != nil {
			return fmt.Errorf("terms %q already exist: %w", d.Name, storage.ErrConflict)
		}
		if err := putJSON(b, []byte(d.Name), d); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bTermsVersions), termsVersionKey(d.Name, 1), d)
	})
}

// PutTermsVersion implements storage.TermsStore.
func (s *Store) PutTermsVersion(ctx context.Context, d *storage.TermsDocument) error {
	if d == nil {
		return errors.New("bolt: put terms version: nil document")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTerms)
		var cur storage.TermsDocument
		if err := getJSON(b, []byte(d.Name), &cur); err != nil {
			return fmt.Errorf("terms %q: %w", d.Name, err)
		}
		if d.Version != cur.Version+1 {
			return fmt.Errorf("terms %q are at version %d, not %d: %w", d.Name, cur.Version, d.Version-1, storage.ErrConflict)
		}
		if err := putJSON(b, []byte(d.Name), d); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bTermsVersions), termsVersionKey(d.Name, d.Version), d)
	})
}

// Terms implements storage.TermsStore.
func (s *Store) Terms(ctx context.Context, name string) (*storage.TermsDocument, error) {
	var d storage.TermsDocument
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bTerms), []byte(name), &d) }); err != nil {
		return nil, fmt.Errorf("terms %q: %w", name, err)
	}
	return &d, nil
}

// TermsVersion implements storage.TermsStore.
func (s *Store) TermsVersion(ctx context.Context, name string, version int) (*storage.TermsDocument, error) {
	var d storage.TermsDocument
	if version < 1 {
		return nil, fmt.Errorf("terms %q version %d: %w", name, version, storage.ErrNotFound)
	}
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bTermsVersions), termsVersionKey(name, version), &d) }); err != nil {
		return nil, fmt.Errorf("terms %q version %d: %w", name, version, err)
	}
	return &d, nil
}

// ListTermsVersions implements storage.TermsStore.
func (s *Store) ListTermsVersions(ctx context.Context, name string) ([]storage.TermsDocument, error) {
	var out []storage.TermsDocument
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bTerms).Get([]byte(name)) == nil {
			return fmt.Errorf("terms %q: %w", name, storage.ErrNotFound)
		}
		return scanValues(tx.Bucket(bTermsVersions), prefix(name), "", 0, func(v []byte) error {
			var d storage.TermsDocument
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// ListTerms implements storage.TermsStore.
func (s *Store) ListTerms(ctx context.Context, after string, limit int) ([]storage.TermsDocument, error) {
	return listJSON[storage.TermsDocument](s, bTerms, after, limit)
}

// DeleteTerms implements storage.TermsStore.
func (s *Store) DeleteTerms(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bTerms).Get([]byte(name)) == nil {
			return fmt.Errorf("terms %q: %w", name, storage.ErrNotFound)
		}
		if err := deletePrefix(tx.Bucket(bTermsVersions), prefix(name), nil); err != nil {
			return err
		}
		ut := tx.Bucket(bUserTerms)
		err := deletePrefix(tx.Bucket(bTermsAcceptances), prefix(name), func(k []byte) error {
			user, ver, ok := splitAcceptanceKey(k[len(name)+1:])
			if !ok {
				return fmt.Errorf("bad acceptance key %q", k)
			}
			return ut.Delete(acceptanceKey(user, name, ver))
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bTerms).Delete([]byte(name))
	})
}

// splitAcceptanceKey splits "user \x00 version(8)".
func splitAcceptanceKey(k []byte) (string, int, bool) {
	if len(k) < 10 || k[len(k)-9] != sep {
		return "", 0, false
	}
	return string(k[:len(k)-9]), int(binary.BigEndian.Uint64(k[len(k)-8:])), true
}

// deletePrefix removes every key under p, calling each (when set) first.
func deletePrefix(b *bolt.Bucket, p []byte, each func(k []byte) error) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if each != nil {
			if err := each(k); err != nil {
				return err
			}
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// AcceptTerms implements storage.TermsStore.
func (s *Store) AcceptTerms(ctx context.Context, a *storage.TermsAcceptance) error {
	if a == nil {
		return errors.New("bolt: accept terms: nil acceptance")
	}
	if err := dirName("user", a.Username); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		var d storage.TermsDocument
		if err := getJSON(tx.Bucket(bTerms), []byte(a.Document), &d); err != nil {
			return fmt.Errorf("terms %q: %w", a.Document, err)
		}
		if tx.Bucket(bUsers).Get([]byte(a.Username)) == nil {
			return fmt.Errorf("user %q: %w", a.Username, storage.ErrNotFound)
		}
		if a.Version < 1 || a.Version > d.Version {
			return fmt.Errorf("terms %q have no version %d: %w", a.Document, a.Version, storage.ErrConflict)
		}
		b := tx.Bucket(bTermsAcceptances)
		k := acceptanceKey(a.Document, a.Username, a.Version)
		if b.Get(k) != nil {
			return nil // the first acceptance stands
		}
		if err := putJSON(b, k, a); err != nil {
			return err
		}
		return tx.Bucket(bUserTerms).Put(acceptanceKey(a.Username, a.Document, a.Version), []byte{})
	})
}

// parseCursor turns a TermsAcceptance.Cursor back into its parts.
func parseCursor(c string) (doc, user string, version int, ok bool) {
	parts := strings.Split(c, "/")
	if len(parts) != 3 {
		return "", "", 0, false
	}
	v, err := strconv.Atoi(parts[2])
	if err != nil || v < 0 {
		return "", "", 0, false
	}
	return parts[0], parts[1], v, true
}

// ListTermsAcceptances implements storage.TermsStore.
func (s *Store) ListTermsAcceptances(ctx context.Context, f storage.TermsAcceptanceFilter, after string, limit int) ([]storage.TermsAcceptance, error) {
	var start []byte
	if after != "" {
		doc, user, v, ok := parseCursor(after)
		if !ok {
			return nil, fmt.Errorf("bolt: bad acceptance cursor %q", after)
		}
		start = acceptanceKey(doc, user, v+1) // the next key after the cursor's
	}
	var out []storage.TermsAcceptance
	err := s.view(func(tx *bolt.Tx) error {
		acc := tx.Bucket(bTermsAcceptances)
		add := func(k []byte) (bool, error) {
			if limit > 0 && len(out) >= limit {
				return false, nil
			}
			var a storage.TermsAcceptance
			if err := getJSON(acc, k, &a); err != nil {
				return false, err
			}
			if (f.Document == "" || a.Document == f.Document) && (f.Username == "" || a.Username == f.Username) {
				out = append(out, a)
			}
			return true, nil
		}
		if f.Username != "" {
			// Through the user's index: its keys sort by document, then version.
			p := prefix(f.Username)
			if f.Document != "" {
				p = prefix(f.Username, f.Document)
			}
			c := tx.Bucket(bUserTerms).Cursor()
			for k, _ := c.Seek(p); k != nil && hasPrefix(k, p); k, _ = c.Next() {
				rest := k[len(f.Username)+1:]
				doc, ver, ok := splitAcceptanceKey(rest)
				if !ok {
					return fmt.Errorf("bad index key %q", k)
				}
				ak := acceptanceKey(doc, f.Username, ver)
				if start != nil && string(ak) < string(start) {
					continue
				}
				more, err := add(ak)
				if err != nil || !more {
					return err
				}
			}
			return nil
		}
		var p []byte
		if f.Document != "" {
			p = prefix(f.Document)
		}
		c := acc.Cursor()
		k, _ := c.Seek(p)
		if start != nil && string(start) > string(p) {
			k, _ = c.Seek(start)
		}
		for ; k != nil && hasPrefix(k, p); k, _ = c.Next() {
			more, err := add(k)
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
	return out, err
}
