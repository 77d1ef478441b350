// Package bolt is Orchard's embedded storage backend on a single bbolt file.
//
// Every write goes through a group committer: concurrent writers are folded
// into one bbolt transaction and one fsync, so a write that returned nil is
// on disk and throughput comes from batching, never from skipping fsync.
package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/orchardmdm/orchard/storage"
)

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("database is in use by another process (is another orchard serve running on this data dir?)")

// Store is the bbolt backend. Its methods are safe for concurrent use.
type Store struct {
	db    *bolt.DB
	gc    *groupCommitter
	now   func() time.Time
	notes []string
}

var _ storage.Store = (*Store)(nil)

// Options tune Open. The zero value is the production default.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock.
	LockTimeout time.Duration
	// Now is the clock for the times the store stamps itself (a target
	// superseded, cancelled or put back in its queue); default time.Now.
	Now func() time.Time
}

// buckets lists every top-level bucket; features register theirs in init
// functions of their own files so Open creates them all in one transaction.
var buckets [][]byte

// indexes are buckets derived from others; build fills one the first time
// Open creates it (a database written before it existed) and returns what
// the operator should be told. An index named "<base>.v<N>" is versioned:
// Open drops the buckets of its other versions, so changing an index's
// format is a new name that Open builds afresh.
var indexes []struct {
	name  []byte
	build func(*bolt.Tx) ([]string, error)
}

func registerIndex(name string, build func(*bolt.Tx) ([]string, error)) {
	indexes = append(indexes, struct {
		name  []byte
		build func(*bolt.Tx) ([]string, error)
	}{[]byte(name), build})
}

// Notes returns what Open found that the operator should know (for
// example records an index could not tell apart); the caller logs them.
func (s *Store) Notes() []string { return s.notes }

func registerBuckets(names ...string) {
	for _, n := range names {
		buckets = append(buckets, []byte(n))
	}
}

// Open opens (or creates) the database at path. It never deletes or
// recreates an existing file that fails to open: that is the operator's call.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create data dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	var notes []string
	err = db.Update(func(tx *bolt.Tx) error {
		notes = nil
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		if err := dropOtherVersions(tx); err != nil {
			return err
		}
		for _, ix := range indexes {
			if tx.Bucket(ix.name) != nil {
				continue
			}
			if _, err := tx.CreateBucket(ix.name); err != nil {
				return fmt.Errorf("create index %s: %w", ix.name, err)
			}
			n, err := ix.build(tx)
			if err != nil {
				return fmt.Errorf("build index %s: %w", ix.name, err)
			}
			notes = append(notes, n...)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &Store{db: db, gc: newGroupCommitter(db), now: opts.Now, notes: notes}, nil
}

// dropOtherVersions deletes the buckets of versioned indexes' other versions.
func dropOtherVersions(tx *bolt.Tx) error {
	var stale [][]byte
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		for _, ix := range indexes {
			i := bytes.LastIndex(ix.name, []byte(".v"))
			if i >= 0 && !bytes.Equal(name, ix.name) && bytes.HasPrefix(name, ix.name[:i+2]) {
				stale = append(stale, bytes.Clone(name))
			}
		}
		return nil
	})
	for _, name := range stale {
		if err == nil {
			err = tx.DeleteBucket(name)
		}
	}
	if err != nil {
		return fmt.Errorf("drop old index version: %w", err)
	}
	return nil
}

// Close waits for pending writes and closes the file.
func (s *Store) Close() error {
	s.gc.close()
	return s.db.Close()
}

// update runs fn in a write transaction shared with concurrent writers.
// fn may run more than once (when a batch-mate fails), so it must be
// idempotent and must not leak state out before it returns nil.
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.gc.do(fn) }

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error { return s.db.View(fn) }
