package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/orchardmdm/orchard/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestFreshDatabases checks that each DSN names its own empty schema on
// a live server, with fsync on.
func TestFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.DSN(t), pgtest.DSN(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (n int)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x' AND schemaname = current_schema()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the second schema sees the first one's table")
	}
	var fsync string
	if err := cb.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" {
		t.Errorf("fsync = %s, want on", fsync)
	}
}

// TestBinDirMissing: without the binaries the message says how to install
// them, and on CI (CI=true) says so loudly.
func TestBinDirMissing(t *testing.T) {
	t.Setenv("ORCHARD_PG_BIN", t.TempDir())
	t.Setenv("CI", "")
	_, err := pgtest.BinDir()
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") {
		t.Errorf("BinDir without binaries = %v, want the install command", err)
	}
	t.Setenv("CI", "true")
	if _, err := pgtest.BinDir(); err == nil || !strings.HasPrefix(err.Error(), "CI: ") {
		t.Errorf("BinDir on CI without binaries = %v, want a CI failure", err)
	}
}

// TestPreparedReuse: a later test gets the schema an earlier one used, with
// what prepare wrote and without what the earlier test wrote.
func TestPreparedReuse(t *testing.T) {
	ctx := context.Background()
	prepares := 0
	prepare := func(dsn string) error {
		prepares++
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "CREATE TABLE version (v int); INSERT INTO version VALUES (1); CREATE TABLE data (n int); CREATE SEQUENCE s")
		return err
	}
	var first string
	t.Run("first", func(t *testing.T) {
		c, err := pgx.Connect(ctx, pgtest.Prepared(t, "reuse", prepare))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "INSERT INTO data VALUES (7); SELECT nextval('s')"); err != nil {
			t.Fatal(err)
		}
		c.QueryRow(ctx, "SELECT current_schema()").Scan(&first)
	})
	t.Run("second", func(t *testing.T) {
		c, err := pgx.Connect(ctx, pgtest.Prepared(t, "reuse", prepare))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var schema string
		var data, version, seq int
		if err := c.QueryRow(ctx, "SELECT current_schema(), (SELECT count(*) FROM data), (SELECT count(*) FROM version), nextval('s')").Scan(&schema, &data, &version, &seq); err != nil {
			t.Fatal(err)
		}
		if schema != first || prepares != 1 {
			t.Errorf("schema %s after %s, %d prepares: not reused", schema, first, prepares)
		}
		if data != 0 || version != 1 || seq != 1 {
			t.Errorf("reused schema has %d data rows, %d version rows, sequence at %d; want 0, 1, 1", data, version, seq)
		}
	})
}
