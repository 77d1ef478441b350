package bolt

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// Snapshot calls fn with a consistent copy of the whole database, as of
// one read transaction: its size in bytes and a writer of exactly that
// many bytes. Writers carry on meanwhile; fn must write the copy before it
// returns (the transaction ends then).
func (s *Store) Snapshot(fn func(size int64, db io.WriterTo) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Size(), tx) })
}
