package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.WebhookStore = (*Store)(nil)

// PutWebhook implements storage.WebhookStore.
func (s *Store) PutWebhook(ctx context.Context, ep *storage.WebhookEndpoint) error {
	if ep == nil || ep.ID == "" || ep.URL == "" {
		return errors.New("postgres: webhook needs an ID and a URL")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		return putDoc(ctx, tx, ep, "INSERT INTO webhooks (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc", ep.ID)
	})
}

// Webhook implements storage.WebhookStore.
func (s *Store) Webhook(ctx context.Context, id string) (*storage.WebhookEndpoint, error) {
	var ep storage.WebhookEndpoint
	if err := getDoc(ctx, s.pool, &ep, "SELECT doc FROM webhooks WHERE id = $1", id); err != nil {
		return nil, fmt.Errorf("webhook %q: %w", id, err)
	}
	return &ep, nil
}

// ListWebhooks implements storage.WebhookStore.
func (s *Store) ListWebhooks(ctx context.Context) ([]storage.WebhookEndpoint, error) {
	return listDocs[storage.WebhookEndpoint](ctx, s.pool, "SELECT doc FROM webhooks ORDER BY id")
}

// DeleteWebhook implements storage.WebhookStore; its outbox entries go
// with it (ON DELETE CASCADE).
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM webhooks WHERE id = $1", id)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %q: %w", id, storage.ErrNotFound)
		}
		return err
	})
}

func endedAt(d *storage.WebhookDelivery) any {
	switch d.State {
	case storage.WebhookDelivered:
		return d.DeliveredAt
	case storage.WebhookDead:
		return d.LastAttemptAt
	}
	return nil
}

// AppendWebhookDeliveries implements storage.WebhookStore.
func (s *Store) AppendWebhookDeliveries(ctx context.Context, ds []storage.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uint64, len(ds))
	err := s.write(ctx, func(tx pgx.Tx) error {
		known := map[string]bool{}
		for i := range ds {
			ids[i] = 0
			ep := ds[i].EndpointID
			ok, seen := known[ep]
			if !seen {
				if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 FOR KEY SHARE)", ep).Scan(&ok); err != nil {
					return err
				}
				known[ep] = ok
			}
			if !ok {
				continue
			}
			var id int64
			if err := tx.QueryRow(ctx, "SELECT nextval('webhook_delivery_seq')").Scan(&id); err != nil {
				return err
			}
			d := ds[i]
			d.ID = uint64(id)
			if d.State == "" {
				d.State = storage.WebhookPending
			}
			if err := putDoc(ctx, tx, &d, "INSERT INTO webhook_deliveries (id, endpoint_id, state, created_at, ended_at, doc) VALUES ($1, $2, $3, $4, $5, $6)",
				id, d.EndpointID, d.State, d.CreatedAt, endedAt(&d)); err != nil {
				return err
			}
			ids[i] = d.ID
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
	return listDocs[storage.WebhookDelivery](ctx, s.pool,
		"SELECT doc FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending' ORDER BY id LIMIT $2", endpointID, limitArg(limit))
}

// CountPendingWebhookDeliveries implements storage.WebhookStore (on the
// partial index of pending entries).
func (s *Store) CountPendingWebhookDeliveries(ctx context.Context, endpointID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending'", endpointID).Scan(&n)
	return n, err
}

// UpdateWebhookDelivery implements storage.WebhookStore.
func (s *Store) UpdateWebhookDelivery(ctx context.Context, d *storage.WebhookDelivery) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var cur storage.WebhookDelivery
		if err := getDoc(ctx, tx, &cur, "SELECT doc FROM webhook_deliveries WHERE id = $1 FOR UPDATE", int64(d.ID)); err != nil {
			return fmt.Errorf("webhook delivery %d: %w", d.ID, err)
		}
		cur.State, cur.Attempts = d.State, d.Attempts
		cur.NextAttemptAt, cur.LastAttemptAt, cur.DeliveredAt = d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt
		cur.LastStatus, cur.LastError = d.LastStatus, d.LastError
		return putDoc(ctx, tx, &cur, "UPDATE webhook_deliveries SET state = $2, ended_at = $3, doc = $4 WHERE id = $1",
			int64(cur.ID), cur.State, endedAt(&cur))
	})
}

// WebhookDelivery implements storage.WebhookStore.
func (s *Store) WebhookDelivery(ctx context.Context, id uint64) (*storage.WebhookDelivery, error) {
	var d storage.WebhookDelivery
	if err := getDoc(ctx, s.pool, &d, "SELECT doc FROM webhook_deliveries WHERE id = $1", int64(id)); err != nil {
		return nil, fmt.Errorf("webhook delivery %d: %w", id, err)
	}
	return &d, nil
}

// ListWebhookDeliveries implements storage.WebhookStore.
func (s *Store) ListWebhookDeliveries(ctx context.Context, f storage.WebhookDeliveryFilter) ([]storage.WebhookDelivery, error) {
	var before any
	if f.Before > 0 {
		before = int64(f.Before)
	}
	return listDocs[storage.WebhookDelivery](ctx, s.pool, `SELECT doc FROM webhook_deliveries
		WHERE ($1 = '' OR endpoint_id = $1) AND ($2 = '' OR state = $2) AND ($3::bigint IS NULL OR id < $3)
		AND ($5 = '' OR doc->>'topic' = $5)
		ORDER BY id DESC LIMIT $4`, f.EndpointID, f.State, before, limitArg(f.Limit), f.Topic)
}

// PruneWebhookDeliveries implements storage.WebhookStore.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND ended_at < $1", before)
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}

// CountWebhookDeliveries implements storage.WebhookStore.
func (s *Store) CountWebhookDeliveries(ctx context.Context) (pending, dead int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'dead')
		FROM webhook_deliveries`).Scan(&pending, &dead)
	return pending, dead, err
}
