package postgres_test

import (
	"context"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.Prepared(t, "orchard", migrated), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t) })
}

// migrated prepares a schema for pgtest.Prepared: Open applies the migrations.
func migrated(dsn string) error {
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		return err
	}
	return s.Close()
}
