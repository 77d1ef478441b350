package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/storage"
)

var _ storage.PolicyStore = (*Store)(nil)

// PutEnrollmentPolicy implements storage.PolicyStore.
func (s *Store) PutEnrollmentPolicy(ctx context.Context, p *storage.EnrollmentPolicy) error {
	if p == nil || p.ID == "" {
		return errors.New("postgres: put enrollment policy: an ID is required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT nextval('enrollment_policy_gen')"); err != nil {
			return err
		}
		return putDoc(ctx, tx, p, `INSERT INTO enrollment_policies (id, doc) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, p.ID)
	})
}

// EnrollmentPolicyGeneration implements storage.PolicyStore: a sequence
// every write advances (a retried write may skip numbers, which is fine).
func (s *Store) EnrollmentPolicyGeneration(ctx context.Context) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM enrollment_policy_gen").Scan(&n)
	return uint64(n), err
}

// EnrollmentPolicies implements storage.PolicyStore.
func (s *Store) EnrollmentPolicies(ctx context.Context) ([]storage.EnrollmentPolicy, error) {
	return listDocs[storage.EnrollmentPolicy](ctx, s.pool, "SELECT doc FROM enrollment_policies ORDER BY id")
}

// DeleteEnrollmentPolicy implements storage.PolicyStore.
func (s *Store) DeleteEnrollmentPolicy(ctx context.Context, id string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM enrollment_policies WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("enrollment policy %q: %w", id, storage.ErrNotFound)
		}
		_, err = tx.Exec(ctx, "SELECT nextval('enrollment_policy_gen')")
		return err
	})
}

// ImportCorporateIdentifiers implements storage.PolicyStore.
func (s *Store) ImportCorporateIdentifiers(ctx context.Context, rows []storage.CorporateIdentifier, overwrite bool) (storage.CorporateImportResult, error) {
	for _, r := range rows {
		if r.Kind == "" || r.Value == "" {
			return storage.CorporateImportResult{}, errors.New("postgres: corporate identifier: empty kind or value")
		}
	}
	var res storage.CorporateImportResult
	err := s.write(ctx, func(tx pgx.Tx) error {
		res = storage.CorporateImportResult{Overwritten: overwrite}
		// One read of what exists, one batch of writes: a 5,000-row import
		// must not cost 10,000 round trips.
		kinds, values := make([]string, len(rows)), make([]string, len(rows))
		for i, r := range rows {
			kinds[i], values[i] = r.Kind, r.Value
		}
		existing := map[[2]string]storage.CorporateIdentifier{}
		olds, err := listDocs[storage.CorporateIdentifier](ctx, tx, `SELECT c.doc FROM corporate_ids c
			JOIN unnest($1::text[], $2::text[]) AS u(kind, value) ON c.kind = u.kind AND c.value = u.value
			FOR UPDATE OF c`, kinds, values)
		if err != nil {
			return err
		}
		for _, o := range olds {
			existing[[2]string{o.Kind, o.Value}] = o
		}
		batch := &pgx.Batch{}
		for _, r := range rows {
			old, ok := existing[[2]string{r.Kind, r.Value}]
			switch {
			case !ok:
				res.Added++
			case old.Details == r.Details:
				res.Unchanged++
				continue
			default:
				res.Conflicts = append(res.Conflicts, old)
				if !overwrite {
					continue
				}
				res.Updated++
				r.AddedAt, r.EnrolledDevice, r.EnrolledAt = old.AddedAt, old.EnrolledDevice, old.EnrolledAt
			}
			existing[[2]string{r.Kind, r.Value}] = r // a repeated row meets its first
			b, err := jsonOf(&r)
			if err != nil {
				return err
			}
			batch.Queue(`INSERT INTO corporate_ids (kind, value, doc) VALUES ($1, $2, $3)
				ON CONFLICT (kind, value) DO UPDATE SET doc = excluded.doc`, r.Kind, r.Value, b)
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	return res, err
}

// CorporateIdentifier implements storage.PolicyStore.
func (s *Store) CorporateIdentifier(ctx context.Context, kind, value string) (*storage.CorporateIdentifier, error) {
	var c storage.CorporateIdentifier
	if err := getDoc(ctx, s.pool, &c, "SELECT doc FROM corporate_ids WHERE kind = $1 AND value = $2", kind, value); err != nil {
		return nil, fmt.Errorf("corporate identifier %s %q: %w", kind, value, err)
	}
	return &c, nil
}

// ListCorporateIdentifiers implements storage.PolicyStore.
func (s *Store) ListCorporateIdentifiers(ctx context.Context, kind, prefix, after string, limit int) ([]storage.CorporateIdentifier, error) {
	// LIKE with the prefix's wildcards escaped, so "%" finds a literal %.
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
	return listDocs[storage.CorporateIdentifier](ctx, s.pool, `SELECT doc FROM corporate_ids
		WHERE ($1 = '' OR kind = $1) AND value LIKE $2 AND value > $3 ORDER BY kind, value LIMIT $4`,
		kind, like, after, limitArg(limit))
}

// DeleteCorporateIdentifier implements storage.PolicyStore.
func (s *Store) DeleteCorporateIdentifier(ctx context.Context, kind, value string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM corporate_ids WHERE kind = $1 AND value = $2", kind, value)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("corporate identifier %s %q: %w", kind, value, storage.ErrNotFound)
	}
	return nil
}

// MarkCorporateEnrolled implements storage.PolicyStore.
func (s *Store) MarkCorporateEnrolled(ctx context.Context, kind, value, deviceID string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var c storage.CorporateIdentifier
		if err := getDoc(ctx, tx, &c, "SELECT doc FROM corporate_ids WHERE kind = $1 AND value = $2 FOR UPDATE", kind, value); err != nil {
			return fmt.Errorf("corporate identifier %s %q: %w", kind, value, err)
		}
		c.EnrolledDevice, c.EnrolledAt = deviceID, at
		return putDoc(ctx, tx, &c, "UPDATE corporate_ids SET doc = $3 WHERE kind = $1 AND value = $2", kind, value)
	})
}

// ClaimDevice implements storage.PolicyStore. It first writes the user's
// row (a no-op update): repeatable read alone lets two claims each count
// the other's slot as free (write skew), and a FOR UPDATE lock would not
// help, the snapshot being taken before the wait. With the write, the
// second claim fails to serialize and write retries it on a fresh snapshot.
func (s *Store) ClaimDevice(ctx context.Context, c storage.DeviceClaim) error {
	if c.DeviceID == "" || c.Username == "" {
		return errors.New("postgres: claim device: device and user are required")
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE dir_users SET username = username WHERE username = $1", c.Username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %q: %w", c.Username, storage.ErrNotFound)
		}
		table, held := "primary_users", "SELECT count(*) FROM primary_users WHERE username = $1 AND device_id = $2"
		if c.DEM {
			table, held = "dem_devices", "SELECT count(*) FROM dem_devices WHERE username = $1 AND device_id = $2"
		}
		var n int
		if err := tx.QueryRow(ctx, held, c.Username, c.DeviceID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE username = $1", c.Username).Scan(&n); err != nil {
			return err
		}
		if n >= c.Limit {
			return fmt.Errorf("%s holds %d devices: %w", c.Username, n, storage.ErrLimitReached)
		}
		if c.DEM {
			_, err := tx.Exec(ctx, "INSERT INTO dem_devices (username, device_id) VALUES ($1, $2)", c.Username, c.DeviceID)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO primary_users (device_id, username) VALUES ($1, $2)
			ON CONFLICT (device_id) DO UPDATE SET username = excluded.username`, c.DeviceID, c.Username)
		return err
	})
}

// DEMDevices implements storage.PolicyStore.
func (s *Store) DEMDevices(ctx context.Context, username string) ([]string, error) {
	return strings1(ctx, s.pool, "SELECT device_id FROM dem_devices WHERE username = $1 ORDER BY device_id", username)
}
