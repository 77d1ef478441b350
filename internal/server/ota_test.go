package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// The whole over-the-air flow through the public protocol: profile, SCEP,
// check-ins signed with the SCEP certificate, a command and its answer.
func TestOverTheAirEnrollment(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	dev := s.EnrollOTA(t)

	var shown struct {
		Enrolled         bool   `json:"enrolled"`
		EnrollmentMethod string `json:"enrollment_method"`
		CertSerial       string `json:"identity_cert_serial"`
		Device           struct {
			SerialNumber string `json:"serial_number"`
			DeviceName   string `json:"device_name"`
		} `json:"device"`
	}
	if code := s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown); code != 200 {
		t.Fatalf("GET device = %d", code)
	}
	if !shown.Enrolled || shown.Device.SerialNumber != dev.SerialNumber || shown.Device.DeviceName != dev.DeviceName ||
		shown.CertSerial != dev.Cert.SerialNumber.Text(16) || shown.EnrollmentMethod == "" {
		t.Fatalf("device view = %+v", shown)
	}
	sent := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	handled, err := dev.Drain(ctx, func(c *simdevice.Command) (string, map[string]any) {
		return "Acknowledged", map[string]any{"ProfileList": []any{map[string]any{"PayloadIdentifier": "com.example.wifi"}}}
	})
	if err != nil || len(handled) != 1 || handled[0].UUID != sent.CommandUUID {
		t.Fatalf("drain: %+v %v", handled, err)
	}
	var view commandView
	s.API(t, "GET", "/v1/commands/"+sent.CommandUUID, nil, &view)
	if view.Targets[0].Status != "Acknowledged" {
		t.Fatalf("command view = %+v", view)
	}
}

// An invitation URL serves one profile, then is spent.
func TestInvitationEnrollment(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	var inv struct {
		URL string `json:"url"`
	}
	if code := s.API(t, "POST", "/v1/enrollment/invitations", map[string]any{"label": "test"}, &inv); code != http.StatusCreated && code != 200 {
		t.Fatalf("create invitation = %d", code)
	}
	resp, err := s.Client.Get(inv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("invitation GET = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	profile := readAll(t, resp)
	again, err := s.Client.Get(inv.URL)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusGone {
		t.Fatalf("second GET = %d, want 410", again.StatusCode)
	}
	dev := s.NewDevice(t)
	if err := dev.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	if err := dev.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	// The challenge was single-use: a second device cannot reuse the profile.
	other := s.NewDevice(t)
	if err := other.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err == nil {
		t.Fatal("second SCEP enrollment with a spent challenge succeeded")
	}
}

// Apple Configurator direct enrollment: a downloaded profile enrolls any
// number of devices while it is valid.
func TestConfiguratorDirectEnrollment(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	var prof struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/configurator/profiles", map[string]any{"name": "Lab", "user_affinity": false}, &prof); code != http.StatusCreated && code != 200 {
		t.Fatalf("create configurator profile = %d", code)
	}
	mobileconfig := s.Get(t, "/v1/configurator/profiles/"+prof.ID+"/mobileconfig")
	for range 2 {
		dev := s.NewDevice(t)
		if err := dev.EnrollFromProfile(ctx, mobileconfig, mustKey(t), s.Client); err != nil {
			t.Fatal(err)
		}
		if err := dev.Enroll(ctx); err != nil {
			t.Fatal(err)
		}
		var shown struct {
			EnrollmentMethod string `json:"enrollment_method"`
			EnrollmentRef    string `json:"enrollment_ref"`
		}
		s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
		if shown.EnrollmentMethod != "configurator" || shown.EnrollmentRef != prof.ID {
			t.Fatalf("configurator device recorded as %+v", shown)
		}
	}
}
