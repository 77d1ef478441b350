package bolt_test

import (
	"flag"
	"testing"

	"github.com/orchardmdm/orchard/storage/storagetest"
)

var fleetSize = flag.Int("bolt.fleet", 100_000, "devices BenchmarkFleet seeds")

// BenchmarkFleet is storagetest.BenchFleet on a bbolt file with
// -bolt.fleet (100,000) devices: the device list's reads and the
// dashboard's counts.
func BenchmarkFleet(b *testing.B) {
	storagetest.BenchFleet(b, openStore(b), *fleetSize, 512)
}
