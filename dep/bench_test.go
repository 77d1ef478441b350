package dep_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// BenchmarkFullSync200k measures a full sync of 200,000 devices from the
// fake into a real bbolt file: devices per minute and peak heap.
// Run: go test ./dep -run '^$' -bench FullSync200k -benchtime 1x
func BenchmarkFullSync200k(b *testing.B) {
	const n = 200_000
	var total time.Duration
	var peak atomic.Uint64
	for range b.N {
		b.StopTimer()
		e := newEnv(b, n, nil)
		e.addToken()
		runtime.GC()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		b.StartTimer()
		t0 := time.Now()
		res, err := e.svc.SyncNow(e.ctx, e.tokenID)
		total += time.Since(t0)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if res.Devices != n || e.count(storage.DEPDeviceFilter{}) != n {
			b.Fatalf("synced %d devices", res.Devices)
		}
	}
	perMin := float64(n*b.N) / total.Minutes()
	b.ReportMetric(perMin, "devices/min")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
}
