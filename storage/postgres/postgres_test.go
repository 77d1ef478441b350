package postgres_test

import (
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.DSN(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t) })
}
