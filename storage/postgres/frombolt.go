package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/orchardmdm/orchard/storage"
)

// ErrNotEmpty: the target database already holds records.
var ErrNotEmpty = errors.New("the PostgreSQL database is not empty")

// MigrationCount is how many records of one table a migration copied.
type MigrationCount struct {
	Table  string
	Source int // records read from bbolt
	Copied int // rows in PostgreSQL after the copy
}

// tables lists every table the schema keeps records in.
var tables = []string{"enrollments", "device_fold", "cert_binding", "commands", "targets", "queue", "results",
	"settings", "certs", "challenges", "invitations", "configurator_profiles", "configurator_serials",
	"inventory", "device_reports", "dep_tokens", "dep_sync", "dep_devices", "dep_profiles", "enrollment_failures", "scep_failures",
	"admins", "api_tokens", "audit", "profiles", "profile_versions", "profile_states",
	"dir_users", "dir_groups", "dir_group_members", "primary_users",
	"ddm_declarations", "ddm_sets", "ddm_status", "web_sessions",
	"categories", "device_categories",
	"webhooks", "webhook_deliveries",
	"enrollment_policies", "corporate_ids", "dem_devices",
	"terms", "terms_versions", "terms_acceptances", "enrollment_sessions"}

// derivedBuckets are bbolt indexes the PostgreSQL schema rebuilds from the
// records themselves (as indexed columns), so they are not copied.
var derivedBuckets = map[string]bool{
	"cert_serials": true, "challenge_refs": true, "invitation_tokens": true,
	"configurator_profile_serials": true, "command_raw": true, // joined into commands
	"deferred":         true, // copied with queue
	"api_token_hashes": true,
	"channel_profiles": true,                       // the per-channel index of profile_states
	"user_groups":      true, "user_devices": true, // the other side of dir_group_members and primary_users
	"category_devices":             true, // the other side of device_categories
	"channel_history":              true, // the targets_channel_seq index of targets
	"command_log":                  true, // the targets_seq index of targets
	"webhook_pending":              true, // the partial index of webhook_deliveries
	"user_terms":                   true, // the other side of terms_acceptances
	"enrollment_sessions_by_start": true, // started_at is a column of enrollment_sessions
	"inventory_search.v1":          true, // the search column of inventory
}

// row is one record for a table: its column values in table order.
type row []any

// boltMapping turns each bbolt bucket's records into rows. It knows the
// bbolt backend's layout (see the bucket comments in storage/bolt); a
// bucket it does not know fails the migration, so a record kind added
// later cannot be left behind in silence.
var boltMapping = map[string]struct {
	table   string
	columns []string
	rows    func(tx *bolt.Tx, k, v []byte) (row, error)
}{
	"enrollments": {"enrollments", []string{"id", "device_id", "enrolled", "generation", "last_seen", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var e struct {
			DeviceID   string    `json:"device_id"`
			Enrolled   bool      `json:"enrolled"`
			Generation uint64    `json:"generation"`
			LastSeen   time.Time `json:"last_seen"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, err
		}
		return row{string(k), e.DeviceID, e.Enrolled, int64(e.Generation), lastSeenColumn(e.LastSeen), v}, nil
	}},
	"device_fold":  {"device_fold", []string{"fold", "device_id"}, pair},
	"cert_binding": {"cert_binding", []string{"cert_hash", "device_id"}, pair},
	"commands": {"commands", []string{"uuid", "doc", "raw"}, func(tx *bolt.Tx, k, v []byte) (row, error) {
		raw := tx.Bucket([]byte("command_raw")).Get(k)
		if raw == nil {
			return nil, fmt.Errorf("command %s has no plist", k)
		}
		return row{string(k), v, bytes.Clone(raw)}, nil
	}},
	"targets": {"targets", []string{"uuid", "channel", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		uuid, channel, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{uuid, channel, v}, nil
	}},
	"queue": {"queue", []string{"channel", "seq", "uuid", "deferred"}, queueRow(false)},
	"results": {"results", []string{"uuid", "channel", "n", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) != 3 || len(parts[2]) != 8 {
			return nil, errors.New("bad key")
		}
		return row{string(parts[0]), string(parts[1]), int32(binary.BigEndian.Uint64(parts[2])), v}, nil
	}},
	"settings": {"settings", []string{"key", "value"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		return row{string(k), bytes.Clone(v)}, nil
	}},
	"certs":                 {"certs", []string{"hash", "serial", "doc"}, keyField("serial")},
	"challenges":            {"challenges", []string{"id", "ref", "doc"}, keyField("ref")},
	"invitations":           {"invitations", []string{"id", "token_hash", "doc"}, keyField("token_hash")},
	"configurator_profiles": {"configurator_profiles", []string{"id", "doc"}, keyDoc},
	"configurator_serials":  {"configurator_serials", []string{"serial", "profile_id", "doc"}, keyField("profile_id")},
	"inventory": {"inventory", []string{"device_id", "search", "platform", "os_version", "retired", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var inv storage.DeviceInventory
		if err := json.Unmarshal(v, &inv); err != nil {
			return nil, err
		}
		inv.DeviceID = string(k)
		return append(row(inventoryColumns(&inv)), v), nil
	}},
	"device_reports": {"device_reports", []string{"channel", "kind", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		channel, kind, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{channel, kind, v}, nil
	}},
	"enrollment_failures": {"enrollment_failures", []string{"id", "doc"}, keyDoc},
	"scep_failures":       {"scep_failures", []string{"id", "doc"}, keyDoc},
	"users":               {"dir_users", []string{"username", "doc"}, keyDoc},
	"groups":              {"dir_groups", []string{"name", "doc"}, keyDoc},
	"group_members": {"dir_group_members", []string{"group_name", "username"}, func(_ *bolt.Tx, k, _ []byte) (row, error) {
		group, user, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{group, user}, nil
	}},
	"primary_user": {"primary_users", []string{"device_id", "username"}, pair},
	"admins":       {"admins", []string{"username", "doc"}, keyDoc},
	"api_tokens": {"api_tokens", []string{"id", "admin", "hash", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var t struct {
			Admin string `json:"admin"`
			Hash  []byte `json:"hash"`
		}
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		return row{string(k), t.Admin, t.Hash, v}, nil
	}},
	"audit": {"audit", []string{"id", "at", "actor", "action", "target", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var e struct {
			Time   time.Time `json:"time"`
			Actor  string    `json:"actor"`
			Action string    `json:"action"`
			Target string    `json:"target"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, err
		}
		return row{string(k), e.Time, e.Actor, e.Action, e.Target, v}, nil
	}},
	"profiles": {"profiles", []string{"id", "doc"}, keyDoc},
	"profile_versions": {"profile_versions", []string{"profile_id", "version", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		id, ver, ok := strings.Cut(string(k), "\x00")
		n, err := strconv.Atoi(ver)
		if !ok || err != nil {
			return nil, errors.New("bad key")
		}
		return row{id, int32(n), v}, nil
	}},
	"profile_states": {"profile_states", []string{"profile_id", "channel", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		id, channel, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{id, channel, v}, nil
	}},
	"ddm_declarations": {"ddm_declarations", []string{"id", "doc"}, keyDoc},
	"ddm_sets":         {"ddm_sets", []string{"name", "doc"}, keyDoc},
	"ddm_status":       {"ddm_status", []string{"channel", "doc"}, keyDoc},
	"webhooks":         {"webhooks", []string{"id", "doc"}, keyDoc},
	"webhook_deliveries": {"webhook_deliveries", []string{"id", "endpoint_id", "state", "created_at", "ended_at", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var d storage.WebhookDelivery
		if err := json.Unmarshal(v, &d); err != nil || len(k) != 8 {
			return nil, errors.New("bad record")
		}
		return row{int64(binary.BigEndian.Uint64(k)), d.EndpointID, d.State, d.CreatedAt, endedAt(&d), v}, nil
	}},
	"dep_tokens":          {"dep_tokens", []string{"id", "doc"}, keyDoc},
	"dep_sync":            {"dep_sync", []string{"token_id", "doc"}, keyDoc},
	"enrollment_policies": {"enrollment_policies", []string{"id", "doc"}, keyDoc},
	"corporate_ids": {"corporate_ids", []string{"kind", "value", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		kind, value, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{kind, value, v}, nil
	}},
	"dem_devices": {"dem_devices", []string{"username", "device_id"}, func(_ *bolt.Tx, k, _ []byte) (row, error) {
		user, device, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{user, device}, nil
	}},
	"dep_devices": {"dep_devices", []string{"serial", "token_id", "status", "profile_id", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var d struct {
			TokenID   string `json:"token_id"`
			Status    string `json:"status"`
			ProfileID string `json:"profile_id"`
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, err
		}
		return row{string(k), d.TokenID, d.Status, d.ProfileID, v}, nil
	}},
	"dep_profiles": {"dep_profiles", []string{"token_id", "id", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		token, id, ok := strings.Cut(string(k), "/")
		if !ok {
			return nil, errors.New("bad key")
		}
		return row{token, id, v}, nil
	}},
	"web_sessions": {"web_sessions", []string{"kind", "id_hash", "subject", "idle_expires_at", "expires_at", "doc"}, func(_ *bolt.Tx, _, v []byte) (row, error) {
		var ws struct {
			Kind          string    `json:"kind"`
			IDHash        []byte    `json:"id_hash"`
			Subject       string    `json:"subject"`
			IdleExpiresAt time.Time `json:"idle_expires_at"`
			ExpiresAt     time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal(v, &ws); err != nil {
			return nil, err
		}
		return row{ws.Kind, ws.IDHash, ws.Subject, ws.IdleExpiresAt, ws.ExpiresAt, v}, nil
	}},
	"categories":      {"categories", []string{"name", "doc"}, keyDoc},
	"device_category": {"device_categories", []string{"device_id", "category"}, pair},
	"terms":           {"terms", []string{"name", "doc"}, keyDoc},
	"terms_versions": {"terms_versions", []string{"name", "version", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		if len(k) < 10 || k[len(k)-9] != 0 {
			return nil, errors.New("bad key")
		}
		return row{string(k[:len(k)-9]), int32(binary.BigEndian.Uint64(k[len(k)-8:])), v}, nil
	}},
	"terms_acceptances": {"terms_acceptances", []string{"document", "username", "version", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		doc, rest, ok := strings.Cut(string(k), "\x00")
		if !ok || len(rest) < 10 || rest[len(rest)-9] != 0 {
			return nil, errors.New("bad key")
		}
		return row{doc, rest[:len(rest)-9], int32(binary.BigEndian.Uint64([]byte(rest[len(rest)-8:]))), v}, nil
	}},
	"enrollment_sessions": {"enrollment_sessions", []string{"id", "started_at", "doc"}, func(_ *bolt.Tx, k, v []byte) (row, error) {
		var s struct {
			StartedAt time.Time `json:"started_at"`
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		return row{string(k), s.StartedAt, v}, nil
	}},
}

func pair(_ *bolt.Tx, k, v []byte) (row, error) { return row{string(k), string(v)}, nil }

func keyDoc(_ *bolt.Tx, k, v []byte) (row, error) { return row{string(k), v}, nil }

// keyField makes rows of the key, one string field of the document, and
// the document.
func keyField(field string) func(*bolt.Tx, []byte, []byte) (row, error) {
	return func(_ *bolt.Tx, k, v []byte) (row, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, err
		}
		var f string
		if raw, ok := m[field]; ok {
			if err := json.Unmarshal(raw, &f); err != nil {
				return nil, err
			}
		}
		return row{string(k), f, v}, nil
	}
}

func queueRow(deferred bool) func(*bolt.Tx, []byte, []byte) (row, error) {
	return func(_ *bolt.Tx, k, v []byte) (row, error) {
		if len(k) < 9 || k[len(k)-9] != 0 {
			return nil, errors.New("bad key")
		}
		return row{string(k[:len(k)-9]), int64(binary.BigEndian.Uint64(k[len(k)-8:])), string(v), deferred}, nil
	}
}

// CopyFromBolt copies every record of the bbolt database at path into the
// store's database in one transaction, then compares the row count of
// every table with the records read: on any difference nothing is
// committed. Sealed secrets are copied as the sealed bytes they are; the
// data dir's secret.key opens them on either backend. Unless overwrite is
// set it refuses (ErrNotEmpty) a database that already holds records;
// with it, those records are deleted first, in the same transaction.
func (s *Store) CopyFromBolt(ctx context.Context, path string, overwrite bool) ([]MigrationCount, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s (stop orchard serve on it first): %w", path, err)
	}
	defer db.Close()
	var counts []MigrationCount
	err = db.View(func(btx *bolt.Tx) error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
			counts = nil
			if err := prepareTarget(ctx, tx, overwrite); err != nil {
				return err
			}
			source := map[string]int{}
			var names []string
			if err := btx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			}); err != nil {
				return err
			}
			slices.Sort(names)
			for _, name := range names {
				if derivedBuckets[name] {
					continue
				}
				m, ok := boltMapping[name]
				if !ok {
					return fmt.Errorf("bbolt bucket %q is unknown to this migration: upgrade orchard or report it", name)
				}
				rows, err := bucketRows(btx, name, m.rows)
				if err != nil {
					return err
				}
				if name == "queue" {
					more, err := bucketRows(btx, "deferred", queueRow(true))
					if err != nil {
						return err
					}
					rows = append(rows, more...)
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{m.table}, m.columns, pgx.CopyFromRows(toAny(rows))); err != nil {
					return fmt.Errorf("copy %s: %w", name, err)
				}
				source[m.table] = len(rows)
			}
			// The sequences carry on from bbolt's bucket sequences.
			for bucket, seq := range map[string]string{"queue": "queue_seq", "enrollment_failures": "enrollment_failure_seq", "scep_failures": "scep_failure_seq", "audit": "audit_seq",
				"webhook_deliveries": "webhook_delivery_seq"} {
				if b := btx.Bucket([]byte(bucket)); b != nil && b.Sequence() > 0 {
					if _, err := tx.Exec(ctx, "SELECT setval($1, $2)", seq, int64(b.Sequence())); err != nil {
						return err
					}
				}
			}
			for _, table := range tables {
				var n int
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
					return err
				}
				counts = append(counts, MigrationCount{Table: table, Source: source[table], Copied: n})
				if n != source[table] {
					return fmt.Errorf("%s: read %d records from bbolt but PostgreSQL holds %d rows; nothing was committed", table, source[table], n)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate from bbolt: %w", err)
	}
	return counts, nil
}

func prepareTarget(ctx context.Context, tx pgx.Tx, overwrite bool) error {
	for _, table := range tables {
		var any bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{table}.Sanitize()+")").Scan(&any); err != nil {
			return err
		}
		if !any {
			continue
		}
		if !overwrite {
			return fmt.Errorf("%w (table %s has rows); pass --overwrite to replace its records", ErrNotEmpty, table)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+pgx.Identifier{table}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

func bucketRows(btx *bolt.Tx, name string, fn func(*bolt.Tx, []byte, []byte) (row, error)) ([]row, error) {
	b := btx.Bucket([]byte(name))
	if b == nil {
		return nil, nil
	}
	var out []row
	err := b.ForEach(func(k, v []byte) error {
		r, err := fn(btx, k, v)
		if err != nil {
			return fmt.Errorf("bbolt bucket %s, key %q: %w", name, k, err)
		}
		// bbolt memory is only valid inside the transaction, which spans the copy.
		out = append(out, r)
		return nil
	})
	return out, err
}

func toAny(rows []row) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}
