package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

func statusOf(err error) int {
	var se *simdevice.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

type sendResp struct {
	Error       string `json:"error"`
	CommandUUID string `json:"command_uuid"`
	Targets     []struct {
		Target   string   `json:"target"`
		Queued   bool     `json:"queued"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
	} `json:"targets"`
}

type commandView struct {
	UUID        string `json:"command_uuid"`
	RequestType string `json:"request_type"`
	Targets     []struct {
		ChannelID string `json:"channel_id"`
		Status    string `json:"status"`
		Results   []struct {
			Status   string         `json:"status"`
			Response map[string]any `json:"response"`
		} `json:"results"`
	} `json:"targets"`
}

func send(t *testing.T, s *servertest.Server, req map[string]any) sendResp {
	t.Helper()
	var out sendResp
	if code := s.API(t, "POST", "/v1/commands", req, &out); code != http.StatusCreated {
		t.Fatalf("POST /v1/commands = %d (%+v)", code, out)
	}
	return out
}

// The core's "done when": enroll, receive a command queued through the
// API, answer it, see the result in the API; a certificate bound to
// another device is refused.
func testDeviceRoundTrip(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	sent := send(t, s, map[string]any{
		"targets":      []string{dev.UDID},
		"request_type": "DeviceInformation",
		"payload":      map[string]any{"Queries": []string{"DeviceName", "OSVersion"}},
	})
	cmd, err := dev.Idle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cmd == nil || cmd.UUID != sent.CommandUUID || cmd.RequestType != "DeviceInformation" {
		t.Fatalf("device got %+v, want command %s", cmd, sent.CommandUUID)
	}
	next, err := dev.Report(ctx, "Acknowledged", cmd.UUID, map[string]any{
		"QueryResponses": map[string]any{"DeviceName": dev.DeviceName, "OSVersion": dev.OSVersion},
	})
	if err != nil || next != nil {
		t.Fatalf("after ack: next=%+v err=%v", next, err)
	}
	var view commandView
	if code := s.API(t, "GET", "/v1/commands/"+sent.CommandUUID, nil, &view); code != 200 {
		t.Fatalf("GET command = %d", code)
	}
	if len(view.Targets) != 1 || view.Targets[0].Status != "Acknowledged" || len(view.Targets[0].Results) != 1 {
		t.Fatalf("command view = %+v", view)
	}
	qr, _ := view.Targets[0].Results[0].Response["QueryResponses"].(map[string]any)
	if qr["DeviceName"] != dev.DeviceName {
		t.Fatalf("result response = %+v", view.Targets[0].Results[0].Response)
	}

	// Another enrolled device's certificate cannot act as dev.
	other := s.NewDevice(t)
	s.Enroll(t, other)
	second := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	impostor := *dev
	impostor.Cert, impostor.Key = other.Cert, other.Key
	if _, err := impostor.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("impostor connect: err=%v, want 403", err)
	}
	impostor.PushMagic = "stolen"
	if err := impostor.TokenUpdate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("impostor token update: err=%v, want 403", err)
	}
	if err := impostor.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("impostor authenticate: err=%v, want 403", err)
	}
	e, err := s.Store().Enrollment(ctx, dev.UDID)
	if err != nil || e.PushMagic != dev.PushMagic || !e.Enrolled || e.CertHash == "" {
		t.Fatalf("victim enrollment changed: %+v %v", e, err)
	}
	cmd, err = dev.Idle(ctx)
	if err != nil || cmd == nil || cmd.UUID != second.CommandUUID {
		t.Fatalf("victim's queued command: %+v %v", cmd, err)
	}
}

func testIdentityFailures(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	body := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>` + dev.UDID + `</string></dict></plist>`)
	sig, err := dev.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-20] ^= 1
	for _, tc := range []struct {
		name string
		body []byte
		sig  string
	}{
		{"no signature", body, ""},
		{"not base64", body, "%%%"},
		{"not CMS", body, "aGVsbG8="},
		{"body changed after signing", tampered, sig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dev.PutSigned(ctx, dev.ServerURL, "application/x-apple-aspen-mdm", tc.body, tc.sig)
			if c := statusOf(err); c != http.StatusForbidden {
				t.Fatalf("status %d (%v), want 403", c, err)
			}
		})
	}
	// A certificate from a foreign CA that looks the same.
	foreign := backend.Start(t)
	alien := foreign.NewDevice(t)
	alien.CheckinURL, alien.ServerURL, alien.Client = dev.CheckinURL, dev.ServerURL, dev.Client
	alien.UDID = dev.UDID
	if _, err := alien.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("foreign CA: %v, want 403", err)
	}
	// A certificate the admin revokes is refused from then on.
	if _, err := dev.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if code := s.API(t, "POST", "/v1/certificates/"+dev.Cert.SerialNumber.Text(16)+"/revoke", nil, nil); code/100 != 2 {
		t.Fatalf("revoke = %d", code)
	}
	if _, err := dev.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("revoked: %v, want 403", err)
	}
}

func testAuthenticateRules(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	a := s.NewDevice(t)
	// Nothing but Authenticate before Authenticate.
	if err := a.TokenUpdate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("token update before authenticate: %v", err)
	}
	s.Enroll(t, a)
	// One certificate can never Authenticate a second UDID.
	b := *a
	b.UDID = "00008030-0000000000000BBB"
	if err := b.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("second UDID with same cert: %v", err)
	}
	// A new certificate for an enrolled UDID is refused...
	intruder := s.NewDevice(t)
	intruder.UDID = a.UDID
	if err := intruder.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("takeover: %v", err)
	}
	// ...unless it renews the bound certificate.
	sent := send(t, s, map[string]any{"targets": []string{a.UDID}, "request_type": "ProfileList"})
	bound, _ := s.Store().Enrollment(ctx, a.UDID)
	renewed := *a
	renewed.Cert, renewed.Key = s.IssueCert(t, storage.CertAuthorization{Kind: "renewal", RenewalOf: bound.CertHash})
	if err := renewed.Authenticate(ctx); err != nil {
		t.Fatalf("renewal re-bind: %v", err)
	}
	// The fresh enrollment does not get the old enrollment's commands, and
	// the old certificate no longer works.
	if err := renewed.TokenUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := renewed.Settle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got {
		if c.UUID == sent.CommandUUID {
			t.Fatalf("the new enrollment received the old enrollment's command %s", c.UUID)
		}
	}
	var view commandView
	s.API(t, "GET", "/v1/commands/"+sent.CommandUUID, nil, &view)
	if view.Targets[0].Status != string(storage.Superseded) {
		t.Fatalf("old command status %q", view.Targets[0].Status)
	}
	if _, err := a.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("old cert after renewal: %v", err)
	}
	// A certificate issued for one device (an ADE or Setup Assistant
	// challenge bound to its UDID and serial) cannot enroll another.
	bound2 := s.NewDevice(t)
	bound2.Cert, bound2.Key = s.IssueCert(t, storage.CertAuthorization{Kind: "ade", ForUDID: "00008030-00000000000000AA", ForSerial: "SERIALAA"})
	if err := bound2.Authenticate(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("cert bound to another device: %v", err)
	}
	// After CheckOut, another certificate may enroll the UDID.
	if _, err := renewed.Checkin(ctx, map[string]any{"MessageType": "CheckOut", "UDID": a.UDID, "Topic": a.Topic}); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Store().Enrollment(ctx, a.UDID); e.Enrolled || e.CheckedOutAt.IsZero() {
		t.Fatalf("after checkout: %+v", e)
	}
	// A checked-out device gets nothing more, though it connected before.
	if _, err := renewed.Idle(ctx); statusOf(err) != http.StatusForbidden {
		t.Fatalf("connect after checkout: %v", err)
	}
	s.Enroll(t, intruder)
}

func testNotNowAndOrdering(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	var uuids []string
	for _, rt := range []string{"SecurityInfo", "ProfileList", "CertificateList"} {
		uuids = append(uuids, send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": rt}).CommandUUID)
	}
	c1, err := dev.Idle(ctx)
	if err != nil || c1.UUID != uuids[0] {
		t.Fatalf("first: %+v %v", c1, err)
	}
	// NotNow: the next command comes instead, and the NotNow'd one is not
	// offered again in this sequence.
	c2, err := dev.Report(ctx, "NotNow", c1.UUID, nil)
	if err != nil || c2.UUID != uuids[1] {
		t.Fatalf("after NotNow: %+v %v", c2, err)
	}
	c3, err := dev.Report(ctx, "Acknowledged", c2.UUID, nil)
	if err != nil || c3.UUID != uuids[2] {
		t.Fatalf("third: %+v %v", c3, err)
	}
	// Duplicate result: single effect.
	if _, err := dev.Report(ctx, "Acknowledged", c2.UUID, nil); err != nil {
		t.Fatal(err)
	}
	if end, err := dev.Report(ctx, "Acknowledged", c3.UUID, nil); err != nil || end != nil {
		t.Fatalf("end of sequence: %+v %v", end, err)
	}
	// Next Idle offers the NotNow'd command again.
	again, err := dev.Idle(ctx)
	if err != nil || again == nil || again.UUID != uuids[0] {
		t.Fatalf("after Idle: %+v %v", again, err)
	}
	results, _ := s.Store().Results(ctx, c2.UUID)
	if len(results) != 1 {
		t.Fatalf("duplicate stored %d results", len(results))
	}
	// A result for a command this channel never received.
	if _, err := dev.Report(ctx, "Acknowledged", "NOT-A-COMMAND", nil); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown command: %v", err)
	}
}

func testUserChannelAndBootstrap(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	mac := s.NewDevice(t)
	mac.ProductName, mac.Model, mac.ModelName, mac.OSVersion = "Mac14,2", "Mac14,2", "MacBook Air", "15.1"
	s.Enroll(t, mac)
	user := "2DC6C8B4-9A4F-4B9E-8E5C-1D2F3A4B5C6D"
	_, err := mac.Checkin(ctx, map[string]any{
		"MessageType": "TokenUpdate", "UDID": mac.UDID, "UserID": user, "UserShortName": "jappleseed",
		"UserLongName": "John Appleseed", "Topic": mac.Topic, "Token": []byte("usertoken"), "PushMagic": "USERMAGIC",
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := send(t, s, map[string]any{"targets": []string{mac.UDID}, "user_id": user, "request_type": "ProfileList"})
	// The device channel has nothing; the user channel has the command.
	if c, err := mac.Idle(ctx); err != nil || c != nil {
		t.Fatalf("device channel: %+v %v", c, err)
	}
	c, err := mac.Report(ctx, "Idle", "", map[string]any{"UserID": user})
	if err != nil || c == nil || c.UUID != sent.CommandUUID {
		t.Fatalf("user channel: %+v %v", c, err)
	}
	// UserAuthenticate is off by default: 410.
	_, err = mac.Checkin(ctx, map[string]any{"MessageType": "UserAuthenticate", "UDID": mac.UDID, "UserID": user})
	if statusOf(err) != http.StatusGone {
		t.Fatalf("UserAuthenticate: %v", err)
	}
	// Bootstrap token escrow round trip, sealed at rest.
	tok := []byte("bootstrap-token-secret-value")
	if _, err := mac.Checkin(ctx, map[string]any{"MessageType": "SetBootstrapToken", "UDID": mac.UDID, "BootstrapToken": tok}); err != nil {
		t.Fatal(err)
	}
	e, _ := s.Store().Enrollment(ctx, mac.UDID)
	if len(e.BootstrapTokenSealed) == 0 || string(e.BootstrapTokenSealed) == string(tok) {
		t.Fatalf("bootstrap token not sealed: %q", e.BootstrapTokenSealed)
	}
	resp, err := mac.Checkin(ctx, map[string]any{"MessageType": "GetBootstrapToken", "UDID": mac.UDID})
	if err != nil {
		t.Fatal(err)
	}
	got, err := simdevice.DecodePlistMap(resp)
	if err != nil || string(got["BootstrapToken"].([]byte)) != string(tok) {
		t.Fatalf("GetBootstrapToken = %v %v", got, err)
	}
	// Declarative management answers the device's tokens in JSON.
	resp, err = mac.Checkin(ctx, map[string]any{"MessageType": "DeclarativeManagement", "UDID": mac.UDID, "Endpoint": "tokens"})
	if err != nil || !strings.Contains(string(resp), `"DeclarationsToken"`) {
		t.Fatalf("DeclarativeManagement tokens = %s, %v", resp, err)
	}
}

func testBadInputWritesNothing(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	for _, tc := range []struct {
		name  string
		ctype string
		body  string
		code  int
	}{
		{"malformed plist", "application/x-apple-aspen-mdm-checkin", "<plist><dict><key>", 400},
		{"no MessageType", "application/x-apple-aspen-mdm-checkin", plistDict("UDID", dev.UDID), 400},
		{"unknown MessageType", "application/x-apple-aspen-mdm-checkin", plistDict("MessageType", "Bogus", "UDID", dev.UDID), 400},
		{"UDID with separator", "application/x-apple-aspen-mdm-checkin", plistDict("MessageType", "Authenticate", "UDID", "AB:CD", "Topic", dev.Topic), 400},
		{"wrong content type", "text/plain", plistDict("MessageType", "Authenticate", "UDID", dev.UDID, "Topic", dev.Topic), 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dev.Put(ctx, dev.CheckinURL, tc.ctype, []byte(tc.body))
			if c := statusOf(err); c != tc.code {
				t.Fatalf("status %d (%v), want %d", c, err, tc.code)
			}
		})
	}
	big := make([]byte, 1<<20+1)
	if _, err := dev.Put(ctx, dev.CheckinURL, "application/x-apple-aspen-mdm-checkin", big); statusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %v", err)
	}
	if list, _ := s.Store().ListEnrollments(ctx, "", 10); len(list) != 0 {
		t.Fatalf("bad input wrote %d enrollments", len(list))
	}
}

func testAdminAPIAuth(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + s.APIKey(), s.APIKey()} {
		req, _ := http.NewRequest("GET", s.URL+"/v1/devices", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("auth %q: %d", auth, resp.StatusCode)
		}
	}
	var list struct {
		Devices []any `json:"devices"`
	}
	if code := s.API(t, "GET", "/v1/devices", nil, &list); code != 200 || list.Devices == nil {
		t.Fatalf("with key: %d %+v", code, list)
	}
}

func plistDict(kv ...string) string {
	out := `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>`
	for i := 0; i+1 < len(kv); i += 2 {
		out += "<key>" + kv[i] + "</key><string>" + kv[i+1] + "</string>"
	}
	return out + "</dict></plist>"
}

// Commands are checked against Apple's schema, and per target against what
// Orchard knows of the device: other targets still get the command.
func testCommandChecks(t *testing.T, backend servertest.Backend) {
	s := backend.Start(t)
	iphone := s.NewDevice(t)
	mac := s.NewDevice(t)
	mac.ProductName, mac.Model, mac.OSVersion = "Mac14,2", "Mac14,2", "15.1"
	for _, d := range []*simdevice.Device{iphone, mac} {
		s.Enroll(t, d)
	}
	for _, tc := range []struct {
		name string
		req  map[string]any
		want string
	}{
		{"unknown request type", map[string]any{"targets": []string{mac.UDID}, "request_type": "MakeCoffee"}, "MakeCoffee"},
		{"missing required key", map[string]any{"targets": []string{mac.UDID}, "request_type": "DeviceInformation"}, "Queries"},
		{"unknown key", map[string]any{"targets": []string{mac.UDID}, "request_type": "DeviceLock", "payload": map[string]any{"Colour": "red"}}, "Colour"},
		{"wrong type", map[string]any{"targets": []string{mac.UDID}, "request_type": "DeviceLock", "payload": map[string]any{"PIN": 123456}}, "PIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out sendResp
			if code := s.API(t, "POST", "/v1/commands", tc.req, &out); code != http.StatusBadRequest || !strings.Contains(out.Error, tc.want) {
				t.Fatalf("= %d %q, want 400 naming %q", code, out.Error, tc.want)
			}
		})
	}
	// What the inventory learned counts: lost mode needs a supervised
	// iPhone, and this one said it is not supervised.
	waitInventory(t, s, iphone.UDID)
	var lost sendResp
	if code := s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{iphone.UDID}, "request_type": "EnableLostMode",
		"payload": map[string]any{"Message": "Lost"}}, &lost); code != http.StatusBadRequest || len(lost.Targets) != 1 || !strings.Contains(lost.Targets[0].Error, "supervis") {
		t.Fatalf("lost mode on an unsupervised iPhone = %d %+v", code, lost)
	}
	// GET /v1/devices filters on what the inventory knows.
	waitInventory(t, s, mac.UDID)
	var macs struct {
		Devices []struct {
			DeviceID string `json:"device_id"`
		} `json:"devices"`
	}
	if code := s.API(t, "GET", "/v1/devices?platform=macOS", nil, &macs); code != 200 || len(macs.Devices) != 1 || macs.Devices[0].DeviceID != mac.UDID {
		t.Fatalf("devices?platform=macOS = %d %+v", code, macs)
	}
	// A key the platform does not support is queued with a warning.
	locked := send(t, s, map[string]any{"targets": []string{iphone.UDID}, "request_type": "DeviceLock", "payload": map[string]any{"PIN": "123456"}})
	if !locked.Targets[0].Queued || len(locked.Targets[0].Warnings) != 1 || !strings.Contains(locked.Targets[0].Warnings[0], "PIN") {
		t.Fatalf("DeviceLock with a PIN to an iPhone = %+v", locked.Targets)
	}
	// SetAutoAdminPassword is macOS only: the iPhone is refused, the Mac gets it.
	out := send(t, s, map[string]any{
		"targets": []string{iphone.UDID, mac.UDID}, "request_type": "SetAutoAdminPassword",
		"payload": map[string]any{"GUID": "2DC6C8B4-9A4F-4B9E-8E5C-1D2F3A4B5C6D", "passwordHash": "c2FsdGVkLWhhc2g="},
	})
	if out.Targets[0].Queued || !strings.Contains(out.Targets[0].Error, "iOS") || !out.Targets[1].Queued {
		t.Fatalf("targets = %+v", out.Targets)
	}
	var listing struct {
		Commands []map[string]any `json:"commands"`
	}
	if code := s.API(t, "GET", "/v1/schema/commands", nil, &listing); code != 200 || len(listing.Commands) < 60 {
		t.Fatalf("schema listing: %d, %d commands", code, len(listing.Commands))
	}
}

// With user authentication on, a network user is admitted: the first
// UserAuthenticate gets an empty DigestChallenge (no prompt), the second
// an empty 200, and the user channel then works.
func testUserAuthenticateOn(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t, func(c *server.Config) { c.UserAuthentication = true })
	mac := s.NewDevice(t)
	s.Enroll(t, mac)
	user := "AB12CD34-0000-4000-8000-00000000USER"
	resp, err := mac.Checkin(ctx, map[string]any{"MessageType": "UserAuthenticate", "UDID": mac.UDID, "UserID": user})
	if err != nil {
		t.Fatal(err)
	}
	m, err := simdevice.DecodePlistMap(resp)
	if challenge, ok := m["DigestChallenge"].(string); err != nil || !ok || challenge != "" {
		t.Fatalf("first UserAuthenticate answer = %q %v", resp, err)
	}
	resp, err = mac.Checkin(ctx, map[string]any{"MessageType": "UserAuthenticate", "UDID": mac.UDID, "UserID": user, "DigestResponse": "x"})
	if err != nil || len(resp) != 0 {
		t.Fatalf("second UserAuthenticate = %q %v", resp, err)
	}
}

// waitInventory waits until the device's answers to the enrollment queries
// are in its inventory (they are written off the request path).
func waitInventory(t *testing.T, s *servertest.Server, udid string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var inv struct {
			Supervised *bool `json:"supervised"`
		}
		if s.API(t, "GET", "/v1/devices/"+udid+"/inventory", nil, &inv) == 200 && inv.Supervised != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no inventory for %s", udid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
