package bolt_test

import (
	"fmt"
	"testing"

	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

// parallel runs fn(i) for i in [0,n) on a few goroutines, so setup writes
// share group commits instead of paying one fsync each.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	storagetest.SeedEach(b, n, 512, fn)
}

// benchStore has `channels` enrolled device channels, each with `perChannel`
// queued commands (one Enqueue call per command, covering every channel),
// plus `deep` more commands on channel 0.
func benchStore(b *testing.B, channels, perChannel, deep int) (*bolt.Store, []string) {
	b.Helper()
	s := openStore(b)
	ids := make([]string, channels)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08X-0000-0000-0000-%012X", i, i)
	}
	parallel(b, channels, func(i int) error {
		id := ids[i]
		return s.UpdateEnrollment(b.Context(), id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true}, func(*storage.Enrollment) error { return nil })
	})
	for j := range perChannel {
		if err := s.Enqueue(b.Context(), newCommand(b, fmt.Sprint("all-", j)), ids); err != nil {
			b.Fatal(err)
		}
	}
	parallel(b, deep, func(i int) error {
		return s.Enqueue(b.Context(), newCommand(b, fmt.Sprint("deep-", i)), ids[:1])
	})
	return s, ids
}

// BenchmarkNext measures the head-of-queue read every device poll does.
// Its cost must not grow with the number of channels or the queue depth.
func BenchmarkNext(b *testing.B) {
	for _, bc := range []struct {
		name                       string
		channels, perChannel, deep int
	}{
		{"channels=1000", 1000, 3, 0},
		{"channels=100000", 100000, 3, 0},
		{"depth=10000", 1000, 3, 10000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, ids := benchStore(b, bc.channels, bc.perChannel, bc.deep)
			if bc.deep > 0 {
				ids = ids[:1] // always read the deep channel
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				c, err := s.Next(b.Context(), ids[i%len(ids)])
				if err != nil || c == nil {
					b.Fatalf("Next = %v, %v", c, err)
				}
				i += 7919 // a prime stride: spread reads over the keyspace
			}
		})
	}
}
