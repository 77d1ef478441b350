package postgres_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// TestOpenConcurrentMigrates: replicas starting together on an empty
// database all open it, and each migration is applied once.
func TestOpenConcurrentMigrates(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	stores := make([]*postgres.Store, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(t.Context(), dsn, postgres.Options{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var rows, max int
	if err := stores[0].Pool().QueryRow(t.Context(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	// Version numbers may skip one that a branch has not landed yet.
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	if rows != len(files) || max != postgres.SchemaVersion() {
		t.Errorf("schema_migrations has %d rows up to %d, want each of %d migrations once, up to %d", rows, max, len(files), postgres.SchemaVersion())
	}
}

// TestOpenRefusesNewerSchema: a database migrated by a newer binary is not
// written with this one's idea of the schema.
func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(t.Context(), "INSERT INTO schema_migrations (version) VALUES ($1)", postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := postgres.Open(t.Context(), dsn, postgres.Options{}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// TestOpenBadDSNKeepsPassword: a DSN that does not parse is refused
// without repeating it (it may hold a password).
func TestOpenBadDSNKeepsPassword(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://orchard:S3CRET-PW@db:notaport/orchard", postgres.Options{})
	if err == nil {
		t.Fatal("a bad DSN opened")
	}
	if strings.Contains(err.Error(), "S3CRET-PW") {
		t.Errorf("error repeats the password: %v", err)
	}
}

// TestWriteSurvivesReopen: what a write returned nil for is there for the
// next process.
func TestWriteSurvivesReopen(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Setting(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Errorf("after reopen Setting = %q, %v", v, err)
	}
}
