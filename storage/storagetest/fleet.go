package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runFleetCounts: CountFleet counts inventories not retired by platform
// and OS version (unknown platforms and versions apart, a version holding
// U+0000 counted as reported), and enrolled device channels, not user
// channels or unenrolled devices, by when they were last heard from.
func runFleetCounts(t *testing.T, s storage.Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	within := []time.Duration{time.Hour, 24 * time.Hour}
	got, err := s.CountFleet(ctx, now, within)
	if err != nil || got.Enrolled != 0 || len(got.Platforms) != 0 || fmt.Sprint(got.Seen) != "[0 0 0]" {
		t.Fatalf("empty store: %+v, %v", got, err)
	}
	for _, r := range []storage.DeviceInventory{
		{DeviceID: "F1", Platform: "iOS", OSVersion: "18.1", DeviceName: "odd\x00name"},
		{DeviceID: "F2", Platform: "iOS", OSVersion: "18.1"},
		{DeviceID: "F3", Platform: "iOS", OSVersion: "17.5"},
		{DeviceID: "F4", Platform: "macOS", OSVersion: "15.1"},
		{DeviceID: "F5", Platform: "macOS", OSVersion: "15.1", Retired: true},
		{DeviceID: "F6"},
		{DeviceID: "F7", Platform: "tvOS", OSVersion: "18\x00beta"},
	} {
		if _, err := s.UpdateInventory(ctx, r.DeviceID, func(inv *storage.DeviceInventory) error { *inv = r; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct {
		id, device string
		enrolled   bool
		seen       time.Duration // before now; 0: never
	}{
		{"F1", "F1", true, time.Minute},
		{"F1:U1", "F1", true, time.Minute}, // a user channel
		{"F2", "F2", true, 59 * time.Minute},
		{"F3", "F3", true, 2 * time.Hour},
		{"F4", "F4", true, 30 * 24 * time.Hour},
		{"F5", "F5", false, time.Minute}, // checked out
		{"F6", "F6", true, 0},
	} {
		rec := &storage.Enrollment{ID: e.id, DeviceID: e.device, Type: storage.Device, Enrolled: e.enrolled}
		if e.id != e.device {
			rec.Type, rec.UserID = storage.User, "U1"
		}
		if e.id == "F6" {
			rec.Facts = &storage.DeviceFacts{DeviceName: "odd\x00name"}
		}
		if e.seen != 0 {
			rec.LastSeen = now.Add(-e.seen)
		}
		if err := s.UpdateEnrollment(ctx, e.id, rec, func(*storage.Enrollment) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.CountFleet(ctx, now, within)
	if err != nil {
		t.Fatal(err)
	}
	wantPlatforms := map[string]int{"iOS": 3, "macOS": 1, "": 1, "tvOS": 1}
	pv := func(p, v string) storage.PlatformVersion { return storage.PlatformVersion{Platform: p, OSVersion: v} }
	wantVersions := map[storage.PlatformVersion]int{pv("iOS", "18.1"): 2, pv("iOS", "17.5"): 1, pv("macOS", "15.1"): 1, pv("tvOS", "18\x00beta"): 1}
	if fmt.Sprint(got.Platforms) != fmt.Sprint(wantPlatforms) || fmt.Sprint(got.OSVersions) != fmt.Sprint(wantVersions) {
		t.Errorf("platforms %v versions %v, want %v %v", got.Platforms, got.OSVersions, wantPlatforms, wantVersions)
	}
	if got.Enrolled != 5 || got.Never != 1 || fmt.Sprint(got.Seen) != "[2 1 1]" {
		t.Errorf("enrolled %d never %d seen %v, want 5, 1, [2 1 1]", got.Enrolled, got.Never, got.Seen)
	}
	// Another moment moves devices between buckets; no buckets, one count.
	if got, err = s.CountFleet(ctx, now.Add(24*time.Hour), nil); err != nil || got.Enrolled != 5 || fmt.Sprint(got.Seen) != "[4]" {
		t.Errorf("without buckets: %+v, %v", got, err)
	}
}
