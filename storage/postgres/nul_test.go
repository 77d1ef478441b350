package postgres_test

import (
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// TestDeviceStringsWithNUL: what a device reports may hold U+0000, which
// PostgreSQL's jsonb refuses; such records are stored and read back as
// sent, as bbolt does, instead of failing the device's request.
func TestDeviceStringsWithNUL(t *testing.T) {
	ctx := t.Context()
	s := open(t)
	odd := "iPhone\x00of Mallory"
	at := time.Now().UTC().Truncate(time.Microsecond)
	if err := s.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
		ID: "D1", DeviceID: "D1", Type: storage.Device, CertHash: "h", EnrolledAt: at,
		Facts: &storage.DeviceFacts{DeviceName: odd}, UserLongName: odd}}); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	raw, _ := mdm.EncodeCommand("c1", mdm.CommandPayload{"RequestType": "ProfileList"})
	if err := s.Enqueue(ctx, &storage.Command{UUID: "c1", RequestType: "ProfileList", Raw: raw, CreatedAt: at}, []string{"D1"}); err != nil {
		t.Fatalf("Enqueue after such an enrollment: %v", err)
	}
	if _, err := s.Next(ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StoreResult(ctx, &storage.Result{CommandUUID: "c1", ChannelID: "D1", Status: storage.Error, At: at,
		ErrorChain: []storage.ErrorChain{{ErrorCode: 1, LocalizedDescription: odd}}}); err != nil {
		t.Fatalf("StoreResult: %v", err)
	}
	if _, err := s.UpdateInventory(ctx, "D1", func(inv *storage.DeviceInventory) error { inv.DeviceName = odd; return nil }); err != nil {
		t.Fatalf("UpdateInventory: %v", err)
	}
	if err := s.Authenticate(ctx, &storage.AuthenticateRecord{PrevCertHash: "h", Enrollment: storage.Enrollment{
		ID: "D1", DeviceID: "D1", Type: storage.Device, CertHash: "h", Facts: &storage.DeviceFacts{DeviceName: odd}}}); err != nil {
		t.Fatalf("re-Authenticate: %v", err)
	}
	e, err := s.Enrollment(ctx, "D1")
	if err != nil || e.Facts.DeviceName != odd || e.UserLongName != "" || e.Generation != 2 {
		t.Errorf("Enrollment = %+v, %v", e, err)
	}
	rs, err := s.Results(ctx, "c1")
	if err != nil || len(rs) != 1 || rs[0].ErrorChain[0].LocalizedDescription != odd {
		t.Errorf("Results = %+v, %v", rs, err)
	}
	inv, err := s.Inventory(ctx, "D1")
	if err != nil || inv.DeviceName != odd {
		t.Errorf("Inventory = %+v, %v", inv, err)
	}
}
