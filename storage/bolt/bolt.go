// Package bolt is Orchard's embedded storage backend on a single bbolt file.
//
// Every write goes through a group committer: concurrent writers are folded
// into one bbolt transaction and one fsync, so a write that returned nil is
// on disk and throughput comes from batching, never from skipping fsync.
package bolt

import (
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
	db  *bolt.DB
	gc  *groupCommitter
	now func() time.Time
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
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &Store{db: db, gc: newGroupCommitter(db), now: opts.Now}, nil
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
