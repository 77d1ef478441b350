package mdmhttp_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/pgtest"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

var fillDevices = flag.Int("fill", 1000, "BenchmarkBackends: enrolled device records in the store besides the measured one")

// cpuNow is the CPU this process and the PostgreSQL test server have used.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + pgtest.ServerCPU()
}

// fill adds n enrolled device records, from 64 writers so they share commits.
func fill(b *testing.B, s storage.Store, n int) {
	var wg sync.WaitGroup
	var once sync.Once
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				id := fmt.Sprintf("FILL%08X-0000-0000-0000-%012X", i, i)
				err := s.UpdateEnrollment(context.Background(), id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true}, func(*storage.Enrollment) error { return nil })
				if err != nil {
					once.Do(func() { b.Errorf("fill: %v", err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// BenchmarkBackends runs the idle connect and the command round trip of
// this package's other benchmarks on every storage backend, with -fill
// other devices in the store, and reports the CPU per operation (Orchard's
// and, for PostgreSQL, the database server's) and the p99 latency.
func BenchmarkBackends(b *testing.B) {
	for _, backend := range servertest.Backends {
		b.Run(backend.Name, func(b *testing.B) {
			s := backend.Start(b)
			dev := s.NewDevice(b)
			s.Enroll(b, dev)
			fill(b, s.Store(), *fillDevices)
			h := s.Handler()
			idle := sign(b, dev, map[string]any{"UDID": dev.UDID, "Status": "Idle"})
			measure := func(b *testing.B, op func(i int)) {
				lat := make([]time.Duration, 0, b.N)
				cpu := cpuNow()
				b.ResetTimer()
				for i := range b.N {
					t0 := time.Now()
					op(i)
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				n := len(lat)
				slices.Sort(lat)
				b.ReportMetric(float64((cpuNow()-cpu).Microseconds())/float64(n), "cpu-µs/op")
				b.ReportMetric(float64(lat[n*99/100].Microseconds()), "p99-µs")
			}
			b.Run("IdleConnect", func(b *testing.B) {
				measure(b, func(int) {
					if rec := serve(b, h, idle); rec.Body.Len() != 0 {
						b.Fatal("unexpected command")
					}
				})
			})
			// b.Run calls the round trip with a growing b.N: the queue and
			// the signed answers carry over from one call to the next.
			var acks []signedBody
			seq, done := 0, 0
			b.Run("CommandRoundTrip", func(b *testing.B) {
				enqueue := func(n int) {
					for range n {
						uuid := fmt.Sprintf("BENCH-%s-%08d", backend.Name, seq)
						seq++
						raw, err := mdm.EncodeCommand(uuid, mdm.CommandPayload{"RequestType": "ProfileList"})
						if err != nil {
							b.Fatal(err)
						}
						if err := s.Store().Enqueue(b.Context(), &storage.Command{UUID: uuid, RequestType: "ProfileList", Raw: raw, CreatedAt: time.Now()}, []string{dev.UDID}); err != nil {
							b.Fatal(err)
						}
						acks = append(acks, sign(b, dev, map[string]any{"UDID": dev.UDID, "Status": "Acknowledged", "CommandUUID": uuid, "ProfileList": []any{}}))
					}
				}
				enqueue(done + b.N - len(acks))
				measure(b, func(i int) {
					if rec := serve(b, h, idle); rec.Body.Len() == 0 {
						b.Fatal("no command offered")
					}
					serve(b, h, acks[done+i])
				})
				done += b.N
			})
		})
	}
}
