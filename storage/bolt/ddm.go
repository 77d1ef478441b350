package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// Declarative Device Management: identifier -> declaration JSON, name ->
// set JSON, channel -> status JSON.
var (
	bucketDeclarations    = []byte("ddm_declarations")
	bucketDeclarationSets = []byte("ddm_sets")
	bucketDDMStatus       = []byte("ddm_status")
)

func init() {
	registerBuckets(string(bucketDeclarations), string(bucketDeclarationSets), string(bucketDDMStatus))
}

var _ storage.DeclarationStore = (*Store)(nil)

// PutDeclaration creates or replaces a declaration.
func (s *Store) PutDeclaration(ctx context.Context, d *storage.StoredDeclaration) error {
	if d == nil || d.Identifier == "" {
		return errors.New("bolt: put declaration: identifier is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDeclarations), []byte(d.Identifier), d)
	})
}

// Declaration returns one declaration.
func (s *Store) Declaration(ctx context.Context, id string) (*storage.StoredDeclaration, error) {
	var d storage.StoredDeclaration
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketDeclarations), []byte(id), &d) })
	if err != nil {
		return nil, fmt.Errorf("declaration %q: %w", id, err)
	}
	return &d, nil
}

// Declarations returns every declaration.
func (s *Store) Declarations(ctx context.Context) ([]storage.StoredDeclaration, error) {
	return listAll[storage.StoredDeclaration](s, bucketDeclarations)
}

// DeleteDeclaration removes a declaration no set names.
func (s *Store) DeleteDeclaration(ctx context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeclarations)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("declaration %q: %w", id, storage.ErrNotFound)
		}
		err := tx.Bucket(bucketDeclarationSets).ForEach(func(k, v []byte) error {
			var set storage.DeclarationSet
			if err := json.Unmarshal(v, &set); err != nil {
				return fmt.Errorf("decode declaration set: %w", err)
			}
			if slices.Contains(set.Declarations, id) {
				return fmt.Errorf("declaration %q is in set %q: %w", id, set.Name, storage.ErrConflict)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// PutDeclarationSet creates or replaces a set of existing declarations.
func (s *Store) PutDeclarationSet(ctx context.Context, set *storage.DeclarationSet) error {
	if set == nil || set.Name == "" {
		return errors.New("bolt: put declaration set: name is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		decls := tx.Bucket(bucketDeclarations)
		for _, id := range set.Declarations {
			if decls.Get([]byte(id)) == nil {
				return fmt.Errorf("declaration %q: %w", id, storage.ErrNotFound)
			}
		}
		return putJSON(tx.Bucket(bucketDeclarationSets), []byte(set.Name), set)
	})
}

// DeclarationSet returns one set.
func (s *Store) DeclarationSet(ctx context.Context, name string) (*storage.DeclarationSet, error) {
	var set storage.DeclarationSet
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketDeclarationSets), []byte(name), &set) })
	if err != nil {
		return nil, fmt.Errorf("declaration set %q: %w", name, err)
	}
	return &set, nil
}

// DeclarationSets returns every set.
func (s *Store) DeclarationSets(ctx context.Context) ([]storage.DeclarationSet, error) {
	return listAll[storage.DeclarationSet](s, bucketDeclarationSets)
}

// DeleteDeclarationSet removes a set.
func (s *Store) DeleteDeclarationSet(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeclarationSets)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("declaration set %q: %w", name, storage.ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}

// UpdateDDMStatus changes a channel's status in one transaction.
func (s *Store) UpdateDDMStatus(ctx context.Context, channel string, fn func(*storage.DDMStatus) error) error {
	if channel == "" {
		return errors.New("bolt: update ddm status: channel is required")
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDDMStatus)
		st := storage.DDMStatus{Channel: channel}
		if err := getJSON(b, []byte(channel), &st); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := fn(&st); err != nil {
			return err
		}
		st.Channel = channel
		if n := len(st.Raw); n > storage.MaxDDMRawReports {
			st.Raw = st.Raw[n-storage.MaxDDMRawReports:]
		}
		return putJSON(b, []byte(channel), &st)
	})
}

// DDMStatus returns a channel's status.
func (s *Store) DDMStatus(ctx context.Context, channel string) (*storage.DDMStatus, error) {
	var st storage.DDMStatus
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketDDMStatus), []byte(channel), &st) })
	if err != nil {
		return nil, fmt.Errorf("ddm status %q: %w", channel, err)
	}
	return &st, nil
}

// DDMStatuses returns every channel's status without its raw reports.
func (s *Store) DDMStatuses(ctx context.Context) ([]storage.DDMStatus, error) {
	all, err := listAll[storage.DDMStatus](s, bucketDDMStatus)
	for i := range all {
		all[i].Raw = nil
	}
	return all, err
}

func listAll[T any](s *Store, bucket []byte) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("decode %s %q: %w", bucket, k, err)
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}
