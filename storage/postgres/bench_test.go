package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/postgres"
	"github.com/orchardmdm/orchard/storage/storagetest"
)

// parallel runs fn(i) for i in [0,n) on as many goroutines as the pool has
// connections, so setup commits share PostgreSQL's WAL flushes.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	storagetest.SeedEach(b, n, 64, fn)
}

func benchCommand(b *testing.B, uuid string) *storage.Command {
	raw, err := mdm.EncodeCommand(uuid, mdm.CommandPayload{"RequestType": "ProfileList"})
	if err != nil {
		b.Fatal(err)
	}
	return &storage.Command{UUID: uuid, RequestType: "ProfileList", Raw: raw, CreatedAt: time.Now()}
}

// benchStore mirrors the bbolt backend's: `channels` enrolled device
// channels with `perChannel` commands queued on each (one Enqueue per
// command, covering every channel), plus `deep` more on channel 0.
func benchStore(b *testing.B, channels, perChannel, deep int) (*postgres.Store, []string) {
	b.Helper()
	s, err := postgres.Open(b.Context(), pgtest.DSN(b), postgres.Options{MaxConns: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ids := make([]string, channels)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08X-0000-0000-0000-%012X", i, i)
	}
	parallel(b, channels, func(i int) error {
		id := ids[i]
		return s.UpdateEnrollment(b.Context(), id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true}, func(*storage.Enrollment) error { return nil })
	})
	for j := range perChannel {
		if err := s.Enqueue(b.Context(), benchCommand(b, fmt.Sprint("all-", j)), ids); err != nil {
			b.Fatal(err)
		}
	}
	parallel(b, deep, func(i int) error {
		return s.Enqueue(b.Context(), benchCommand(b, fmt.Sprint("deep-", i)), ids[:1])
	})
	return s, ids
}

// BenchmarkNext measures the head-of-queue read every device poll does, as
// storage/bolt's BenchmarkNext does. Its cost must not grow with the number
// of channels or the queue depth (the queue_head index).
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
				ids = ids[:1]
			}
			// Offer every head once, so the loop measures the read alone.
			for _, id := range ids {
				if _, err := s.Next(b.Context(), id); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				c, err := s.Next(b.Context(), ids[i%len(ids)])
				if err != nil || c == nil {
					b.Fatalf("Next = %v, %v", c, err)
				}
				i += 7919
			}
		})
	}
}

// BenchmarkRoundTrip is one command's life on a device with others
// queued behind it: Next, then its result (which offers the next head).
func BenchmarkRoundTrip(b *testing.B) {
	s, ids := benchStore(b, 1000, 0, 0)
	for i := range 64 {
		if err := s.Enqueue(b.Context(), benchCommand(b, fmt.Sprint("rt-", i)), ids[:1]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	n := 64
	for b.Loop() {
		c, err := s.Next(b.Context(), ids[0])
		if err != nil || c == nil {
			b.Fatalf("Next = %v, %v", c, err)
		}
		if _, err := s.StoreResult(b.Context(), &storage.Result{CommandUUID: c.UUID, ChannelID: ids[0], Status: storage.Acknowledged, At: time.Now()}); err != nil {
			b.Fatal(err)
		}
		// Keep the queue's depth constant.
		if err := s.Enqueue(b.Context(), benchCommand(b, fmt.Sprint("rt-", n)), ids[:1]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkCommandLog is storagetest.BenchCommandLog on PostgreSQL:
// 100,000 targets in the log (1,000 commands to 100 devices each).
func BenchmarkCommandLog(b *testing.B) {
	s, ids := benchStore(b, 1000, 0, 0)
	storagetest.BenchCommandLog(b, s, ids, 1000, 100, 64)
}
