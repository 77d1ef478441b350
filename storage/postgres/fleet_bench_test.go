package postgres_test

import (
	"flag"
	"testing"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/storage/postgres"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

var fleetSize = flag.Int("postgres.fleet", 100_000, "devices BenchmarkFleet seeds")

// BenchmarkFleet is storagetest.BenchFleet on PostgreSQL with
// -postgres.fleet (100,000) devices: the device list's reads (searches
// through the trigram index) and the dashboard's counts.
func BenchmarkFleet(b *testing.B) {
	s, err := postgres.Open(b.Context(), pgtest.DSN(b), postgres.Options{MaxConns: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storagetest.BenchFleet(b, s, *fleetSize, 64)
}
