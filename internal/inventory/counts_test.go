package inventory

import (
	"context"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// TestInventoryCounts: GET /v1/inventory/counts answers the platforms and
// versions most first (retired devices left out) and the enrolled devices
// by last check-in as of the API's clock, and refuses parameters.
func TestInventoryCounts(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := h.clock.Now()
	for _, r := range []storage.DeviceInventory{
		{DeviceID: "C1", Platform: IOS, OSVersion: "18.1"},
		{DeviceID: "C2", Platform: IOS, OSVersion: "18.1"},
		{DeviceID: "C3", Platform: MacOS, OSVersion: "15.1"},
		{DeviceID: "C4", Platform: MacOS, OSVersion: "14.6", Retired: true},
	} {
		if _, err := h.store.UpdateInventory(ctx, r.DeviceID, func(inv *storage.DeviceInventory) error { *inv = r; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for id, ago := range map[string]time.Duration{"C1": time.Minute, "C2": 3 * time.Hour, "C3": 30 * 24 * time.Hour} {
		e := &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, LastSeen: now.Add(-ago)}
		if err := h.store.UpdateEnrollment(ctx, id, e, func(*storage.Enrollment) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var got Counts
	if code := h.api("GET", "/v1/inventory/counts", nil, &got); code != 200 {
		t.Fatalf("counts: %d", code)
	}
	if !got.At.Equal(now) || got.Enrolled != 3 || len(got.Platforms) != 2 || got.Platforms[0] != (PlatformCount{IOS, 2}) ||
		got.Platforms[1] != (PlatformCount{MacOS, 1}) || len(got.OSVersions) != 2 || got.OSVersions[0] != (VersionCount{IOS, "18.1", 2}) {
		t.Errorf("counts = %+v", got)
	}
	want := map[string]int{"within_hour": 1, "within_day": 1, "within_week": 0, "longer_ago": 1, "never": 0}
	for k, n := range want {
		if got.LastCheckIn[k] != n {
			t.Errorf("last_check_in = %v, want %v", got.LastCheckIn, want)
			break
		}
	}
	var e map[string]string
	if code := h.api("GET", "/v1/inventory/counts?platform=iOS", nil, &e); code != 400 || e["error"] == "" {
		t.Errorf("with a parameter: %d %v", code, e)
	}
}
