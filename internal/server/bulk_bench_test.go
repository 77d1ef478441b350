package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var bulkDevices = flag.Int("bulk.devices", 100_000, "devices BenchmarkBulkCommand seeds and targets")

// BenchmarkBulkCommand seeds -bulk.devices enrolled devices (default
// 100,000) with push tokens into a real bbolt file, starts a real server
// on loopback TLS pushing to the fake APNs on loopback TLS, and sends one
// POST /v1/commands to all of them. It reports the time to the API's
// answer, pushes/s until the fake has received one push per device, the
// pushes missing (dropped), the peak RSS (VmHWM, reset after seeding) and
// peak Go heap during the command, and the live heap once idle again.
// The fake APNs and the API client share the process, so RSS and heap
// are upper bounds for the server. Run it once:
//
//	go test ./internal/server -run '^$' -bench BulkCommand -benchtime 1x
func BenchmarkBulkCommand(b *testing.B) {
	n := *bulkDevices
	cert, err := apnstest.NewPushCert()
	if err != nil {
		b.Fatal(err)
	}
	fake := apnstest.NewServer(cert.Leaf)
	b.Cleanup(fake.Close)
	fake.StopRecording()
	caFile := filepath.Join(b.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, fake.CertPEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	udids := make([]string, n)
	for i := range udids {
		udids[i] = fmt.Sprintf("00008030-BULK%012X", i)
	}
	seedStart := time.Now()
	s := servertest.Start(b, func(c *server.Config) {
		c.APNsURL, c.APNsCA = fake.URL(), caFile
		c.Logger = slog.New(slog.DiscardHandler) // a line per batch is not what is measured
		c.OpenStore = func(dir string) (storage.Store, error) {
			st, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
			if err != nil {
				return nil, err
			}
			if err := seedBulk(st, udids, cert.Topic); err != nil {
				st.Close()
				return nil, err
			}
			return st, nil
		}
	})
	b.Logf("seeded %d devices in %s", n, time.Since(seedStart).Round(time.Millisecond))
	p12, err := cert.P12("pw")
	if err != nil {
		b.Fatal(err)
	}
	if code := s.API(b, "PUT", "/v1/push-certificate", map[string]any{"p12": base64.StdEncoding.EncodeToString(p12), "password": "pw"}, nil); code != 200 {
		b.Fatalf("upload push certificate = %d", code)
	}

	var queued, drained time.Duration
	var missing int
	var peakHeap uint64
	for b.Loop() {
		fake.Reset()
		runtime.GC()
		resetPeakRSS(b)
		heap := sampleHeap()
		start := time.Now()
		var out struct {
			Targets []struct {
				Queued bool `json:"queued"`
			} `json:"targets"`
		}
		code := s.API(b, "POST", "/v1/commands", map[string]any{"targets": udids, "request_type": "ProfileList"}, &out)
		queued = time.Since(start)
		if code != 201 || len(out.Targets) != n {
			b.Fatalf("POST /v1/commands = %d with %d targets", code, len(out.Targets))
		}
		out.Targets = nil
		// Poll until every push arrived or none arrived for a while.
		last, lastAt := 0, time.Now()
		for fake.Received() < n && time.Since(lastAt) < 10*time.Second {
			time.Sleep(5 * time.Millisecond)
			if r := fake.Received(); r != last {
				last, lastAt = r, time.Now()
			}
		}
		drained = time.Since(start)
		peakHeap = heap()
		missing = n - fake.Received()
	}
	rss := peakRSS(b)
	b.ReportMetric(queued.Seconds(), "s-to-queued")
	b.ReportMetric(float64(n-missing)/drained.Seconds(), "pushes/s")
	b.ReportMetric(float64(missing), "dropped")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
	time.Sleep(100 * time.Millisecond) // let the last push results be recorded
	runtime.GC()
	b.ReportMetric(float64(readMetric("/gc/heap/live:bytes"))/(1<<20), "idle-live-heap-MB")
	if missing != 0 {
		b.Errorf("%d of %d devices were not pushed", missing, n)
	}
}

// seedBulk enrolls devices with push tokens, many writers at once so the
// store folds them into few fsyncs.
func seedBulk(st *bolt.Store, udids []string, topic string) error {
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 512)
	for i, udid := range udids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := st.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
				ID: udid, DeviceID: udid, Type: storage.Device, EnrolledAt: now, LastSeen: now, Topic: topic,
				Token: []byte(fmt.Sprintf("bulk-token-%021d", i)), PushMagic: fmt.Sprintf("BULK-MAGIC-%d", i), TokenUpdatedAt: now,
				Facts:    &storage.DeviceFacts{UDID: udid, SerialNumber: fmt.Sprintf("BK%010d", i), Model: "iPhone14,5", ProductName: "iPhone14,5", OSVersion: "18.1"},
				CertHash: fmt.Sprintf("bulk-cert-%d", i),
			}})
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap's object bytes every 5 ms until the
// returned func is called, which reports the peak.
func sampleHeap() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, readMetric("/memory/classes/heap/objects:bytes"))
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset the peak RSS (%v): it includes seeding", err)
	}
}

// peakRSS is VmHWM from /proc/self/status, in bytes.
func peakRSS(b *testing.B) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Logf("no peak RSS: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
