package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

// apiRaw calls the admin API with a raw body (CSV) or for a raw answer.
func apiRaw(t *testing.T, s *servertest.Server, method, path, ctype string, body []byte) (int, []byte, error) {
	t.Helper()
	c := &apiclient.Client{BaseURL: s.URL, Key: s.APIKey(), HTTP: s.Client}
	return c.DoRaw(context.Background(), method, path, ctype, body)
}

// policyDevices numbers the devices these tests make, apart from servertest's.
var policyDevices atomic.Int64

// policyDevice is a simulated device of a platform and OS, not yet enrolled.
func policyDevice(s *servertest.Server, product, osVersion string) *simdevice.Device {
	n := policyDevices.Add(1)
	return &simdevice.Device{
		UDID: fmt.Sprintf("0000POL1-%016X", n), SerialNumber: fmt.Sprintf("P%011d", n),
		Model: product, ProductName: product, OSVersion: osVersion, BuildVersion: "B1", DeviceName: fmt.Sprintf("Policy device %d", n),
		Topic: servertest.PushTopic, Token: bytes.Repeat([]byte{byte(n), 0x5A}, 16), PushMagic: fmt.Sprintf("PM-POL-%d", n),
		CheckinURL: s.URL + "/mdm/checkin", ServerURL: s.URL + "/mdm/connect", Client: s.Client,
	}
}

// enrollFor enrolls dev through a one-time invitation for user ("" none):
// the profile, SCEP, then Authenticate and TokenUpdate. It returns the
// error of the device's check-ins.
func enrollFor(t *testing.T, s *servertest.Server, user string, dev *simdevice.Device) error {
	t.Helper()
	var inv struct {
		URL string `json:"url"`
	}
	if code := s.API(t, "POST", "/v1/enrollment/invitations", map[string]any{"label": "policy", "user": user}, &inv); code != http.StatusCreated {
		t.Fatalf("invitation for %q = %d", user, code)
	}
	profile := invitationProfile(t, s, inv.URL)
	if err := dev.EnrollFromProfile(context.Background(), profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	return dev.Enroll(context.Background())
}

// refused checks that err is the 403 of a policy refusal with code.
func refused(t *testing.T, err error, code string) {
	t.Helper()
	var se *simdevice.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Body, "("+code+")") {
		t.Fatalf("want a 403 refusal %s, got %v", code, err)
	}
}

type failureView struct {
	Code, Method, Stage, User, UDID, Serial, Platform, Policy, Rule, Reason string
	OSVersion                                                               string `json:"os_version"`
}

func lastFailure(t *testing.T, s *servertest.Server, query string) failureView {
	t.Helper()
	var page struct {
		Failures []failureView `json:"failures"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/failures"+query, nil, &page); code != 200 || len(page.Failures) == 0 {
		t.Fatalf("failures%s = %d %+v", query, code, page)
	}
	return page.Failures[len(page.Failures)-1]
}

// ownershipShown is a device's ownership and why, as GET /v1/devices/{id}
// shows them.
func ownershipShown(t *testing.T, s *servertest.Server, udid string) string {
	t.Helper()
	var v struct {
		Ownership   string `json:"ownership"`
		OwnershipBy string `json:"ownership_by"`
	}
	if code := s.API(t, "GET", "/v1/devices/"+udid, nil, &v); code != 200 {
		t.Fatalf("GET /v1/devices/%s = %d", udid, code)
	}
	return strings.TrimSuffix(v.Ownership+" "+v.OwnershipBy, " ")
}

func policySetup(t *testing.T, s *servertest.Server) {
	t.Helper()
	for _, u := range []string{"ann", "bob", "cy", "dem"} {
		if code := s.API(t, "POST", "/v1/users", map[string]any{"username": u}, nil); code != http.StatusCreated {
			t.Fatalf("create user %s = %d", u, code)
		}
	}
	if code := s.API(t, "POST", "/v1/groups", map[string]any{"name": "no-phones"}, nil); code != http.StatusCreated {
		t.Fatalf("create group = %d", code)
	}
	if code := s.API(t, "POST", "/v1/groups/no-phones/members", map[string]any{"usernames": []string{"bob"}}, nil); code/100 != 2 {
		t.Fatalf("add member = %d", code)
	}
	var saved struct {
		Warnings []string `json:"warnings"`
	}
	if code := s.API(t, "PUT", "/v1/enrollment/policies/default-platform", map[string]any{"name": "Default",
		"platforms": map[string]any{"iOS": map[string]any{"min_os": "17.0"}, "macOS": map[string]any{"block_personal": true}}}, &saved); code != 200 || len(saved.Warnings) != 0 {
		t.Fatalf("default platform policy = %d %v", code, saved.Warnings)
	}
	if code := s.API(t, "PUT", "/v1/enrollment/policies/default-limit", map[string]any{"name": "Default", "device_limit": 2}, nil); code != 200 {
		t.Fatalf("default limit policy = %d", code)
	}
	if code := s.API(t, "POST", "/v1/enrollment/policies", map[string]any{"kind": "platform", "name": "No phones", "priority": 1,
		"groups": []string{"no-phones"}, "platforms": map[string]any{"iOS": map[string]any{"block": true}}}, nil); code != http.StatusCreated {
		t.Fatalf("group policy = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/users/dem/dem", map[string]any{"dem": true}, nil); code != 200 {
		t.Fatalf("make dem a DEM = %d", code)
	}
}

// testEnrollmentPolicy drives real enrollments (invitation, SCEP,
// Authenticate) into every policy rule.
func testEnrollmentPolicy(t *testing.T, b servertest.Backend) {
	s := b.Start(t)
	policySetup(t, s)

	t.Run("OSBelowMinimum", func(t *testing.T) {
		dev := policyDevice(s, "iPhone15,2", "16.7")
		refused(t, enrollFor(t, s, "ann", dev), "os_too_old")
		f := lastFailure(t, s, "?reason=os_too_old")
		if f.User != "ann" || f.UDID != dev.UDID || f.Platform != "iOS" || f.OSVersion != "16.7" || f.Policy != "default-platform" ||
			f.Rule != "iOS.min_os" || f.Method != storage.KindInvitation || f.Stage != "authenticate" {
			t.Errorf("failure record: %+v", f)
		}
		// Nothing but the failure was written.
		if code := s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, nil); code != http.StatusNotFound {
			t.Errorf("refused device is listed: %d", code)
		}
		var lim struct{ Held int }
		s.API(t, "GET", "/v1/users/ann/limit", nil, &lim)
		if lim.Held != 0 {
			t.Errorf("a refused device took a slot: %+v", lim)
		}
	})

	t.Run("BlockedPlatform", func(t *testing.T) {
		refused(t, enrollFor(t, s, "bob", policyDevice(s, "iPhone15,2", "17.5")), "platform_blocked")
		if f := lastFailure(t, s, "?user=bob"); f.Rule != "iOS.block" || f.Code != "platform_blocked" {
			t.Errorf("failure record: %+v", f)
		}
	})

	t.Run("PersonalBlockedCorporateAdmitted", func(t *testing.T) {
		refused(t, enrollFor(t, s, "", policyDevice(s, "Mac14,2", "15.1")), "personal_blocked")
		corp := policyDevice(s, "Mac14,2", "15.1") // the same model
		code, body, err := apiRaw(t, s, "POST", "/v1/corporate-identifiers/import?kind=serial", "text/csv", []byte(strings.ToLower(corp.SerialNumber)+",Lab Mac\n"))
		if err != nil || code != 200 {
			t.Fatalf("import = %d %s %v", code, body, err)
		}
		if err := enrollFor(t, s, "", corp); err != nil {
			t.Fatalf("a Mac with a corporate serial was refused: %v", err)
		}
		var list struct {
			Devices []struct {
				ID string `json:"device_id"`
			} `json:"devices"`
		}
		s.API(t, "GET", "/v1/devices?ownership=corporate", nil, &list)
		if len(list.Devices) != 1 || list.Devices[0].ID != corp.UDID {
			t.Errorf("corporate devices: %+v", list)
		}
		var ids struct {
			Identifiers []struct {
				Value          string `json:"value"`
				EnrolledDevice string `json:"enrolled_device"`
			} `json:"identifiers"`
		}
		s.API(t, "GET", "/v1/corporate-identifiers?kind=serial", nil, &ids)
		if len(ids.Identifiers) != 1 || ids.Identifiers[0].EnrolledDevice != corp.UDID {
			t.Errorf("identifier does not show its enrollment: %+v", ids)
		}
		if got := ownershipShown(t, s, corp.UDID); got != "corporate corporate_identifier" {
			t.Errorf("device view of the corporate-serial Mac: ownership %q", got)
		}
		// An admin's word overrides the decision.
		if code := s.API(t, "PUT", "/v1/devices/"+corp.UDID+"/ownership", map[string]any{"ownership": "personal"}, nil); code != 200 {
			t.Fatalf("set ownership = %d", code)
		}
		s.API(t, "GET", "/v1/devices?ownership=corporate", nil, &list)
		if len(list.Devices) != 0 {
			t.Errorf("corporate devices after the admin made it personal: %+v", list)
		}
		if got := ownershipShown(t, s, corp.UDID); got != "personal admin" {
			t.Errorf("device view after the admin made it personal: ownership %q", got)
		}
		s.API(t, "GET", "/v1/devices?ownership=personal", nil, &list)
		listed := false
		for _, d := range list.Devices {
			listed = listed || d.ID == corp.UDID
		}
		if !listed {
			t.Errorf("personal devices after the admin's change: %+v", list)
		}
		if code := s.API(t, "PUT", "/v1/devices/"+corp.UDID+"/ownership", map[string]any{"ownership": "mine"}, nil); code != http.StatusBadRequest {
			t.Errorf("bad ownership = %d", code)
		}
	})

	t.Run("UserAtLimit", func(t *testing.T) {
		for range 2 {
			dev := policyDevice(s, "iPhone15,2", "17.5")
			if err := enrollFor(t, s, "ann", dev); err != nil {
				t.Fatal(err)
			}
			if got := ownershipShown(t, s, dev.UDID); got != "personal" {
				t.Errorf("device view of a personal iPhone: ownership %q, want personal and no why", got)
			}
		}
		refused(t, enrollFor(t, s, "ann", policyDevice(s, "iPad13,16", "18.1")), "device_limit")
		var lim struct {
			Held    int  `json:"held"`
			Limit   int  `json:"limit"`
			AtLimit bool `json:"at_limit"`
		}
		s.API(t, "GET", "/v1/users/ann/limit", nil, &lim)
		if lim.Held != 2 || lim.Limit != 2 || !lim.AtLimit {
			t.Errorf("ann's limit: %+v", lim)
		}
		var devs struct {
			Devices []struct{ ID string } `json:"devices"`
		}
		s.API(t, "GET", "/v1/devices?user=ann", nil, &devs)
		if len(devs.Devices) != 2 {
			t.Errorf("ann's devices (primary user): %+v", devs)
		}
	})

	t.Run("ConcurrentAtLimit", func(t *testing.T) {
		if err := enrollFor(t, s, "cy", policyDevice(s, "iPhone15,2", "17.5")); err != nil {
			t.Fatal(err)
		}
		// Two devices with their certificates, racing only at Authenticate.
		devs := []*simdevice.Device{policyDevice(s, "iPhone15,2", "17.5"), policyDevice(s, "iPhone15,2", "17.5")}
		for _, d := range devs {
			var inv struct {
				URL string `json:"url"`
			}
			s.API(t, "POST", "/v1/enrollment/invitations", map[string]any{"user": "cy"}, &inv)
			if err := d.EnrollFromProfile(context.Background(), invitationProfile(t, s, inv.URL), mustKey(t), s.Client); err != nil {
				t.Fatal(err)
			}
		}
		errs := make([]error, len(devs))
		var wg sync.WaitGroup
		for i, d := range devs {
			wg.Go(func() { errs[i] = d.Authenticate(context.Background()) })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else {
				refused(t, err, "device_limit")
			}
		}
		if won != 1 {
			t.Fatalf("%d of 2 devices enrolled into cy's last slot: %v", won, errs)
		}
	})

	t.Run("DEMPastFifteen", func(t *testing.T) {
		for i := range 16 {
			dev := policyDevice(s, "iPad13,16", "18.1")
			if err := enrollFor(t, s, "dem", dev); err != nil {
				t.Fatalf("DEM device %d: %v", i+1, err)
			}
			if i == 0 {
				if got := ownershipShown(t, s, dev.UDID); got != "corporate dem" {
					t.Errorf("device view of a DEM's iPad: ownership %q", got)
				}
			}
		}
		var lim struct {
			DEM  bool `json:"dem"`
			Held int  `json:"held"`
		}
		s.API(t, "GET", "/v1/users/dem/limit", nil, &lim)
		if !lim.DEM || lim.Held != 16 {
			t.Errorf("DEM's devices: %+v", lim)
		}
		var devs struct {
			Devices []struct{ ID string } `json:"devices"`
		}
		s.API(t, "GET", "/v1/devices?user=dem", nil, &devs)
		if len(devs.Devices) != 0 {
			t.Errorf("DEM enrollments are userless, yet dem is the primary user of %d", len(devs.Devices))
		}
	})

	t.Run("SetupAssistant", func(t *testing.T) {
		// Configurator devices are corporate: "block personal" never refuses
		// them; the OS minimum does, before a profile is handed out.
		var prof struct {
			ID string `json:"id"`
		}
		if code := s.API(t, "POST", "/v1/configurator/profiles", map[string]any{"name": "Lab"}, &prof); code != http.StatusCreated {
			t.Fatalf("create configurator profile = %d", code)
		}
		mac, old := policyDevice(s, "Mac14,2", "15.1"), policyDevice(s, "iPad13,16", "16.1")
		for _, d := range []*simdevice.Device{mac, old} {
			d.Apple = s.Apple
			if code, body, err := apiRaw(t, s, "POST", "/v1/configurator/serials?profile_id="+prof.ID, "text/csv", []byte(d.SerialNumber+",lab\n")); err != nil || code != 200 {
				t.Fatalf("import serial = %d %s %v", code, body, err)
			}
		}
		post := func(d *simdevice.Device) (int, []byte) {
			info, err := d.MachineInfo()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.Client.Post(s.URL+"/enroll/configurator/"+prof.ID, "application/pkcs7-signature", bytes.NewReader(info))
			if err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, readAll(t, resp)
		}
		if code, body := post(old); code != http.StatusForbidden || !strings.Contains(string(body), "older than the minimum") {
			t.Fatalf("iPad below the minimum at Setup Assistant = %d %s", code, body)
		}
		if f := lastFailure(t, s, "?reason=os_too_old&method=configurator"); f.Stage != "machineinfo" || f.Serial != old.SerialNumber || f.Rule != "iOS.min_os" {
			t.Errorf("failure record: %+v", f)
		}
		code, profile := post(mac)
		if code != 200 {
			t.Fatalf("corporate Mac at Setup Assistant = %d %s", code, profile)
		}
		if err := mac.EnrollFromProfile(context.Background(), profile, mustKey(t), s.Client); err != nil {
			t.Fatal(err)
		}
		if err := mac.Enroll(context.Background()); err != nil {
			t.Fatalf("a Configurator Mac was refused although block personal applies only to personal devices: %v", err)
		}
		if got := ownershipShown(t, s, mac.UDID); got != "corporate configurator" {
			t.Errorf("device view of the Configurator Mac: ownership %q", got)
		}
	})

	t.Run("ReportsAndCSV", func(t *testing.T) {
		code, body, err := apiRaw(t, s, "GET", "/v1/enrollment/failures.csv?reason=device_limit", "", nil)
		if err != nil || code != 200 || !strings.HasPrefix(string(body), "id,at,code,") || !strings.Contains(string(body), ",device_limit,") {
			t.Fatalf("failures CSV = %d %s %v", code, body, err)
		}
		var sum struct {
			Days []struct {
				Total       int            `json:"total"`
				ByMethod    map[string]int `json:"by_method"`
				ByOwnership map[string]int `json:"by_ownership"`
			} `json:"days"`
			Users []struct {
				User string `json:"user"`
				Held int    `json:"held"`
			} `json:"users"`
		}
		if code := s.API(t, "GET", "/v1/enrollment/summary?days=1", nil, &sum); code != 200 || len(sum.Days) != 1 {
			t.Fatalf("summary = %d %+v", code, sum)
		}
		// The Mac (corporate, then made personal by the admin), 2 of ann's,
		// 2 of cy's, 16 of the DEM's and the Configurator Mac (corporate).
		if d := sum.Days[0]; d.Total != 22 || d.ByOwnership["corporate"] != 17 || d.ByOwnership["personal"] != 5 || d.ByMethod["configurator"] != 1 {
			t.Errorf("today: %+v", d)
		}
		if len(sum.Users) != 3 {
			t.Errorf("users with devices: %+v", sum.Users)
		}
	})
}
