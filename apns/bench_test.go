package apns_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
)

// BenchmarkPush10000 pushes 10,000 notifications per iteration to the fake
// APNs over loopback HTTP/2 (client and fake share the process, so the
// memory figures include both) and reports pushes/s and the peak heap.
func BenchmarkPush10000(b *testing.B) {
	for _, conc := range []int{apns.DefaultConcurrency, 500} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			e := newEnv(b, apns.WithConcurrency(conc), apns.WithLogger(slog.New(slog.DiscardHandler)))
			ns := notes(10000)
			e.pusher.Push(context.Background(), ns[:1]) // connect outside the timing
			peak := sampleHeap(b)

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			pushes := 0
			for b.Loop() {
				e.fake.Reset() // the fake's record would otherwise grow with b.N
				for _, r := range e.pusher.Push(context.Background(), ns) {
					if !r.Sent {
						b.Fatalf("result = %+v", r)
					}
				}
				pushes += len(ns)
			}
			b.ReportMetric(float64(pushes)/time.Since(start).Seconds(), "pushes/s")
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
		})
	}
}

// sampleHeap samples HeapInuse every millisecond until the returned func
// is called, which reports the peak seen.
func sampleHeap(b *testing.B) func() uint64 {
	runtime.GC()
	var mu sync.Mutex
	var max uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			max = maxU(max, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return max
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
