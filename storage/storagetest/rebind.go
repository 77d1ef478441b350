package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// testRebindKeepsEnrollment: a renewed certificate takes over the binding,
// and nothing else of the enrollment changes.
func testRebindKeepsEnrollment(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	user := h.addUser("D1", "user-1")
	h.enqueue("c-dev", "D1")
	h.enqueue("c-user", user)
	before := h.enrollment("D1")
	notAfter := now().Add(700 * 24 * time.Hour)
	ren := &storage.Renewal{State: storage.RenewalInstalled, ForCert: "cert-a", QueuedAt: now(), UpdatedAt: now()}
	err := h.s.Rebind(h.ctx, &storage.RebindRecord{DeviceID: "D1", PrevCertHash: "cert-a",
		CertHash: "cert-b", CertSerial: "0b", CertNotAfter: notAfter, Renewal: ren})
	if err != nil {
		t.Fatalf("Rebind: %v", err)
	}
	after := h.enrollment("D1")
	if after.CertHash != "cert-b" || after.CertSerial != "0b" || !after.CertNotAfter.Equal(notAfter) {
		t.Errorf("certificate after Rebind = %s %s %v, want cert-b 0b %v", after.CertHash, after.CertSerial, after.CertNotAfter, notAfter)
	}
	if after.Generation != before.Generation || !after.Enrolled || string(after.Token) != string(before.Token) {
		t.Errorf("Rebind changed the enrollment: generation %d->%d, enrolled %v", before.Generation, after.Generation, after.Enrolled)
	}
	if after.Renewal == nil || after.Renewal.State != storage.RenewalInstalled {
		t.Errorf("renewal after Rebind = %+v, want installed", after.Renewal)
	}
	if dev, err := h.s.DeviceForCert(h.ctx, "cert-b"); err != nil || dev != "D1" {
		t.Errorf("DeviceForCert(cert-b) = %q, %v; want D1", dev, err)
	}
	if _, err := h.s.DeviceForCert(h.ctx, "cert-a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceForCert(old cert) err = %v, want ErrNotFound", err)
	}
	if u := h.enrollment(user); !u.Enrolled {
		t.Error("user channel unenrolled by Rebind")
	}
	h.wantNext("D1", "c-dev")
	h.wantNext(user, "c-user")
}

// testRebindRefusals: the compare-and-set, a certificate of another
// device, a checked-out device and an unknown one all write nothing.
func testRebindRefusals(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-x")
	h.enroll("D3", "cert-3")
	if err := h.s.CheckOut(h.ctx, "D3", now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  storage.RebindRecord
		want error
	}{
		{"stale previous certificate", storage.RebindRecord{DeviceID: "D1", PrevCertHash: "cert-old", CertHash: "cert-b"}, storage.ErrConflict},
		{"certificate bound to another device", storage.RebindRecord{DeviceID: "D1", PrevCertHash: "cert-a", CertHash: "cert-x"}, storage.ErrConflict},
		{"checked out", storage.RebindRecord{DeviceID: "D3", PrevCertHash: "cert-3", CertHash: "cert-c"}, storage.ErrConflict},
		{"unknown device", storage.RebindRecord{DeviceID: "D9", PrevCertHash: "", CertHash: "cert-d"}, storage.ErrNotFound},
	} {
		if err := h.s.Rebind(h.ctx, &tc.rec); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if _, err := h.s.DeviceForCert(h.ctx, tc.rec.CertHash); tc.rec.CertHash != "cert-x" && !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: refused Rebind bound %s anyway (err %v)", tc.name, tc.rec.CertHash, err)
		}
	}
	if e := h.enrollment("D1"); e.CertHash != "cert-a" {
		t.Errorf("D1 bound to %s after refused Rebinds, want cert-a", e.CertHash)
	}
	if dev, err := h.s.DeviceForCert(h.ctx, "cert-x"); err != nil || dev != "D2" {
		t.Errorf("cert-x now bound to %q, %v; want D2", dev, err)
	}
}

// testRenewalRoundTrip: the renewal state written by UpdateEnrollment reads
// back whole.
func testRenewalRoundTrip(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	want := storage.Renewal{State: storage.RenewalFailed, Reason: "the device answered Error", ForCert: "cert-a",
		CommandUUID: "cmd-1", ChallengeID: "ch-1", QueuedAt: now(), UpdatedAt: now().Add(time.Minute)}
	err := h.s.UpdateEnrollment(h.ctx, "D1", nil, func(e *storage.Enrollment) error {
		r := want
		e.Renewal = &r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := h.enrollment("D1").Renewal
	if got == nil || got.State != want.State || got.Reason != want.Reason || got.ForCert != want.ForCert ||
		got.CommandUUID != want.CommandUUID || got.ChallengeID != want.ChallengeID ||
		!got.QueuedAt.Equal(want.QueuedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("renewal read back as %+v, want %+v", got, want)
	}
}
