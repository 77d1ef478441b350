package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/storage"
)

// BenchmarkReconcile10kx10 reconciles 10,000 enrolled devices against 10
// profiles scoped to all of them, from nothing, on a real bbolt file
// through the real command service: it reports the time of one full
// reconcile, the commands stored and the channel queue entries written.
//
//	go test ./internal/profiles -run '^$' -bench Reconcile10k -benchtime 1x -benchmem
func BenchmarkReconcile10kx10(b *testing.B) {
	const devices, nprofiles = 10_000, 10
	for b.Loop() {
		b.StopTimer()
		h := newHarness(b)
		ids := make([]string, devices)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for n := range ids {
			ids[n] = fmt.Sprintf("00008030-%016X", n)
			wg.Add(1)
			sem <- struct{}{}
			go func(id string) {
				defer wg.Done()
				defer func() { <-sem }()
				e := storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: time.Now(),
					Topic: "t", Token: []byte{1}, PushMagic: "m", Facts: &storage.DeviceFacts{ProductName: "iPhone15,3"}, CertHash: "h-" + id}
				if err := h.store.Authenticate(context.Background(), &storage.AuthenticateRecord{Enrollment: e}); err != nil {
					b.Error(err)
				}
			}(ids[n])
		}
		wg.Wait()
		sc, _ := json.Marshal(scope.Scope{Platforms: []string{"iOS"}})
		for i := range nprofiles {
			id := fmt.Sprintf("com.example.p%02d", i)
			p := &storage.Profile{ID: id, Version: 1, UUID: "U-" + id, Scope: sc}
			if err := h.store.PutProfile(context.Background(), p, &storage.ProfileVersion{ProfileID: id, Version: 1, UUID: p.UUID, Data: make([]byte, 2048)}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		for i := range nprofiles {
			if err := h.rec.ScopeChanged(context.Background(), fmt.Sprintf("com.example.p%02d", i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := h.rec.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		first := time.Since(start)
		b.StopTimer()
		counts, err := h.rec.Counts(context.Background(), "com.example.p00")
		if err != nil || counts[storage.ProfilePending] != devices {
			b.Fatalf("counts = %v, %v", counts, err)
		}
		depth := 0
		c, err := h.store.Next(context.Background(), ids[devices-1])
		for ; err == nil && c != nil && depth < 100; depth++ {
			r := &storage.Result{CommandUUID: c.UUID, ChannelID: ids[devices-1], Status: storage.Acknowledged, At: time.Now()}
			if _, err = h.store.StoreResult(context.Background(), r); err != nil {
				b.Fatal(err)
			}
			c, err = h.store.Next(context.Background(), ids[devices-1])
		}
		if depth != nprofiles {
			b.Fatalf("last device has %d commands queued, want %d", depth, nprofiles)
		}
		stored, targets := h.queued.commands["InstallProfile"], h.queued.targets["InstallProfile"]
		// A second pass finds nothing to do.
		b.StartTimer()
		start = time.Now()
		for i := range nprofiles {
			if err := h.rec.ScopeChanged(context.Background(), fmt.Sprintf("com.example.p%02d", i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := h.rec.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "noop_pass_s")
		b.ReportMetric(first.Seconds(), "first_pass_s")
		b.ReportMetric(float64(targets), "installs_queued")
		b.ReportMetric(float64(stored), "commands_stored")
		if h.queued.commands["InstallProfile"] != stored {
			b.Fatalf("the second pass queued %d more commands", h.queued.commands["InstallProfile"]-stored)
		}
	}
}
