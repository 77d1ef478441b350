// Package postgres is Orchard's PostgreSQL storage backend, for several
// replicas sharing one database.
//
// Every write is one REPEATABLE READ transaction that locks the rows its
// decision rests on (FOR UPDATE, FOR SHARE, or an advisory lock where the
// row may not exist yet); a write that loses a race gets a serialization
// failure, a deadlock or a duplicate key from PostgreSQL and runs again
// from the start (the contracts already let fn run more than once). So
// "in one write" holds across replicas without a coordinator. A write that
// returned nil is committed: fsync and synchronous_commit stay on, and
// PostgreSQL's WAL flush already groups the commits of concurrent
// transactions into one fsync (group commit without a batcher of ours).
//
// Not SERIALIZABLE: on small tables its predicate locks cover whole
// relations, and writes to different devices then fail each other.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchardmdm/orchard/storage"
)

// Store is the PostgreSQL backend. Its methods are safe for concurrent use,
// also by several processes on one database.
type Store struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	notes []string
}

var _ storage.Store = (*Store)(nil)

// Options tune Open. The zero value is the production default.
type Options struct {
	// Now is the clock for the times the store stamps itself; default time.Now.
	Now func() time.Time
	// MaxConns bounds the connection pool (default: pool_max_conns in the
	// DSN, else defaultMaxConns).
	MaxConns int32
}

//go:embed migrations/*.sql
var migrations embed.FS

const defaultMaxConns = 16

// migrationLock is the advisory lock key under which replicas starting at
// once apply migrations one after another ("orchard" in ASCII).
const migrationLock = 0x6f72636861726400

// Open connects to the database at dsn and brings its schema up to date.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message can quote the DSN, password included.
		return nil, errors.New("postgres: the DSN does not parse (see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)")
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		// pgxpool's default (4, or one per CPU) leaves devices waiting for a
		// connection while others commit; more writers share each WAL flush.
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, now: opts.Now}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := s.fillInventoryColumns(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// Close releases the connections. Every write has returned by then: there
// is nothing pending to wait for.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Notes returns what Open found that the operator should know.
func (s *Store) Notes() []string { return s.notes }

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int {
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	v, _ := migrationVersion(names[len(names)-1])
	return v
}

func migrationVersion(name string) (int, error) {
	base := strings.TrimPrefix(name, "migrations/")
	n, _, _ := strings.Cut(base, "_")
	return strconv.Atoi(n)
}

// migrate applies the embedded migrations not yet recorded, in order, each
// in its own transaction, under an advisory lock so that replicas starting
// together apply each exactly once. A database newer than the binary is
// refused rather than written with an older idea of the schema.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	latest := 0
	for _, name := range names {
		v, err := migrationVersion(name)
		if err != nil {
			return fmt.Errorf("migration %s: bad name", name)
		}
		latest = v
		if v <= current {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	if current > latest {
		return fmt.Errorf("the database has schema version %d, newer than this binary's %d: upgrade orchard", current, latest)
	}
	return nil
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// maxAttempts bounds the retries of a write that keeps losing
// serialization races.
const maxAttempts = 100

// write runs fn in a transaction, from the start again (after a short
// random pause, so racers spread out) when it loses a race with a
// concurrent one; fn must only leak state out of a run that returned nil.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := range maxAttempts {
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, fn)
		if !retryable(err) {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
	return fmt.Errorf("postgres: gave up after %d serialization failures: %w", maxAttempts, err)
}

// read runs fn in a read-only snapshot, for reads of several statements.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	// serialization_failure, deadlock_detected, and unique_violation: two
	// transactions inserting the same key; the retry sees the winner's row.
	return pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "23505"
}

// getDoc scans the one JSON document a query returns into v.
func getDoc(ctx context.Context, q querier, v any, sql string, args ...any) error {
	var raw []byte
	if err := q.QueryRow(ctx, sql, args...).Scan(&raw); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		}
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("postgres: decode record: %w", err)
	}
	return nil
}

// listDocs decodes the JSON documents a query returns, in its order.
func listDocs[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("postgres: decode record: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// putDoc encodes v and runs sql with it as the last argument.
func putDoc(ctx context.Context, q querier, v any, sql string, args ...any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("postgres: encode record: %w", err)
	}
	_, err = q.Exec(ctx, sql, append(args, b)...)
	return err
}

// limitArg turns the contracts' "limit <= 0: all" into SQL's LIMIT NULL.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}

// Pool is the connection pool, for tests and tools that inspect the database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
