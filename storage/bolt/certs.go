package bolt

import (
	"context"
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
	return listJSON[storage.CertRecord](s, bucketCerts, after, limit)
}
