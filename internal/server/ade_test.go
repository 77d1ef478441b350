package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

// Automated Device Enrollment end to end against the fake Apple service:
// the admin uploads a server token, defines a profile, Orchard syncs the
// devices and assigns the profile at Apple; a device in Setup Assistant
// gets its enrollment profile only for its own serial, enrolls, and shows
// as enrolled in both views.
func testADEEnrollment(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	tok := deptest.NewToken()
	apple := deptest.NewServer(t, tok, 3)
	s := backend.Start(t, func(c *server.Config) { c.DEPURL = apple.URL })

	block, _ := pem.Decode(s.Get(t, "/v1/dep/public-key"))
	if block == nil {
		t.Fatal("public key is not PEM")
	}
	depCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var token struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/dep/tokens", map[string]any{
		"name": "Main", "note": "it@example.com", "token": string(deptest.P7M(t, depCert, tok)),
	}, &token); code != http.StatusCreated {
		t.Fatalf("upload token = %d", code)
	}
	var profile struct {
		ID        string `json:"id"`
		AppleUUID string `json:"apple_uuid"`
	}
	if code := s.API(t, "POST", "/v1/dep/tokens/"+token.ID+"/profiles", map[string]any{
		"name": "Corporate iPhones", "supervised": true, "locked_enrollment": true, "default": true,
		"await_device_configured": true, "device_name_template": "{{DEVICETYPE}}-{{SERIAL}}",
	}, &profile); code != http.StatusCreated {
		t.Fatalf("create profile = %d", code)
	}
	// Setup Assistant must trust the self-signed server certificate to
	// reach the enrollment URL: Orchard adds it to anchor_certs itself.
	anchors, _ := apple.Profile(profile.AppleUUID)["anchor_certs"].([]any)
	if len(anchors) != 1 || anchors[0] != base64.StdEncoding.EncodeToString(s.TLSCertificate().Leaf.Raw) {
		t.Fatalf("anchor_certs at Apple = %v, want the server's TLS certificate", anchors)
	}
	serial := deptest.Serial(0)
	waitStatus := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var list struct {
				Devices []struct {
					Status string `json:"status"`
				} `json:"devices"`
			}
			s.API(t, "GET", "/v1/dep/devices?serial="+serial, nil, &list)
			if len(list.Devices) == 1 && slices.Contains(want, list.Devices[0].Status) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %s never became %s: %+v", serial, want, list)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// A manual sync brings the devices (the scheduler would within a minute;
	// 409 says its first pass is syncing the new token right now).
	if code := s.API(t, "POST", "/v1/dep/tokens/"+token.ID+"/sync", nil, nil); code != 200 && code != 409 {
		t.Fatalf("sync = %d", code)
	}
	waitStatus("ready", "missing_profile")
	var assigned map[string]any
	if code := s.API(t, "POST", "/v1/dep/tokens/"+token.ID+"/profiles/"+profile.ID+"/devices",
		map[string]any{"devices": []string{serial}}, &assigned); code != 200 {
		t.Fatalf("assign = %d %v", code, assigned)
	}
	waitStatus("ready")
	if got := apple.AssignedProfile(serial); got == "" {
		t.Fatalf("profile not assigned at Apple")
	}

	url := enroll.ADEEnrollURL(s.URL, token.ID, profile.ID)
	dev := s.NewDevice(t)
	dev.Apple = s.Apple // its MachineInfo chains to the (test) Apple root
	post := func(serialNumber string) (*http.Response, []byte) {
		d := *dev
		d.SerialNumber = serialNumber
		info, err := d.MachineInfo()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Client.Post(url, "application/pkcs7-signature", bytes.NewReader(info))
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	if resp, _ := post("NOTINABM0001"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown serial got %d", resp.StatusCode)
	}
	dev.SerialNumber = serial
	resp, mobileconfig := post(serial)
	if resp.StatusCode != 200 {
		t.Fatalf("ADE profile = %d: %s", resp.StatusCode, mobileconfig)
	}
	if err := dev.EnrollFromProfile(ctx, mobileconfig, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	// In Setup Assistant the device says it awaits configuration; Orchard
	// names it from the profile's template and then releases it.
	if err := dev.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Checkin(ctx, map[string]any{"MessageType": "TokenUpdate", "UDID": dev.UDID, "Topic": dev.Topic,
		"Token": dev.Token, "PushMagic": dev.PushMagic, "AwaitingConfiguration": true}); err != nil {
		t.Fatal(err)
	}
	got, err := dev.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var name string
	for _, c := range got {
		types = append(types, c.RequestType)
		if c.RequestType == "Settings" {
			items, _ := c.Payload["Settings"].([]any)
			if len(items) == 1 {
				name, _ = items[0].(map[string]any)["DeviceName"].(string)
			}
		}
	}
	if i := slices.Index(types, "DeviceConfigured"); i < 0 || i < slices.Index(types, "Settings") || slices.Index(types, "Settings") < 0 {
		t.Fatalf("after enrollment the device got %v; want Settings before DeviceConfigured", types)
	}
	if name == "" || !strings.HasSuffix(name, "-"+serial) {
		t.Fatalf("device name from the template = %q", name)
	}
	waitStatus("enrolled")
	var shown struct {
		EnrollmentMethod string `json:"enrollment_method"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
	if shown.EnrollmentMethod != "ade" {
		t.Fatalf("enrollment method = %q", shown.EnrollmentMethod)
	}

	testADEReenrollAfterErase(t, s, url, dev)
}

// An ADE device erased without CheckOut enrolls again (issue #19 sections 2
// and 3): a MachineInfo that does not chain to Apple's root is refused
// before any challenge is issued and recorded; the device's own,
// Apple-verified one takes over the old enrollment with no admin release.
func testADEReenrollAfterErase(t *testing.T, s *servertest.Server, url string, old *simdevice.Device) {
	ctx := context.Background()
	post := func(d *simdevice.Device) (*http.Response, []byte) {
		t.Helper()
		info, err := d.MachineInfo()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Client.Post(url, "application/pkcs7-signature", bytes.NewReader(info))
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	before, err := s.Store().Enrollment(ctx, old.UDID)
	if err != nil {
		t.Fatal(err)
	}
	forged := s.NewDevice(t)
	forged.UDID, forged.SerialNumber = old.UDID, old.SerialNumber // self-signed: no Apple chain
	if resp, body := post(forged); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Apple device certificate") {
		t.Fatalf("self-signed MachineInfo = %d %s, want 403", resp.StatusCode, body)
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/failures", nil, &fails); code != 200 || len(fails.Failures) == 0 {
		t.Fatalf("failures = %d %+v", code, fails)
	}
	last := fails.Failures[len(fails.Failures)-1]
	if last.Serial != old.SerialNumber || last.Method != storage.KindADE || !strings.Contains(last.Reason, "Apple's root") {
		t.Fatalf("recorded %+v", last)
	}

	wiped := s.NewDevice(t)
	wiped.UDID, wiped.SerialNumber, wiped.Apple = old.UDID, old.SerialNumber, s.Apple
	wiped.Token, wiped.PushMagic = []byte("after-erase-token-0123456789abcd"), "AFTER-ERASE-MAGIC"
	resp, mobileconfig := post(wiped)
	if resp.StatusCode != 200 {
		t.Fatalf("verified MachineInfo after erase = %d %s", resp.StatusCode, mobileconfig)
	}
	if err := wiped.EnrollFromProfile(ctx, mobileconfig, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	if err := wiped.Authenticate(ctx); err != nil {
		t.Fatalf("Apple-verified re-enrollment: %v", err)
	}
	if err := wiped.TokenUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("the erased enrollment's certificate after the takeover: %v, want 403", err)
	}
	after, err := s.Store().Enrollment(ctx, old.UDID)
	if err != nil {
		t.Fatal(err)
	}
	if after.CertHash == before.CertHash || after.Generation != before.Generation+1 || !bytes.Equal(after.Token, wiped.Token) {
		t.Fatalf("enrollment after the takeover: %+v (before %+v)", after, before)
	}
}
