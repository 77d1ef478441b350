package bolt

import (
	"context"
	"encoding/json"
	"time"

	"github.com/orchardmdm/orchard/storage"
	bolt "go.etcd.io/bbolt"
)

const (
	bCerts        = "certs"          // hash -> CertRecord JSON
	bCertBySerial = "certs_byserial" // serial -> hash
)

func init() { registerBuckets(bCerts, bCertBySerial) }

// PutCert implements storage.CertStore.
func (s *Store) PutCert(ctx context.Context, rec *storage.CertRecord) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket([]byte(bCerts)), []byte(rec.Hash), rec); err != nil {
			return err
		}
		return tx.Bucket([]byte(bCertBySerial)).Put([]byte(rec.Serial), []byte(rec.Hash))
	})
}

// Cert implements storage.CertStore.
func (s *Store) Cert(ctx context.Context, hash string) (*storage.CertRecord, error) {
	var rec storage.CertRecord
	if err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket([]byte(bCerts)), []byte(hash), &rec) }); err != nil {
		return nil, err
	}
	return &rec, nil
}

// RevokeCert implements storage.CertStore.
func (s *Store) RevokeCert(ctx context.Context, serial string, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		hash := tx.Bucket([]byte(bCertBySerial)).Get([]byte(serial))
		if hash == nil {
			return storage.ErrNotFound
		}
		b := tx.Bucket([]byte(bCerts))
		var rec storage.CertRecord
		if err := getJSON(b, hash, &rec); err != nil {
			return err
		}
		if !rec.Revoked {
			rec.Revoked, rec.RevokedAt = true, at
		}
		return putJSON(b, hash, &rec)
	})
}

// ListCerts implements storage.CertStore.
func (s *Store) ListCerts(ctx context.Context, after string, limit int) ([]storage.CertRecord, error) {
	var out []storage.CertRecord
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bCerts)).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var r storage.CertRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
