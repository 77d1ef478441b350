package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

// A forged MachineInfo (any self-made signer) naming a victim's UDID and
// an assigned serial is refused outright (issue #19 section 3); with the
// lab flag on it earns a challenge and a certificate bound to that UDID,
// which must still not replace the victim's enrollment until an admin
// releases it (issue #10 section 2). An Apple-verified Setup Assistant
// enrollment of the device takes over without a release (issue #19
// section 2).
func testForgedMachineInfoCannotTakeOver(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t, func(c *server.Config) { c.InsecureMachineInfo = true })
	var prof struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/configurator/profiles", map[string]any{"name": "Lab", "user_affinity": false}, &prof); code/100 != 2 {
		t.Fatalf("create configurator profile = %d", code)
	}
	victim := s.NewDevice(t)
	victim.UDID = "00008030-001C2D3E4F5A6B7C"
	req, _ := http.NewRequest("POST", s.URL+"/v1/configurator/serials?profile_id="+prof.ID, strings.NewReader(victim.SerialNumber+",lab\n"))
	req.Header.Set("Authorization", "Bearer "+s.APIKey())
	req.Header.Set("Content-Type", "text/csv")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("import serial = %d: %s", resp.StatusCode, body)
	}
	s.Enroll(t, victim)
	before, err := s.Store().Enrollment(ctx, victim.UDID)
	if err != nil {
		t.Fatal(err)
	}

	// What the attacker can do without the API key: post a MachineInfo
	// naming the victim, get the profile, get a certificate by SCEP.
	setupAssistant := func(d *simdevice.Device) *simdevice.Device {
		t.Helper()
		info, err := d.MachineInfo()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Client.Post(s.URL+"/enroll/configurator/"+prof.ID, "application/pkcs7-signature", bytes.NewReader(info))
		if err != nil {
			t.Fatal(err)
		}
		mobileconfig := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("setup assistant profile = %d: %s", resp.StatusCode, mobileconfig)
		}
		if err := d.EnrollFromProfile(ctx, mobileconfig, mustKey(t), s.Client); err != nil {
			t.Fatal(err)
		}
		return d
	}
	forge := func() *simdevice.Device {
		t.Helper()
		d := s.NewDevice(t)
		d.UDID, d.SerialNumber = victim.UDID, victim.SerialNumber
		d.Token, d.PushMagic = []byte("attacker-token-0123456789abcdef!"), "ATTACKER-MAGIC"
		return setupAssistant(d)
	}
	attacker := forge()
	err = attacker.Authenticate(ctx)
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "check the device out") ||
		!strings.Contains(err.Error(), "release") || !strings.Contains(err.Error(), "Apple-verified MachineInfo") {
		t.Fatalf("forged takeover Authenticate: %v; want 403 naming check out, release and Apple-verified enrollment", err)
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/failures", nil, &fails); code != 200 || len(fails.Failures) != 1 ||
		fails.Failures[0].UDID != victim.UDID || fails.Failures[0].Serial != victim.SerialNumber ||
		fails.Failures[0].Method != storage.KindConfigurator || !strings.Contains(fails.Failures[0].Reason, "takeover refused") {
		t.Fatalf("recorded failures = %d %+v, want the refused takeover", code, fails)
	}
	if err := attacker.TokenUpdate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("forged TokenUpdate: %v, want 403", err)
	}
	if _, err := attacker.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("forged connect: %v, want 403", err)
	}
	// The victim is untouched: same binding and token, and it still gets
	// its commands.
	after, err := s.Store().Enrollment(ctx, victim.UDID)
	if err != nil {
		t.Fatal(err)
	}
	if after.CertHash != before.CertHash || !bytes.Equal(after.Token, victim.Token) || after.Generation != before.Generation || !after.Enrolled {
		t.Fatalf("victim's enrollment changed: %+v", after)
	}
	sent := send(t, s, map[string]any{"targets": []string{victim.UDID}, "request_type": "ProfileList"})
	if c, err := victim.Idle(ctx); err != nil || c == nil || c.UUID != sent.CommandUUID {
		t.Fatalf("victim after the attack: %+v %v", c, err)
	}

	// An admin release lets the next enrollment take over (a wiped device
	// that could not check out), once.
	var rel struct {
		ReleasedUntil string `json:"released_until"`
	}
	// (Any spelling of the hex UDID names the device.)
	if code := s.API(t, "POST", "/v1/devices/"+strings.ToLower(victim.UDID)+"/release", nil, &rel); code != 200 || rel.ReleasedUntil == "" {
		t.Fatalf("release = %d %+v", code, rel)
	}
	if code := s.API(t, "POST", "/v1/devices/"+victim.UDID+":user/release", nil, nil); code != http.StatusBadRequest {
		t.Fatalf("release of a user channel = %d, want 400", code)
	}
	if code := s.API(t, "POST", "/v1/devices/00008030-00000000DEADBEEF/release", nil, nil); code != http.StatusNotFound {
		t.Fatalf("release of an unknown device = %d, want 404", code)
	}
	wiped := forge()
	if err := wiped.Authenticate(ctx); err != nil {
		t.Fatalf("Authenticate after release: %v", err)
	}
	if _, err := victim.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("old certificate after the released takeover: %v, want 403", err)
	}
	if err := wiped.TokenUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Store().Enrollment(ctx, victim.UDID); !e.ReleasedUntil.IsZero() {
		t.Fatalf("release outlived the enrollment it admitted: %v", e.ReleasedUntil)
	}
	if err := forge().Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("second takeover after one release: %v, want 403", err)
	}
	// Renewal from the bound certificate still re-binds.
	bound, _ := s.Store().Enrollment(ctx, victim.UDID)
	renewed := *wiped
	renewed.Cert, renewed.Key = s.IssueCert(t, storage.CertAuthorization{Kind: "renewal", RenewalOf: bound.CertHash})
	if err := renewed.Authenticate(ctx); err != nil {
		t.Fatalf("renewal: %v", err)
	}

	// The device erased again, without CheckOut or a release: its own
	// Apple-verified MachineInfo takes over.
	verified := func() *simdevice.Device {
		d := s.NewDevice(t)
		d.UDID, d.SerialNumber, d.Apple = victim.UDID, victim.SerialNumber, s.Apple
		return setupAssistant(d)
	}
	stale, erased := verified(), verified()
	if err := erased.Authenticate(ctx); err != nil {
		t.Fatalf("Apple-verified Configurator re-enrollment: %v", err)
	}
	if _, err := renewed.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("certificate replaced by the verified re-enrollment: %v, want 403", err)
	}
	// A verified certificate issued before the current enrollment began
	// cannot take it back.
	if err := stale.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("verified certificate older than the enrollment: %v, want 403", err)
	}
}

// A lower-case copy of an enrolled hex UDID is the same device: it cannot
// enroll as a second record with the same serial, and the device's own
// messages in either case reach its one record. Issue #10, section 5.
func testUDIDCaseCopyIsTheSameDevice(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	dev := s.NewDevice(t)
	dev.UDID = "00008030-001A35E11E88802E"
	s.Enroll(t, dev)
	lower := strings.ToLower(dev.UDID)
	if lower == dev.UDID {
		t.Fatalf("test UDID %s has no letters", dev.UDID)
	}
	countDevices := func() int {
		t.Helper()
		list, err := s.Store().ListEnrollments(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range list {
			if e.Facts != nil && e.Facts.SerialNumber == dev.SerialNumber {
				n++
			}
		}
		return n
	}
	copied := s.NewDevice(t)
	copied.UDID, copied.SerialNumber = lower, dev.SerialNumber
	if err := copied.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("lower-case copy Authenticate: %v, want 403", err)
	}
	if n := countDevices(); n != 1 {
		t.Fatalf("%d records with serial %s, want 1", n, dev.SerialNumber)
	}
	// The device itself, spelling its UDID in lower case, reaches its record.
	sent := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	same := *dev
	same.UDID = lower
	if c, err := same.Idle(ctx); err != nil || c == nil || c.UUID != sent.CommandUUID {
		t.Fatalf("own device in lower case: %+v %v", c, err)
	}
	if _, err := same.Report(ctx, "Acknowledged", sent.CommandUUID, nil); err != nil {
		t.Fatal(err)
	}
	// After check-out the copy may enroll, into the same record under the
	// spelling it was first stored with.
	if _, err := dev.Checkin(ctx, map[string]any{"MessageType": "CheckOut", "UDID": dev.UDID, "Topic": dev.Topic}); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, copied)
	e, err := s.Store().Enrollment(ctx, lower)
	if err != nil || e.ID != dev.UDID || e.Facts.UDID != lower || !e.Enrolled {
		t.Fatalf("record after re-enrollment in lower case: %+v %v", e, err)
	}
	if n := countDevices(); n != 1 {
		t.Fatalf("%d records with serial %s after re-enrollment, want 1", n, dev.SerialNumber)
	}
}

// A refused Authenticate is recorded for the enrollment-failures report
// with its serial cut short, so a long one cannot bloat the bounded record
// (the decoder already bounds UDIDs).
func testRefusedAuthenticateRecorded(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	d := s.NewDevice(t)
	d.Cert, d.Key = s.IssueCert(t, storage.CertAuthorization{Kind: storage.KindConfigurator, ForUDID: "00008030-000A1B2C3D4E5F60"})
	d.SerialNumber = strings.Repeat("S", 4000)
	if err := d.Authenticate(ctx); statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "issued for another device") {
		t.Fatalf("Authenticate with another device's certificate: %v, want 403", err)
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/failures?limit=10", nil, &fails); code != 200 || len(fails.Failures) != 1 {
		t.Fatalf("failures = %d %+v", code, fails)
	}
	f := fails.Failures[0]
	if f.UDID != d.UDID || len(f.Serial) != 64 || !strings.HasPrefix(d.SerialNumber, f.Serial) ||
		f.Method != storage.KindConfigurator || f.Reason != "certificate was issued for another device" {
		t.Fatalf("recorded %+v", f)
	}
}
