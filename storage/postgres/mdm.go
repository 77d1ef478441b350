package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

var _ storage.MDMStore = (*Store)(nil)

// userChannels matches the user channels of the device $1.
const userChannels = "starts_with(id, $1 || '" + mdm.ChannelSeparator + "')"

// lastSeenColumn is the enrollments.last_seen value of t: NULL for never.
func lastSeenColumn(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func putEnrollment(ctx context.Context, q querier, e *storage.Enrollment) error {
	return putDoc(ctx, q, e, `INSERT INTO enrollments (id, device_id, enrolled, generation, last_seen, doc) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, enrolled = excluded.enrolled,
			generation = excluded.generation, last_seen = excluded.last_seen, doc = excluded.doc`,
		e.ID, e.DeviceID, e.Enrolled, int64(e.Generation), lastSeenColumn(e.LastSeen))
}

func getEnrollment(ctx context.Context, q querier, id string) (*storage.Enrollment, error) {
	var e storage.Enrollment
	if err := getDoc(ctx, q, &e, "SELECT doc FROM enrollments WHERE id = $1", id); err != nil {
		return nil, err
	}
	return &e, nil
}

// updateEnrollments applies fn to the enrollments a WHERE clause selects.
func updateEnrollments(ctx context.Context, tx pgx.Tx, where string, arg string, fn func(*storage.Enrollment)) error {
	es, err := listDocs[storage.Enrollment](ctx, tx, "SELECT doc FROM enrollments WHERE "+where+" ORDER BY id FOR UPDATE", arg)
	if err != nil {
		return err
	}
	for i := range es {
		fn(&es[i])
		if err := putEnrollment(ctx, tx, &es[i]); err != nil {
			return err
		}
	}
	return nil
}

// jsonTime is t as a JSON value, for patching a document's time field in SQL
// with the same encoding Go gives it.
func jsonTime(t time.Time) []byte {
	b, _ := t.MarshalJSON()
	if b == nil {
		b = []byte(`"0001-01-01T00:00:00Z"`)
	}
	return b
}

// Authenticate implements storage.CheckinStore.
func (s *Store) Authenticate(ctx context.Context, rec *storage.AuthenticateRecord) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		e := rec.Enrollment
		old, err := getEnrollment(ctx, tx, e.ID)
		if errors.Is(err, storage.ErrNotFound) {
			old = &storage.Enrollment{}
		} else if err != nil {
			return err
		}
		if old.CertHash != rec.PrevCertHash {
			return fmt.Errorf("%w: device %s is now bound to another certificate", storage.ErrConflict, e.ID)
		}
		var owner string
		err = tx.QueryRow(ctx, "SELECT device_id FROM device_fold WHERE fold = $1", mdm.FoldDeviceID(e.ID)).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, "INSERT INTO device_fold (fold, device_id) VALUES ($1, $2)", mdm.FoldDeviceID(e.ID), e.ID); err != nil {
				return err
			}
		case err != nil:
			return err
		case owner != e.ID:
			return fmt.Errorf("%w: device %s is enrolled as %s", storage.ErrConflict, e.ID, owner)
		}
		var bound string
		err = tx.QueryRow(ctx, "SELECT device_id FROM cert_binding WHERE cert_hash = $1", e.CertHash).Scan(&bound)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && bound != e.ID {
			return fmt.Errorf("%w: certificate is bound to another device", storage.ErrConflict)
		}
		if old.CertHash != "" && old.CertHash != e.CertHash {
			if _, err := tx.Exec(ctx, "DELETE FROM cert_binding WHERE cert_hash = $1", old.CertHash); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cert_binding (cert_hash, device_id) VALUES ($1, $2)
			ON CONFLICT (cert_hash) DO UPDATE SET device_id = excluded.device_id`, e.CertHash, e.ID); err != nil {
			return err
		}
		e.Generation = old.Generation + 1
		e.Enrolled = true
		if err := putEnrollment(ctx, tx, &e); err != nil {
			return err
		}
		// The user channels of the old enrollment end with it.
		err = updateEnrollments(ctx, tx, userChannels, e.ID, func(u *storage.Enrollment) {
			u.Enrolled, u.Token, u.PushMagic = false, nil, ""
		})
		if err != nil {
			return err
		}
		return supersedeDevice(ctx, tx, e.ID, s.now())
	})
}

// Rebind implements storage.CheckinStore.
func (s *Store) Rebind(ctx context.Context, rec *storage.RebindRecord) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		var e storage.Enrollment
		if err := getDoc(ctx, tx, &e, "SELECT doc FROM enrollments WHERE id = $1 FOR UPDATE", rec.DeviceID); err != nil {
			return err
		}
		switch {
		case !e.Enrolled:
			return fmt.Errorf("%w: device %s is not enrolled", storage.ErrConflict, rec.DeviceID)
		case e.CertHash != rec.PrevCertHash:
			return fmt.Errorf("%w: device %s is now bound to another certificate", storage.ErrConflict, rec.DeviceID)
		}
		var bound string
		err := tx.QueryRow(ctx, "SELECT device_id FROM cert_binding WHERE cert_hash = $1", rec.CertHash).Scan(&bound)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err == nil && bound != rec.DeviceID {
			return fmt.Errorf("%w: certificate is bound to another device", storage.ErrConflict)
		}
		if rec.PrevCertHash != "" && rec.PrevCertHash != rec.CertHash {
			if _, err := tx.Exec(ctx, "DELETE FROM cert_binding WHERE cert_hash = $1", rec.PrevCertHash); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO cert_binding (cert_hash, device_id) VALUES ($1, $2)
			ON CONFLICT (cert_hash) DO UPDATE SET device_id = excluded.device_id`, rec.CertHash, rec.DeviceID); err != nil {
			return err
		}
		e.CertHash, e.CertSerial, e.CertNotAfter = rec.CertHash, rec.CertSerial, rec.CertNotAfter
		if rec.Facts != nil {
			e.Facts = rec.Facts
		}
		if rec.Renewal != nil {
			e.Renewal = rec.Renewal
		}
		return putEnrollment(ctx, tx, &e)
	})
}

// supersedeDevice ends every queued or deferred command of a device and its
// user channels: they belonged to the previous enrollment.
func supersedeDevice(ctx context.Context, tx pgx.Tx, deviceID string, now time.Time) error {
	_, err := tx.Exec(ctx, `WITH gone AS (
			DELETE FROM queue WHERE channel = $1 OR starts_with(channel, $1 || '`+mdm.ChannelSeparator+`')
			RETURNING uuid, channel)
		UPDATE targets t SET doc = t.doc || jsonb_build_object('status', $2::text, 'updated_at', $3::jsonb)
		FROM gone WHERE t.uuid = gone.uuid AND t.channel = gone.channel`,
		deviceID, string(storage.Superseded), jsonTime(now))
	return err
}

// Enrollment implements storage.CheckinStore.
func (s *Store) Enrollment(ctx context.Context, id string) (*storage.Enrollment, error) {
	e, err := getEnrollment(ctx, s.pool, id)
	if !errors.Is(err, storage.ErrNotFound) {
		return e, err
	}
	// Another spelling of a hex device ID names the same device.
	dev, user, isUser := strings.Cut(id, mdm.ChannelSeparator)
	var owner string
	ferr := s.pool.QueryRow(ctx, "SELECT device_id FROM device_fold WHERE fold = $1", mdm.FoldDeviceID(dev)).Scan(&owner)
	if errors.Is(ferr, pgx.ErrNoRows) || ferr == nil && owner == dev {
		return nil, err
	} else if ferr != nil {
		return nil, ferr
	}
	k := owner
	if isUser {
		k += mdm.ChannelSeparator + user
	}
	return getEnrollment(ctx, s.pool, k)
}

// DeviceForCert implements storage.CheckinStore.
func (s *Store) DeviceForCert(ctx context.Context, certHash string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, "SELECT device_id FROM cert_binding WHERE cert_hash = $1", certHash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", storage.ErrNotFound
	}
	return id, err
}

// UpdateEnrollment implements storage.CheckinStore.
func (s *Store) UpdateEnrollment(ctx context.Context, id string, create *storage.Enrollment, fn func(*storage.Enrollment) error) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		e, err := getEnrollment(ctx, tx, id)
		if errors.Is(err, storage.ErrNotFound) && create != nil {
			c := *create
			e = &c
		} else if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		e.ID = id
		return putEnrollment(ctx, tx, e)
	})
}

// CheckOut implements storage.CheckinStore.
func (s *Store) CheckOut(ctx context.Context, deviceID string, at time.Time) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		if _, err := getEnrollment(ctx, tx, deviceID); err != nil {
			return err
		}
		mark := func(e *storage.Enrollment) { e.Enrolled, e.CheckedOutAt = false, at }
		return updateEnrollments(ctx, tx, "id = $1 OR "+userChannels, deviceID, mark)
	})
}

// TouchLastSeen implements storage.CheckinStore.
func (s *Store) TouchLastSeen(ctx context.Context, seen map[string]time.Time) error {
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids) // one lock order for every writer
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, id := range ids {
			e, err := getEnrollment(ctx, tx, id)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if at := seen[id]; at.After(e.LastSeen) {
				e.LastSeen = at
				if err := putEnrollment(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ListEnrollments implements storage.CheckinStore.
func (s *Store) ListEnrollments(ctx context.Context, after string, limit int) ([]storage.Enrollment, error) {
	return listDocs[storage.Enrollment](ctx, s.pool, "SELECT doc FROM enrollments WHERE id > $1 ORDER BY id LIMIT $2", after, limitArg(limit))
}

// Enqueue implements storage.CommandQueue. It costs a fixed number of
// statements whatever the number of channels.
func (s *Store) Enqueue(ctx context.Context, cmd *storage.Command, channels []string) error {
	cmdDoc, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("postgres: encode command: %w", err)
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO commands (uuid, doc, raw) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", cmd.UUID, cmdDoc, cmd.Raw)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: command %s already exists", storage.ErrConflict, cmd.UUID)
		}
		// Share-lock the enrollments: a concurrent CheckOut or Authenticate
		// of one of them waits, or makes this write run again.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM enrollments WHERE id = ANY($1) ORDER BY id FOR SHARE", channels); err != nil {
			return err
		}
		// Each channel's enrollment and its device's generation, in list order.
		rows, err := tx.Query(ctx, `SELECT c.id, e.enrolled,
				coalesce(d.generation, e.generation, 0)
			FROM unnest($1::text[]) WITH ORDINALITY AS c(id, ord)
			LEFT JOIN enrollments e ON e.id = c.id
			LEFT JOIN enrollments d ON d.id = e.device_id AND e.device_id <> e.id
			ORDER BY c.ord`, channels)
		if err != nil {
			return err
		}
		var chans []string
		var gens []uint64
		seen := make(map[string]bool, len(channels))
		for rows.Next() {
			var id string
			var enrolled *bool
			var gen int64
			if err := rows.Scan(&id, &enrolled, &gen); err != nil {
				rows.Close()
				return err
			}
			if enrolled == nil || !*enrolled {
				rows.Close()
				return fmt.Errorf("channel %s is not enrolled: %w", id, storage.ErrNotFound)
			}
			if seen[id] {
				continue // listed twice
			}
			seen[id] = true
			chans = append(chans, id)
			gens = append(gens, uint64(gen))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(chans) == 0 {
			return nil
		}
		var seqs []int64
		if err := tx.QueryRow(ctx, "SELECT array_agg(nextval('queue_seq') ORDER BY g) FROM generate_series(1, $1) g", len(chans)).Scan(&seqs); err != nil {
			return err
		}
		targets := make([][]byte, len(chans))
		for i, ch := range chans {
			t := storage.Target{ChannelID: ch, Status: storage.Queued, QueuedAt: cmd.CreatedAt, UpdatedAt: cmd.CreatedAt,
				Generation: gens[i], Seq: uint64(seqs[i])}
			if targets[i], err = json.Marshal(&t); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO targets (uuid, channel, doc) SELECT $1, c, d FROM unnest($2::text[], $3::jsonb[]) AS u(c, d)`,
			cmd.UUID, chans, targets); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO queue (channel, seq, uuid) SELECT c, q, $1 FROM unnest($2::text[], $3::bigint[]) AS u(c, q)`,
			cmd.UUID, chans, seqs)
		return err
	})
}

// headSQL selects the first command of channel $1 that is not deferred.
const headSQL = "SELECT uuid FROM queue WHERE channel = $1 AND NOT deferred ORDER BY seq LIMIT 1"

// Next implements storage.CommandQueue: one indexed read, and a write only
// the first time a command is offered.
func (s *Store) Next(ctx context.Context, channel string) (*storage.Command, error) {
	var cmdDoc, raw, targetDoc []byte
	err := s.pool.QueryRow(ctx, `SELECT c.doc, c.raw, t.doc FROM (`+headSQL+`) h
		JOIN commands c ON c.uuid = h.uuid
		JOIN targets t ON t.uuid = h.uuid AND t.channel = $1`, channel).Scan(&cmdDoc, &raw, &targetDoc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cmd := new(storage.Command)
	var t storage.Target
	if err := json.Unmarshal(cmdDoc, cmd); err != nil {
		return nil, fmt.Errorf("postgres: decode command: %w", err)
	}
	if err := json.Unmarshal(targetDoc, &t); err != nil {
		return nil, fmt.Errorf("postgres: decode target: %w", err)
	}
	cmd.Raw = raw
	if !t.OfferedAt.IsZero() {
		return cmd, nil
	}
	// First offer: recorded so that only offered commands can be answered.
	// (The head may have moved since the read; offerHead marks whatever is
	// there, which is what the next Next returns.)
	if err := s.write(ctx, func(tx pgx.Tx) error { return offerHead(ctx, tx, channel, s.now()) }); err != nil {
		return nil, err
	}
	return cmd, nil
}

// offerHead marks the command now at the head of a channel's queue
// offered, in the caller's write (see the bbolt backend: StoreResult does
// it so Next need not write again for the command it hands out next).
func offerHead(ctx context.Context, tx pgx.Tx, channel string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE targets t SET doc = t.doc || jsonb_build_object('offered_at', $2::jsonb)
		FROM (`+headSQL+`) h WHERE t.uuid = h.uuid AND t.channel = $1 AND t.doc->'offered_at' IS NULL`,
		channel, jsonTime(at))
	return err
}

func getTarget(ctx context.Context, q querier, uuid, channel string) (*storage.Target, error) {
	var t storage.Target
	if err := getDoc(ctx, q, &t, "SELECT doc FROM targets WHERE uuid = $1 AND channel = $2 FOR UPDATE", uuid, channel); err != nil {
		return nil, err
	}
	return &t, nil
}

func putTarget(ctx context.Context, q querier, uuid string, t *storage.Target) error {
	return putDoc(ctx, q, t, "UPDATE targets SET doc = $3 WHERE uuid = $1 AND channel = $2", uuid, t.ChannelID)
}

// StoreResult implements storage.CommandQueue.
func (s *Store) StoreResult(ctx context.Context, r *storage.Result) (bool, error) {
	var dup bool
	err := s.write(ctx, func(tx pgx.Tx) error {
		dup = false
		t, err := getTarget(ctx, tx, r.CommandUUID, r.ChannelID)
		if err != nil {
			return err
		}
		var cmd storage.Command
		if err := getDoc(ctx, tx, &cmd, "SELECT doc FROM commands WHERE uuid = $1", r.CommandUUID); err != nil {
			return err
		}
		r.RequestType = cmd.RequestType
		if t.OfferedAt.IsZero() {
			return fmt.Errorf("command %s was never offered to %s: %w", r.CommandUUID, r.ChannelID, storage.ErrNotFound)
		}
		if t.ResultCount > 0 && (t.Status == r.Status || answered(t.Status)) {
			dup = true
			return nil
		}
		if err := putDoc(ctx, tx, r, "INSERT INTO results (uuid, channel, n, doc) VALUES ($1, $2, $3, $4)",
			r.CommandUUID, r.ChannelID, t.ResultCount); err != nil {
			return err
		}
		t.ResultCount++
		t.Status, t.UpdatedAt = r.Status, r.At
		if err := putTarget(ctx, tx, r.CommandUUID, t); err != nil {
			return err
		}
		if r.Effect != nil {
			if e := r.Effect(cmd.RequestType); e != nil {
				if err := putDeviceReport(ctx, tx, r.ChannelID, e); err != nil {
					return err
				}
			}
		}
		if r.Status == storage.NotNow {
			_, err = tx.Exec(ctx, "UPDATE queue SET deferred = true WHERE channel = $1 AND seq = $2", r.ChannelID, int64(t.Seq))
		} else {
			_, err = tx.Exec(ctx, "DELETE FROM queue WHERE channel = $1 AND seq = $2", r.ChannelID, int64(t.Seq))
		}
		if err != nil {
			return err
		}
		return offerHead(ctx, tx, r.ChannelID, r.At)
	})
	return dup, err
}

// answered reports whether a status is the device's final answer.
func answered(st storage.TargetStatus) bool {
	return st == storage.Acknowledged || st == storage.Error || st == storage.CommandFormatError
}

// Defer implements storage.CommandQueue.
func (s *Store) Defer(ctx context.Context, channel, uuid string) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		t, err := getTarget(ctx, tx, uuid, channel)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE queue SET deferred = true WHERE channel = $1 AND seq = $2", channel, int64(t.Seq))
		return err
	})
}

// Undefer implements storage.CommandQueue.
func (s *Store) Undefer(ctx context.Context, channel string) error {
	var any bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM queue WHERE channel = $1 AND deferred)", channel).Scan(&any); err != nil || !any {
		return err
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		// Queued again: a later NotNow is a new answer, not a repeat.
		_, err := tx.Exec(ctx, `WITH back AS (UPDATE queue SET deferred = false WHERE channel = $1 AND deferred RETURNING uuid)
			UPDATE targets t SET doc = t.doc || jsonb_build_object('status', $2::text, 'updated_at', $3::jsonb)
			FROM back WHERE t.uuid = back.uuid AND t.channel = $1`, channel, string(storage.Queued), jsonTime(s.now()))
		return err
	})
}

// IdleNext implements storage.CommandQueue.
func (s *Store) IdleNext(ctx context.Context, channel string) (*storage.Command, error) {
	if err := s.Undefer(ctx, channel); err != nil {
		return nil, err
	}
	return s.Next(ctx, channel)
}

// Command implements storage.CommandQueue.
func (s *Store) Command(ctx context.Context, uuid string) (*storage.Command, []storage.Target, error) {
	var cmd storage.Command
	var targets []storage.Target
	err := s.read(ctx, func(tx pgx.Tx) error {
		var raw []byte
		if err := getDoc(ctx, tx, &cmd, "SELECT doc FROM commands WHERE uuid = $1", uuid); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT raw FROM commands WHERE uuid = $1", uuid).Scan(&raw); err != nil {
			return err
		}
		cmd.Raw = raw
		var err error
		targets, err = listDocs[storage.Target](ctx, tx, "SELECT doc FROM targets WHERE uuid = $1 ORDER BY channel", uuid)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &cmd, targets, nil
}

// Results implements storage.CommandQueue.
func (s *Store) Results(ctx context.Context, uuid string) ([]storage.Result, error) {
	return listDocs[storage.Result](ctx, s.pool, "SELECT doc FROM results WHERE uuid = $1 ORDER BY channel, n", uuid)
}

// Cancel implements storage.CommandQueue.
func (s *Store) Cancel(ctx context.Context, uuid string) (int, error) {
	var n int
	err := s.write(ctx, func(tx pgx.Tx) error {
		n = 0
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM commands WHERE uuid = $1", uuid).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		} else if err != nil {
			return err
		}
		targets, err := listDocs[storage.Target](ctx, tx, "SELECT doc FROM targets WHERE uuid = $1 ORDER BY channel FOR UPDATE", uuid)
		if err != nil {
			return err
		}
		now := s.now()
		for i := range targets {
			t := &targets[i]
			if t.Status != storage.Queued && t.Status != storage.NotNow {
				continue
			}
			if _, err := tx.Exec(ctx, "DELETE FROM queue WHERE channel = $1 AND seq = $2", t.ChannelID, int64(t.Seq)); err != nil {
				return err
			}
			t.Status, t.UpdatedAt = storage.Canceled, now
			if err := putTarget(ctx, tx, uuid, t); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// QueueDepth implements storage.CommandQueue.
func (s *Store) QueueDepth(ctx context.Context, channel string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM queue WHERE channel = $1", channel).Scan(&n)
	return n, err
}

// Setting implements storage.SettingsStore.
func (s *Store) Setting(ctx context.Context, k string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT value FROM settings WHERE key = $1", k).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	return v, err
}

// PutSetting implements storage.SettingsStore.
func (s *Store) PutSetting(ctx context.Context, k string, v []byte) error {
	if v == nil {
		v = []byte{}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", k, v)
		return err
	})
}

// PushTargets implements storage.PushStore.
func (s *Store) PushTargets(ctx context.Context, ids []string) ([]storage.PushTarget, error) {
	return listDocs[storage.PushTarget](ctx, s.pool, `SELECT e.doc FROM unnest($1::text[]) WITH ORDINALITY AS c(id, ord)
		JOIN enrollments e ON e.id = c.id ORDER BY c.ord`, ids)
}

// RecordPushResults implements storage.PushStore.
func (s *Store) RecordPushResults(ctx context.Context, results []storage.PushResult) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		for _, r := range results {
			e, err := getEnrollment(ctx, tx, r.ChannelID)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			e.LastPushAt, e.LastPushSent, e.LastPushError = r.At, r.Sent, r.Reason
			if r.TokenInvalid && bytes.Equal(e.Token, r.Token) {
				e.TokenInvalid = true
			}
			if err := putEnrollment(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Counts implements storage.CommandQueue.
func (s *Store) Counts(ctx context.Context) (queued, enrolled int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM queue),
		(SELECT count(*) FROM enrollments WHERE enrolled AND device_id = id)`).Scan(&queued, &enrolled)
	return queued, enrolled, err
}
