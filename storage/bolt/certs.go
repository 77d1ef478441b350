package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketCerts       = []byte("certs")        // hash -> CertRecord JSON
	bucketCertSerials = []byte("cert_serials") // hex serial -> hash
)

func init() { registerBuckets(string(bucketCerts), string(bucketCertSerials)) }

var _ storage.CertStore = (*Store)(nil)

// PutCert stores a certificate record and its serial index.
func (s *Store) PutCert(ctx context.Context, rec *storage.CertRecord) error {
	if rec == nil || rec.Hash == "" || rec.Serial == "" {
		return fmt.Errorf("bolt: put cert: hash and serial are required")
	}
	return s.update(func(tx *bolt.Tx) error { return putCert(tx, rec) })
}

func putCert(tx *bolt.Tx, rec *storage.CertRecord) error {
	if err := putJSON(tx.Bucket(bucketCerts), []byte(rec.Hash), rec); err != nil {
		return err
	}
	return tx.Bucket(bucketCertSerials).Put([]byte(rec.Serial), []byte(rec.Hash))
}

// Cert returns a certificate record by hash.
func (s *Store) Cert(ctx context.Context, hash string) (*storage.CertRecord, error) {
	var rec storage.CertRecord
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketCerts), []byte(hash), &rec) })
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// RevokeCert marks the certificate with that hex serial revoked. Revoking
// twice keeps the first revocation time.
func (s *Store) RevokeCert(ctx context.Context, serial string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		hash := tx.Bucket(bucketCertSerials).Get([]byte(serial))
		if hash == nil {
			return fmt.Errorf("certificate serial %s: %w", serial, storage.ErrNotFound)
		}
		var rec storage.CertRecord
		if err := getJSON(tx.Bucket(bucketCerts), hash, &rec); err != nil {
			return err
		}
		if rec.Revoked {
			return nil
		}
		rec.Revoked, rec.RevokedAt = true, at
		return putJSON(tx.Bucket(bucketCerts), hash, &rec)
	})
}

// ListCerts returns records ordered by hash after the given one.
func (s *Store) ListCerts(ctx context.Context, after string, limit int) ([]storage.CertRecord, error) {
	var out []storage.CertRecord
	err := s.view(func(tx *bolt.Tx) error {
		return scanValues(tx.Bucket(bucketCerts), nil, after, limit, func(v []byte) error {
			var rec storage.CertRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
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
