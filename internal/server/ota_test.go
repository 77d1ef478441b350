package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// The whole over-the-air flow through the public protocol: profile, SCEP,
// check-ins signed with the SCEP certificate, a command and its answer.
func testOverTheAirEnrollment(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
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
	wifi := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string>` +
		`<key>PayloadIdentifier</key><string>com.example.wifi</string><key>PayloadUUID</key><string>4B8E0B61-1C2D-4E3F-9A0B-1C2D3E4F5A6B</string>` +
		`<key>PayloadVersion</key><integer>1</integer><key>PayloadContent</key><array/></dict></plist>`
	var uuids []string
	for _, req := range []map[string]any{
		{"request_type": "DeviceInformation", "payload": map[string]any{"Queries": []string{"DeviceName", "OSVersion", "SerialNumber"}}},
		{"request_type": "InstallProfile", "payload": map[string]any{"Payload": base64.StdEncoding.EncodeToString([]byte(wifi))}},
		{"request_type": "ProfileList"},
	} {
		req["targets"] = []string{dev.UDID}
		uuids = append(uuids, send(t, s, req).CommandUUID)
	}
	installed := map[string]bool{}
	handled, err := dev.Drain(ctx, func(c *simdevice.Command) (string, map[string]any) {
		switch c.RequestType {
		case "DeviceInformation":
			return "Acknowledged", map[string]any{"QueryResponses": map[string]any{
				"DeviceName": dev.DeviceName, "OSVersion": dev.OSVersion, "SerialNumber": dev.SerialNumber}}
		case "InstallProfile":
			// The device really reads the profile it was sent.
			var p struct{ PayloadIdentifier string }
			if err := plist.Unmarshal(c.Payload["Payload"].([]byte), &p); err != nil || p.PayloadIdentifier == "" {
				return "Error", map[string]any{"ErrorChain": []any{map[string]any{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain"}}}
			}
			installed[p.PayloadIdentifier] = true
			return "Acknowledged", nil
		case "ProfileList":
			var list []any
			for id := range installed {
				list = append(list, map[string]any{"PayloadIdentifier": id})
			}
			return "Acknowledged", map[string]any{"ProfileList": list}
		}
		return "CommandFormatError", nil
	})
	if err != nil || len(handled) != 3 {
		t.Fatalf("drain: %d commands, %v", len(handled), err)
	}
	for i, uuid := range uuids {
		var view commandView
		s.API(t, "GET", "/v1/commands/"+uuid, nil, &view)
		if view.Targets[0].Status != "Acknowledged" || handled[i].UUID != uuid {
			t.Fatalf("command %d (%s) = %+v", i, view.RequestType, view)
		}
		if view.RequestType == "ProfileList" {
			list, _ := view.Targets[0].Results[0].Response["ProfileList"].([]any)
			if len(list) != 1 || list[0].(map[string]any)["PayloadIdentifier"] != "com.example.wifi" {
				t.Fatalf("profile list after install = %+v", list)
			}
		}
	}
}

// An invitation URL shows a landing page to GET and HEAD (spending
// nothing), serves one profile to the page's POST, then is spent.
func testInvitationEnrollment(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	var inv struct {
		URL string `json:"url"`
	}
	if code := s.API(t, "POST", "/v1/enrollment/invitations", map[string]any{"label": "test"}, &inv); code != http.StatusCreated && code != 200 {
		t.Fatalf("create invitation = %d", code)
	}
	path := strings.TrimPrefix(inv.URL, s.URL)
	scanner := newBrowser(t, s, "Slackbot-LinkExpanding 1.0")
	for _, method := range []string{"HEAD", "GET", "GET"} {
		if resp, _ := scanner.do(method, path, nil); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("invitation %s = %d %s, want the landing page", method, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	b := newBrowser(t, s, iPhoneUA)
	b.do("GET", path, nil)
	if resp, _ := b.do("POST", path, url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("invitation POST without the page's CSRF token = %d, want 403", resp.StatusCode)
	}
	resp, profile := b.do("POST", path, url.Values{"csrf": {b.csrf()}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("invitation POST = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	again, page := b.do("POST", path, url.Values{"csrf": {b.csrf()}})
	if again.StatusCode != http.StatusGone || !strings.Contains(string(page), "already used") {
		t.Fatalf("second POST = %d %s, want the 410 page", again.StatusCode, page)
	}
	dev := s.NewDevice(t)
	if err := dev.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	// The challenge was single-use: a second device cannot reuse the profile.
	other := s.NewDevice(t)
	if err := other.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err == nil {
		t.Fatal("second SCEP enrollment with a spent challenge succeeded")
	}
}

// Apple Configurator direct enrollment: a downloaded profile enrolls any
// number of devices while it is valid.
func testConfiguratorDirectEnrollment(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
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
		s.Enroll(t, dev)
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
