package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

// Composite keys join parts with a NUL byte. Every part is validated by the
// protocol layer to hold no NUL, so prefixes never collide.
const sep = 0

func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// prefix is key(parts...) followed by the separator.
func prefix(parts ...string) []byte { return append(key(parts...), sep) }

// seqKey is channel, NUL, big-endian seq: cursor order is FIFO order.
func seqKey(channel string, seq uint64) []byte {
	k := make([]byte, 0, len(channel)+9)
	k = append(k, channel...)
	k = append(k, sep)
	return binary.BigEndian.AppendUint64(k, seq)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func hasPrefix(k, p []byte) bool { return bytes.HasPrefix(k, p) }

// Records are JSON: readable in a bbolt browser, and tolerant of new fields.

func getJSON(b *bolt.Bucket, k []byte, v any) error {
	data := b.Get(k)
	if data == nil {
		return storage.ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s record: %w", k, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// scanValues calls fn for values whose keys start with prefix and sort
// after prefix+after, at most limit of them (limit <= 0: no limit).
func scanValues(b *bolt.Bucket, prefix []byte, after string, limit int, fn func(v []byte) error) error {
	c := b.Cursor()
	start := append(append([]byte{}, prefix...), after...)
	k, v := c.Seek(start)
	n := 0
	for ; k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if after != "" && string(k) == string(start) {
			continue
		}
		if limit > 0 && n >= limit {
			break
		}
		if err := fn(v); err != nil {
			return err
		}
		n++
	}
	return nil
}

// listJSON decodes the records of a bucket in key order, after the given
// key, at most limit of them (limit <= 0: all).
func listJSON[T any](s *Store, bucket []byte, after string, limit int) ([]T, error) {
	var out []T
	err := s.view(func(tx *bolt.Tx) error {
		return scanValues(tx.Bucket(bucket), nil, after, limit, func(v []byte) error {
			var rec T
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}
