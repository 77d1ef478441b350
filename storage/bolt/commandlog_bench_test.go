package bolt_test

import (
	"testing"

	"github.com/orchardmdm/orchard/storage/storagetest"
)

// BenchmarkCommandLog is storagetest.BenchCommandLog on a bbolt file:
// 100,000 commands, one target each, over 1,000 devices.
func BenchmarkCommandLog(b *testing.B) {
	s, ids := benchStore(b, 1000, 0, 0)
	storagetest.BenchCommandLog(b, s, ids, 100_000, 1, 512)
}
