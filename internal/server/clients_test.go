package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
)

// Before a push certificate is uploaded nothing hands out a profile with
// an empty Topic: the profile, invitation and Configurator endpoints answer
// 409 with the next step, a device link spends nothing, and Authenticate is
// refused.
func testNoPushCertificate(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.StartWithoutPushCert(t)
	const next = "upload an MDM push certificate first"
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/enrollment/profile"},
		{"POST", "/v1/enrollment/invitations"},
		{"POST", "/v1/configurator/profiles"},
	} {
		var body struct {
			Error string `json:"error"`
		}
		var req any
		if tc.method == "POST" {
			req = map[string]any{"name": "Lab"}
		}
		if code := s.API(t, tc.method, tc.path, req, &body); code != http.StatusConflict || !strings.Contains(body.Error, next) {
			t.Errorf("%s %s = %d %q, want 409 saying %q", tc.method, tc.path, code, body.Error, next)
		}
	}
	if invs, err := s.Store().ListInvitations(ctx, "", 10); err != nil || len(invs) != 0 {
		t.Fatalf("invitations written: %v %v", invs, err)
	}
	if ps, err := s.Store().ListConfiguratorProfiles(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("configurator profiles written: %v %v", ps, err)
	}
	// Setup Assistant's profile URL answers the same, before anything else.
	resp, err := s.Client.Post(s.URL+"/enroll/configurator/nope", "application/pkcs7-signature", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("Setup Assistant profile = %d, want 409", resp.StatusCode)
	}
	dev := s.NewDevice(t)
	if err := dev.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("Authenticate without a push certificate: %v, want 403", err)
	}
	if list, _ := s.Store().ListEnrollments(ctx, "", 10); len(list) != 0 {
		t.Fatalf("a refused Authenticate wrote %d enrollments", len(list))
	}
}

// An action reports "pushed" only when a notification was queued: once
// APNs said the token is dead, a lock is queued but not pushed, and sync
// (a push and nothing else) is refused with the reason.
func testActionsPushedOnlyWhenPushed(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	var res struct {
		Pushed bool `json:"pushed"`
	}
	if code := s.API(t, "POST", "/v1/devices/"+dev.UDID+"/actions/lock", nil, &res); code != http.StatusCreated || !res.Pushed {
		t.Fatalf("lock with a live token = %d pushed=%v", code, res.Pushed)
	}
	s.FakeAPNs.Script(dev.Token, apnstest.Answer{Status: http.StatusGone, Reason: "Unregistered"})
	s.API(t, "POST", "/v1/push", map[string]any{"targets": []string{dev.UDID}}, nil)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e, err := s.Store().Enrollment(ctx, dev.UDID)
		if err == nil && e.TokenInvalid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token was never marked invalid")
		}
	}
	// Pushes already on their way when the token died (the enrollment's
	// inventory queries, the first lock) may still land: count from when the
	// fake has stopped receiving.
	pushes := len(s.FakeAPNs.Pushes())
	for settle := time.Now().Add(10 * time.Second); time.Now().Before(settle); {
		time.Sleep(300 * time.Millisecond)
		n := len(s.FakeAPNs.Pushes())
		if n == pushes {
			break
		}
		pushes = n
	}
	res.Pushed = true
	if code := s.API(t, "POST", "/v1/devices/"+dev.UDID+"/actions/lock", nil, &res); code != http.StatusCreated || res.Pushed {
		t.Fatalf("lock with a dead token = %d pushed=%v, want 201 pushed=false", code, res.Pushed)
	}
	var refused struct {
		Error string `json:"error"`
	}
	if code := s.API(t, "POST", "/v1/devices/"+dev.UDID+"/actions/sync", nil, &refused); code != http.StatusConflict || !strings.Contains(refused.Error, "invalid") {
		t.Fatalf("sync with a dead token = %d %q", code, refused.Error)
	}
	if n := len(s.FakeAPNs.Pushes()); n != pushes {
		t.Fatalf("%d pushes sent to a dead token", n-pushes)
	}
}

// What real clients send: connects without Content-Type (mdmb, NanoMDM's
// clients), check-ins sent to the ServerURL (profiles without CheckInURL),
// by their content type or by MessageType.
func testRealClientRequests(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	dev.CheckinURL = dev.ServerURL // a profile without CheckInURL
	if err := dev.Enroll(ctx); err != nil {
		t.Fatalf("check-ins sent to the ServerURL: %v", err)
	}
	if e, err := s.Store().Enrollment(ctx, dev.UDID); err != nil || !e.Enrolled || !bytes.Equal(e.Token, dev.Token) {
		t.Fatalf("after check-ins on the ServerURL: %+v %v", e, err)
	}
	// A check-in with the connect content type is known by its MessageType.
	dev.Token = bytes.Repeat([]byte{0xEE}, 32)
	msg, _ := plist.Marshal(map[string]any{"MessageType": "TokenUpdate", "UDID": dev.UDID, "Topic": dev.Topic, "Token": dev.Token, "PushMagic": dev.PushMagic})
	if _, err := dev.Put(ctx, dev.ServerURL, "application/x-apple-aspen-mdm", msg); err != nil {
		t.Fatalf("TokenUpdate with the connect content type: %v", err)
	}
	if e, _ := s.Store().Enrollment(ctx, dev.UDID); !bytes.Equal(e.Token, dev.Token) {
		t.Fatal("TokenUpdate on the ServerURL not stored")
	}
	idle, _ := plist.Marshal(map[string]any{"UDID": dev.UDID, "Status": "Idle"})
	for _, tc := range []struct {
		ctype string
		want  int
	}{
		{"", http.StatusOK},
		{"application/x-apple-aspen-mdm", http.StatusOK},
		{"text/plain", http.StatusUnsupportedMediaType},
	} {
		_, err := dev.Put(ctx, dev.ServerURL, tc.ctype, idle)
		if got := statusOf(err); (tc.want == http.StatusOK && err != nil) || (tc.want != http.StatusOK && got != tc.want) {
			t.Errorf("connect with Content-Type %q: %v, want %d", tc.ctype, err, tc.want)
		}
	}
	// Still not a way around the check-in rules: a wrong type on the check-in
	// URL, and a body that is neither, are refused.
	if _, err := dev.Put(ctx, s.URL+"/mdm/checkin", "", msg); statusOf(err) != http.StatusUnsupportedMediaType {
		t.Errorf("check-in without Content-Type: %v, want 415", err)
	}
	if _, err := dev.Put(ctx, dev.ServerURL, "", []byte(plistDict("UDID", dev.UDID))); statusOf(err) != http.StatusBadRequest {
		t.Errorf("neither report nor check-in: %v, want 400", err)
	}
}

// Profiles as devices need them: UseDevelopmentAPNS with --apns-sandbox,
// a SCEP key that is not extractable, and no PayloadExpirationDate on a
// Configurator download (its link expires on the server after 14 days).
func testProfilePayloads(t *testing.T, backend servertest.Backend) {
	for _, sandbox := range []bool{false, true} {
		s := backend.Start(t, func(c *server.Config) { c.APNsSandbox = sandbox })
		var prof struct {
			ID string `json:"id"`
		}
		if code := s.API(t, "POST", "/v1/configurator/profiles", map[string]any{"name": "Lab"}, &prof); code != http.StatusCreated {
			t.Fatalf("create configurator profile = %d", code)
		}
		for _, path := range []string{"/v1/enrollment/profile", "/v1/configurator/profiles/" + prof.ID + "/mobileconfig"} {
			content, _, err := enrollprofile.Parse(s.Get(t, path), s.CA().Pool())
			if err != nil {
				t.Fatal(err)
			}
			var top struct {
				PayloadExpirationDate *time.Time
				PayloadContent        []map[string]any
			}
			if err := plist.Unmarshal(content, &top); err != nil {
				t.Fatal(err)
			}
			if top.PayloadExpirationDate != nil {
				t.Errorf("%s: PayloadExpirationDate %v makes devices show an expired profile", path, top.PayloadExpirationDate)
			}
			for _, p := range top.PayloadContent {
				switch p["PayloadType"] {
				case "com.apple.mdm":
					if dev, _ := p["UseDevelopmentAPNS"].(bool); dev != sandbox || p["Topic"] != servertest.PushTopic {
						t.Errorf("%s sandbox=%v: UseDevelopmentAPNS %v, Topic %v", path, sandbox, p["UseDevelopmentAPNS"], p["Topic"])
					}
				case "com.apple.security.scep":
					c, _ := p["PayloadContent"].(map[string]any)
					if v, ok := c["KeyIsExtractable"].(bool); !ok || v {
						t.Errorf("%s: KeyIsExtractable = %#v, want false", path, c["KeyIsExtractable"])
					}
				}
			}
		}
		var downloads struct {
			Downloads []struct {
				CreatedAt time.Time `json:"created_at"`
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"downloads"`
		}
		s.API(t, "GET", "/v1/configurator/profiles/"+prof.ID+"/downloads", nil, &downloads)
		if len(downloads.Downloads) != 1 || downloads.Downloads[0].ExpiresAt.Sub(downloads.Downloads[0].CreatedAt) != enroll.DirectEnrollmentTTL {
			t.Fatalf("download expiry on the server = %+v, want %v", downloads, enroll.DirectEnrollmentTTL)
		}
	}
}

// Apple removed the software update commands after OS 26.0: refused for
// newer targets with the reason, kept for older ones.
func testOSUpdateCommandsEndAt26(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	old, newer := s.NewDevice(t), s.NewDevice(t)
	old.ProductName, old.Model, old.OSVersion = "Mac14,2", "Mac14,2", "15.5"
	newer.ProductName, newer.Model, newer.OSVersion = "Mac14,2", "Mac14,2", "26.1"
	s.Enroll(t, old)
	s.Enroll(t, newer)
	var resp sendResp
	code := s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{old.UDID, newer.UDID}, "request_type": "AvailableOSUpdates"}, &resp)
	if code != http.StatusCreated || len(resp.Targets) != 2 {
		t.Fatalf("AvailableOSUpdates = %d %+v", code, resp)
	}
	if !resp.Targets[0].Queued {
		t.Errorf("refused on macOS 15.5: %s", resp.Targets[0].Error)
	}
	if resp.Targets[1].Queued || !strings.Contains(resp.Targets[1].Error, "Declarative Device Management") {
		t.Errorf("macOS 26.1: queued=%v %q, want refused naming Declarative Device Management", resp.Targets[1].Queued, resp.Targets[1].Error)
	}
}

// A raw plist with a key or request type newer than the bundled schema is
// refused by default; with allow_unknown it is sent as given, with a
// warning for each unknown part.
func testAllowUnknown(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	for _, tc := range []struct {
		name, plist, warn, key string
	}{
		{"new key", `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>RequestType</key><string>DeviceLock</string><key>FutureKey</key><string>later</string></dict></plist>`, `Command.FutureKey`, "FutureKey"},
		{"new request type", `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>RequestType</key><string>FutureCommand</string><key>Level</key><integer>3</integer></dict></plist>`, `"FutureCommand"`, "Level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"targets": []string{dev.UDID}, "plist": base64.StdEncoding.EncodeToString([]byte(tc.plist))}
			var refused struct {
				Error string `json:"error"`
			}
			if code := s.API(t, "POST", "/v1/commands", body, &refused); code != http.StatusBadRequest {
				t.Fatalf("by default = %d %q, want 400", code, refused.Error)
			}
			body["allow_unknown"] = true
			var sent struct {
				CommandUUID string   `json:"command_uuid"`
				Warnings    []string `json:"warnings"`
			}
			if code := s.API(t, "POST", "/v1/commands", body, &sent); code != http.StatusCreated || len(sent.Warnings) != 1 || !strings.Contains(sent.Warnings[0], tc.warn) {
				t.Fatalf("allow_unknown = %d %+v, want 201 with one warning naming %s", code, sent, tc.warn)
			}
			cmd, err := dev.Idle(ctx)
			if err != nil || cmd == nil || cmd.UUID != sent.CommandUUID || cmd.Payload[tc.key] == nil {
				t.Fatalf("device got %+v %v, want the command with %s", cmd, err, tc.key)
			}
			if _, err := dev.Report(ctx, "Acknowledged", cmd.UUID, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	// A typed payload has no way to carry unknown keys.
	body := map[string]any{"targets": []string{dev.UDID}, "request_type": "DeviceLock", "allow_unknown": true}
	if code := s.API(t, "POST", "/v1/commands", body, nil); code != http.StatusBadRequest {
		t.Fatalf("allow_unknown with request_type = %d, want 400", code)
	}
}

// The self-signed TLS certificate covers the --public-url host: when the
// host changes, a new certificate is made on the next start and the device
// CA is kept; an unchanged host keeps the certificate.
func TestSelfSignedTLSFollowsPublicURL(t *testing.T) {
	dir := t.TempDir()
	start := func(public string) (tlsLeaf, ca []byte) {
		t.Helper()
		srv, err := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicURL: public,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		host := strings.Split(strings.TrimPrefix(public, "https://"), ":")[0]
		if err := srv.TLSCertificate().Leaf.VerifyHostname(host); err != nil {
			t.Fatalf("TLS certificate for %s: %v", public, err)
		}
		return srv.TLSCertificate().Leaf.Raw, srv.CA().Cert.Raw
	}
	tls1, ca1 := start("https://mdm-old.example.com:8443")
	tls2, ca2 := start("https://mdm-old.example.com:8443")
	if !bytes.Equal(tls1, tls2) {
		t.Fatal("the TLS certificate was replaced though the host did not change")
	}
	tls3, ca3 := start("https://mdm.example.org:8443")
	if bytes.Equal(tls1, tls3) {
		t.Fatal("the TLS certificate was kept for a host it does not cover")
	}
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(ca1, ca3) {
		t.Fatal("the device CA changed")
	}
}
