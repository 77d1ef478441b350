package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// TestInjectedClock checks that the times the store stamps itself (a
// target superseded by a re-enrollment, put back by Undefer, cancelled)
// come from Options.Now, not the wall clock.
func TestInjectedClock(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	s, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	auth := func(certHash, prev string) {
		t.Helper()
		e := storage.Enrollment{ID: "DEV", DeviceID: "DEV", Type: storage.Device, Enrolled: true, CertHash: certHash}
		if err := s.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: e, PrevCertHash: prev}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue := func(uuid string) {
		t.Helper()
		raw, err := mdm.EncodeCommand(uuid, mdm.CommandPayload{"RequestType": "ProfileList"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(ctx, &storage.Command{UUID: uuid, RequestType: "ProfileList", Raw: raw, CreatedAt: clock}, []string{"DEV"}); err != nil {
			t.Fatal(err)
		}
	}
	stamped := func(uuid string, want storage.TargetStatus, at time.Time) {
		t.Helper()
		_, targets, err := s.Command(ctx, uuid)
		if err != nil || len(targets) != 1 {
			t.Fatalf("Command(%s) = %v, %v", uuid, targets, err)
		}
		if got := targets[0]; got.Status != want || !got.UpdatedAt.Equal(at) {
			t.Errorf("%s: status %v at %v, want %v at %v (the injected clock)", uuid, got.Status, got.UpdatedAt, want, at)
		}
	}

	auth("cert-1", "")
	enqueue("CANCELLED")
	enqueue("DEFERRED")
	clock = clock.Add(time.Hour)
	if n, err := s.Cancel(ctx, "CANCELLED"); err != nil || n != 1 {
		t.Fatalf("Cancel = %d, %v", n, err)
	}
	stamped("CANCELLED", storage.Canceled, clock)

	if err := s.Defer(ctx, "DEV", "DEFERRED"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	if err := s.Undefer(ctx, "DEV"); err != nil {
		t.Fatal(err)
	}
	stamped("DEFERRED", storage.Queued, clock)

	clock = clock.Add(time.Hour)
	auth("cert-2", "cert-1")
	stamped("DEFERRED", storage.Superseded, clock)
}
