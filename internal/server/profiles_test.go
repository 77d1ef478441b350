package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

func wifiProfile(t *testing.T, id, uuid string) apiclient.Raw {
	t.Helper()
	raw, err := plist.MarshalIndent(map[string]any{
		"PayloadType": "Configuration", "PayloadIdentifier": id, "PayloadUUID": uuid, "PayloadVersion": 1,
		"PayloadDisplayName": "Office Wi-Fi",
		"PayloadContent": []any{map[string]any{
			"PayloadType": "com.apple.wifi.managed", "PayloadIdentifier": id + ".wifi", "PayloadUUID": uuid + "-W",
			"PayloadVersion": 1, "SSID_STR": "Office", "EncryptionType": "WPA2", "Password": "correct horse",
		}},
	}, "\t")
	if err != nil {
		t.Fatal(err)
	}
	return apiclient.Raw{ContentType: "application/x-apple-aspen-config", Body: raw}
}

type profileView struct {
	ID       string         `json:"id"`
	Version  int            `json:"version"`
	Counts   map[string]int `json:"counts"`
	Warnings []string       `json:"warnings"`
}

type channelState struct {
	ChannelID string   `json:"channel_id"`
	State     string   `json:"state"`
	Attempts  int      `json:"attempts"`
	Errors    []string `json:"errors"`
}

// waitState settles the devices (they answer what Orchard queued) until
// the profile's state on ch is want. The reconciler runs in the
// background after a scope change, so this polls; it fails only when the
// state never comes.
func waitState(t *testing.T, s *servertest.Server, profileID, ch, want string, devs ...*simdevice.Device) channelState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, d := range devs {
			if _, err := d.Settle(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		var st struct {
			Channels []channelState `json:"channels"`
		}
		if code := s.API(t, "GET", "/v1/profiles/"+profileID+"/status", nil, &st); code != http.StatusOK {
			t.Fatalf("status = %d", code)
		}
		for _, c := range st.Channels {
			if c.ChannelID == ch && c.State == want {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s never reached %s: %+v", profileID, ch, want, st.Channels)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testProfiles(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	var p profileView
	if code := s.API(t, "POST", "/v1/profiles", wifiProfile(t, "com.example.wifi", "11111111-0000-4000-8000-000000000001"), &p); code != http.StatusCreated {
		t.Fatalf("upload = %d", code)
	}
	if code := s.API(t, "POST", "/v1/profiles", wifiProfile(t, "com.example.wifi", "11111111-0000-4000-8000-000000000009"), nil); code != http.StatusConflict {
		t.Fatalf("second upload of one identifier = %d, want 409", code)
	}
	if code := s.API(t, "POST", "/v1/profiles", apiclient.Raw{ContentType: "application/x-apple-aspen-config", Body: []byte("<plist><dict/></plist>")}, nil); code != http.StatusBadRequest {
		t.Fatalf("not a Configuration = %d, want 400", code)
	}
	// Scope to iPadOS before any device enrolls: enrollment installs it.
	if code := s.API(t, "PUT", "/v1/profiles/com.example.wifi/scope", map[string]any{"scope": map[string]any{"platforms": []string{"iPadOS"}}}, nil); code != http.StatusOK {
		t.Fatalf("scope = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/profiles/com.example.wifi/scope", map[string]any{"scope": map[string]any{"platforms": []string{"Android"}}}, nil); code != http.StatusBadRequest {
		t.Fatalf("unknown platform = %d, want 400", code)
	}
	a, b := s.EnrollOTA(t), s.EnrollOTA(t) // iPads
	for _, d := range []*simdevice.Device{a, b} {
		waitState(t, s, "com.example.wifi", d.UDID, "verified", d)
		if !slices.Contains(d.InstalledProfiles(), "com.example.wifi") {
			t.Fatalf("%s lacks the profile: %v", d.UDID, d.InstalledProfiles())
		}
	}
	if code := s.API(t, "GET", "/v1/profiles/com.example.wifi", nil, &p); code != http.StatusOK || p.Counts["verified"] != 2 {
		t.Fatalf("show = %d %+v", code, p)
	}

	// Drift: b's user removes it; the next ProfileList shows it and Orchard reinstalls.
	b.LoseProfile("com.example.wifi")
	if code := s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{b.UDID}, "request_type": "ProfileList"}, nil); code != http.StatusCreated {
		t.Fatalf("ProfileList = %d", code)
	}
	waitState(t, s, "com.example.wifi", b.UDID, "verified", b)
	if !slices.Contains(b.InstalledProfiles(), "com.example.wifi") {
		t.Fatal("not reinstalled after drift")
	}

	// A profile the device refuses: failed after one retry, its error kept.
	if code := s.API(t, "POST", "/v1/profiles", wifiProfile(t, "com.example.bad", "22222222-0000-4000-8000-000000000001"), nil); code != http.StatusCreated {
		t.Fatalf("upload bad = %d", code)
	}
	a.RefuseProfile("com.example.bad")
	if code := s.API(t, "PUT", "/v1/profiles/com.example.bad/scope", map[string]any{"scope": map[string]any{"devices": []string{a.UDID}}}, nil); code != http.StatusOK {
		t.Fatalf("scope bad = %d", code)
	}
	st := waitState(t, s, "com.example.bad", a.UDID, "failed", a)
	if st.Attempts != 2 || len(st.Errors) == 0 {
		t.Fatalf("failed state = %+v", st)
	}

	// Unscope: both iPads lose the Wi-Fi profile.
	if code := s.API(t, "PUT", "/v1/profiles/com.example.wifi/scope", map[string]any{"scope": map[string]any{}}, nil); code != http.StatusOK {
		t.Fatalf("unscope = %d", code)
	}
	for _, d := range []*simdevice.Device{a, b} {
		waitState(t, s, "com.example.wifi", d.UDID, "removed", d)
		if slices.Contains(d.InstalledProfiles(), "com.example.wifi") {
			t.Fatalf("%s still has the profile", d.UDID)
		}
	}
}
