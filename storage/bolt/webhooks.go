package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// Webhook buckets:
//   - webhooks: endpoint ID -> JSON endpoint;
//   - webhook_deliveries: big-endian ID (the bucket's sequence) -> JSON
//     entry, so cursor order is append order;
//   - webhook_pending: endpoint ID, NUL, big-endian ID -> nothing, the
//     pending entries of each endpoint in order (an index of the above).
var (
	bucketWebhooks        = []byte("webhooks")
	bucketWebhookDeliv    = []byte("webhook_deliveries")
	bucketWebhookPendings = []byte("webhook_pending")
)

func init() {
	registerBuckets(string(bucketWebhooks), string(bucketWebhookDeliv), string(bucketWebhookPendings))
}

var _ storage.WebhookStore = (*Store)(nil)

// PutWebhook implements storage.WebhookStore.
func (s *Store) PutWebhook(ctx context.Context, ep *storage.WebhookEndpoint) error {
	if ep == nil || ep.ID == "" || ep.URL == "" {
		return errors.New("bolt: webhook needs an ID and a URL")
	}
	return s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketWebhooks), []byte(ep.ID), ep) })
}

// Webhook implements storage.WebhookStore.
func (s *Store) Webhook(ctx context.Context, id string) (*storage.WebhookEndpoint, error) {
	var ep storage.WebhookEndpoint
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketWebhooks), []byte(id), &ep) })
	if err != nil {
		return nil, fmt.Errorf("webhook %q: %w", id, err)
	}
	return &ep, nil
}

// ListWebhooks implements storage.WebhookStore.
func (s *Store) ListWebhooks(ctx context.Context) ([]storage.WebhookEndpoint, error) {
	return listJSON[storage.WebhookEndpoint](s, bucketWebhooks, "", 0)
}

// DeleteWebhook implements storage.WebhookStore. It walks the outbox to
// find the endpoint's entries: deleting an endpoint is rare.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("webhook %q: %w", id, storage.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		var dead [][]byte
		c := tx.Bucket(bucketWebhookDeliv).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var d struct {
				EndpointID string `json:"endpoint_id"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode webhook delivery: %w", err)
			}
			if d.EndpointID == id {
				dead = append(dead, k)
			}
		}
		for _, k := range dead {
			if err := tx.Bucket(bucketWebhookDeliv).Delete(k); err != nil {
				return err
			}
		}
		p := tx.Bucket(bucketWebhookPendings)
		pre := prefix(id)
		var pend [][]byte
		pc := p.Cursor()
		for k, _ := pc.Seek(pre); k != nil && hasPrefix(k, pre); k, _ = pc.Next() {
			pend = append(pend, k)
		}
		for _, k := range pend {
			if err := p.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// AppendWebhookDeliveries implements storage.WebhookStore.
func (s *Store) AppendWebhookDeliveries(ctx context.Context, ds []storage.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uint64, len(ds))
	err := s.update(func(tx *bolt.Tx) error {
		eps, b, p := tx.Bucket(bucketWebhooks), tx.Bucket(bucketWebhookDeliv), tx.Bucket(bucketWebhookPendings)
		for i := range ds {
			ids[i] = 0
			if eps.Get([]byte(ds[i].EndpointID)) == nil {
				continue
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			d := ds[i]
			d.ID = seq
			if d.State == "" {
				d.State = storage.WebhookPending
			}
			if err := putJSON(b, u64(seq), &d); err != nil {
				return err
			}
			if d.State == storage.WebhookPending {
				if err := p.Put(seqKey(d.EndpointID, seq), nil); err != nil {
					return err
				}
			}
			ids[i] = seq
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range ds {
		ds[i].ID = ids[i]
		if ds[i].State == "" && ids[i] != 0 {
			ds[i].State = storage.WebhookPending
		}
	}
	return nil
}

// PendingWebhookDeliveries implements storage.WebhookStore.
func (s *Store) PendingWebhookDeliveries(ctx context.Context, endpointID string, limit int) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhookDeliv)
		pre := prefix(endpointID)
		c := tx.Bucket(bucketWebhookPendings).Cursor()
		for k, _ := c.Seek(pre); k != nil && hasPrefix(k, pre); k, _ = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var d storage.WebhookDelivery
			if err := getJSON(b, k[len(pre):], &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// CountPendingWebhookDeliveries implements storage.WebhookStore: it walks
// the endpoint's keys of the pending index, reading no entry.
func (s *Store) CountPendingWebhookDeliveries(ctx context.Context, endpointID string) (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		pre := prefix(endpointID)
		c := tx.Bucket(bucketWebhookPendings).Cursor()
		for k, _ := c.Seek(pre); k != nil && hasPrefix(k, pre); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// UpdateWebhookDelivery implements storage.WebhookStore.
func (s *Store) UpdateWebhookDelivery(ctx context.Context, d *storage.WebhookDelivery) error {
	return s.update(func(tx *bolt.Tx) error {
		b, p := tx.Bucket(bucketWebhookDeliv), tx.Bucket(bucketWebhookPendings)
		var cur storage.WebhookDelivery
		if err := getJSON(b, u64(d.ID), &cur); err != nil {
			return fmt.Errorf("webhook delivery %d: %w", d.ID, err)
		}
		cur.State, cur.Attempts = d.State, d.Attempts
		cur.NextAttemptAt, cur.LastAttemptAt, cur.DeliveredAt = d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt
		cur.LastStatus, cur.LastError = d.LastStatus, d.LastError
		if err := putJSON(b, u64(d.ID), &cur); err != nil {
			return err
		}
		k := seqKey(cur.EndpointID, cur.ID)
		if cur.State == storage.WebhookPending {
			return p.Put(k, nil)
		}
		return p.Delete(k)
	})
}

// WebhookDelivery implements storage.WebhookStore.
func (s *Store) WebhookDelivery(ctx context.Context, id uint64) (*storage.WebhookDelivery, error) {
	var d storage.WebhookDelivery
	err := s.view(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucketWebhookDeliv), u64(id), &d) })
	if err != nil {
		return nil, fmt.Errorf("webhook delivery %d: %w", id, err)
	}
	return &d, nil
}

// ListWebhookDeliveries implements storage.WebhookStore.
func (s *Store) ListWebhookDeliveries(ctx context.Context, f storage.WebhookDeliveryFilter) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketWebhookDeliv).Cursor()
		var k, v []byte
		if f.Before > 0 {
			if k, _ = c.Seek(u64(f.Before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
			var d storage.WebhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode webhook delivery: %w", err)
			}
			if f.EndpointID != "" && d.EndpointID != f.EndpointID || f.State != "" && d.State != f.State || f.Topic != "" && d.Topic != f.Topic {
				continue
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// PruneWebhookDeliveries implements storage.WebhookStore. An entry ends
// after it was created, so the walk stops at the first one created at or
// after the cutoff.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketWebhookDeliv)
		var del [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var d storage.WebhookDelivery
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode webhook delivery: %w", err)
			}
			if !d.CreatedAt.Before(before) {
				break
			}
			if prunable(&d, before) {
				del = append(del, k)
			}
			if len(del) >= 10000 {
				break // bounded: the next prune takes the rest
			}
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(del)
		return nil
	})
	return n, err
}

func prunable(d *storage.WebhookDelivery, before time.Time) bool {
	switch d.State {
	case storage.WebhookDelivered:
		return d.DeliveredAt.Before(before)
	case storage.WebhookDead:
		return d.LastAttemptAt.Before(before)
	}
	return false
}

// CountWebhookDeliveries implements storage.WebhookStore; it walks the
// outbox (callers cache it).
func (s *Store) CountWebhookDeliveries(ctx context.Context) (pending, dead int, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bucketWebhookPendings).Stats().KeyN
		return tx.Bucket(bucketWebhookDeliv).ForEach(func(_, v []byte) error {
			var d struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			if d.State == storage.WebhookDead {
				dead++
			}
			return nil
		})
	})
	return pending, dead, err
}
