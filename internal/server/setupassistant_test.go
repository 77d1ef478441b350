package server_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
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

// abm is a server with an ABM token at the fake Apple service and its
// devices synced.
type abm struct {
	s     *servertest.Server
	apple *deptest.Server
	token string
}

func newABM(t *testing.T, backend servertest.Backend, devices int) *abm {
	tok := deptest.NewToken()
	apple := deptest.NewServer(t, tok, devices)
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
	if code := s.API(t, "POST", "/v1/dep/tokens", map[string]any{"name": "Main", "token": string(deptest.P7M(t, depCert, tok))}, &token); code != http.StatusCreated {
		t.Fatalf("upload token = %d", code)
	}
	if code := s.API(t, "POST", "/v1/dep/tokens/"+token.ID+"/sync", nil, nil); code != 200 && code != 409 {
		t.Fatalf("sync = %d", code)
	}
	a := &abm{s: s, apple: apple, token: token.ID}
	for i := range devices {
		a.waitStatus(t, deptest.Serial(i), "ready", "missing_profile")
	}
	return a
}

func (a *abm) waitStatus(t *testing.T, serial string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct {
			Devices []struct {
				Status string `json:"status"`
			} `json:"devices"`
		}
		a.s.API(t, "GET", "/v1/dep/devices?serial="+serial, nil, &list)
		if len(list.Devices) == 1 && (len(want) == 0 || slices.Contains(want, list.Devices[0].Status)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s never became %v: %+v", serial, want, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profile defines an ADE profile and assigns it to serials; it answers
// the profile's ID and Apple's copy of it.
func (a *abm) profile(t *testing.T, spec map[string]any, serials ...string) (string, map[string]any) {
	var p struct {
		ID        string `json:"id"`
		AppleUUID string `json:"apple_uuid"`
	}
	if code := a.s.API(t, "POST", "/v1/dep/tokens/"+a.token+"/profiles", spec, &p); code != http.StatusCreated {
		t.Fatalf("create profile %v = %d", spec, code)
	}
	if code := a.s.API(t, "POST", "/v1/dep/tokens/"+a.token+"/profiles/"+p.ID+"/devices", map[string]any{"devices": serials}, nil); code != 200 {
		t.Fatalf("assign = %d", code)
	}
	for _, s := range serials {
		a.waitStatus(t, s, "ready")
	}
	uuid := p.AppleUUID
	if uuid == "" {
		a.s.API(t, "GET", "/v1/dep/tokens/"+a.token+"/profiles/"+p.ID, nil, &p)
		uuid = p.AppleUUID
	}
	return p.ID, a.apple.Profile(uuid)
}

func (a *abm) device(t *testing.T, serial string) *simdevice.Device {
	d := a.s.NewDevice(t)
	d.SerialNumber, d.Apple = serial, a.s.Apple
	return d
}

func deviceInfo(t *testing.T, d *simdevice.Device) string {
	info, err := d.MachineInfo()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(info)
}

// Setup Assistant sign-in (ADE with modern authentication): the web view
// opens configuration_web_url with the signed MachineInfo header, the user
// signs in, and the answer is the enrollment profile bound to that serial
// and that user; the device enrolls and shows the user as primary user.
func testSetupAssistantSignIn(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	a := newABM(t, backend, 2)
	s := a.s
	if code := s.API(t, "POST", "/v1/users", map[string]any{"username": "ann", "password": "correct horse battery"}, nil); code != http.StatusCreated {
		t.Fatalf("create user = %d", code)
	}
	if code := s.API(t, "POST", "/v1/terms", map[string]any{"name": "aup", "title": "Acceptable use", "text": "Use it with care.", "all_users": true}, nil); code != http.StatusCreated {
		t.Fatalf("create terms = %d", code)
	}
	_, atApple := a.profile(t, map[string]any{"name": "Modern", "user_affinity": "setup_assistant_modern",
		"minimum_os": map[string]any{"iOS": map[string]any{"version": "17.2"}}}, deptest.Serial(0))
	webURL, _ := atApple["configuration_web_url"].(string)
	u, err := url.Parse(webURL)
	if err != nil || !strings.HasPrefix(webURL, s.URL+"/enroll/ade?") || u.Query().Get("auth") != "modern" {
		t.Fatalf("configuration_web_url at Apple = %q", webURL)
	}
	path := strings.TrimPrefix(webURL, s.URL)
	view := newBrowser(t, s, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
	if resp, _ := view.do("GET", path, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(view.page, "did not identify itself") {
		t.Fatalf("web view without x-apple-aspen-deviceinfo = %d: %s", resp.StatusCode, view.page)
	}
	for _, bad := range []string{"not base64 at all!", base64.StdEncoding.EncodeToString([]byte("<plist/>")), strings.Repeat("A", 200_000)} {
		view.header = http.Header{"X-Apple-Aspen-Deviceinfo": {bad}}
		// An oversized one stops at the server's header limit (431).
		if resp, _ := view.do("GET", path, nil); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("web view with a bad device info header (%d bytes) = %d, want 400", len(bad), resp.StatusCode)
		}
	}
	other := a.device(t, deptest.Serial(1)) // assigned no profile with this URL
	view.header = http.Header{"X-Apple-Aspen-Deviceinfo": {deviceInfo(t, other)}}
	if resp, _ := view.do("GET", path, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(view.page, "not assigned") {
		t.Fatalf("another serial's MachineInfo = %d: %s", resp.StatusCode, view.page)
	}
	dev := a.device(t, deptest.Serial(0))
	// The MachineInfo post to the enrollment URL would skip the sign-in.
	info, err := dev.MachineInfo()
	if err != nil {
		t.Fatal(err)
	}
	post, err := s.Client.Post(s.URL+strings.Split(path, "&auth=")[0], "application/pkcs7-signature", bytes.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, post); post.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "requires signing in") {
		t.Fatalf("MachineInfo post for a modern-authentication profile = %d %s, want 403", post.StatusCode, body)
	}
	view.header = http.Header{"X-Apple-Aspen-Deviceinfo": {deviceInfo(t, dev)}}
	resp, _ := view.do("GET", path, nil)
	if resp.StatusCode != 200 || !strings.Contains(view.page, `id="signin"`) || resp.Header.Get("X-Frame-Options") != "" {
		t.Fatalf("web view sign-in page = %d (X-Frame-Options %q): %s", resp.StatusCode, resp.Header.Get("X-Frame-Options"), view.page)
	}
	view.header = nil // the header comes with the first load only
	if resp, _ := view.do("POST", "/portal/signin", url.Values{"csrf": {view.csrf()}, "username": {"ann"}, "password": {"wrong"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password in the web view = %d", resp.StatusCode)
	}
	resp, _ = view.do("POST", "/portal/signin", url.Values{"csrf": {view.csrf()}, "username": {"ann"}, "password": {"correct horse battery"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/portal/terms" || !strings.Contains(view.page, "Acceptable use") {
		t.Fatalf("sign-in in the web view = %d at %s, want the terms: %s", resp.StatusCode, resp.Request.URL.Path, view.page)
	}
	// A post straight to the profile step gets no profile: refused in the
	// web view (still framable) and recorded with the device.
	if resp, _ := view.do("POST", "/portal/profile", url.Values{"csrf": {view.csrf()}}); resp.StatusCode != http.StatusForbidden ||
		strings.Contains(resp.Header.Get("Content-Type"), "aspen") || resp.Header.Get("X-Frame-Options") != "" ||
		!strings.Contains(view.page, "Accept the terms first") || !strings.Contains(view.page, `href="/portal/terms"`) {
		t.Fatalf("profile post before the terms in the web view = %d %s (X-Frame-Options %q): %s", resp.StatusCode,
			resp.Header.Get("Content-Type"), resp.Header.Get("X-Frame-Options"), view.page)
	}
	if f := lastFailure(t, s, "?reason=terms_not_accepted"); f.Method != "ade" || f.Stage != "portal" || f.User != "ann" ||
		f.Serial != dev.SerialNumber || f.UDID != dev.UDID || f.Platform != "iOS" || f.Rule != "aup" {
		t.Fatalf("Setup Assistant terms refusal recorded as %+v", f)
	}
	if resp, _ := view.do("POST", "/portal/terms", url.Values{"csrf": {view.csrf()}, "doc": {"aup:1"}}); resp.StatusCode != http.StatusBadRequest ||
		strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatalf("terms not accepted in the web view = %d %s, want 400 and no profile", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, profile := view.do("POST", "/portal/terms", url.Values{"csrf": {view.csrf()}, "doc": {"aup:1"}, "accept": {"yes"}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("terms accepted in the web view = %d %s, want the profile: %s", resp.StatusCode, resp.Header.Get("Content-Type"), profile)
	}
	if as := acceptances(t, s); len(as) != 1 || as[0].Username != "ann" || !as[0].AcceptedLatest {
		t.Fatalf("acceptances after Setup Assistant = %+v", as)
	}
	ch := onlyChallenge(t, s, a.token)
	if ch.User != "ann" || ch.ForSerial != dev.SerialNumber || ch.ForUDID != dev.UDID || !ch.AppleVerified {
		t.Fatalf("challenge = %+v, want bound to ann and the device", ch)
	}
	if err := dev.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	var shown struct {
		PrimaryUser      string `json:"primary_user"`
		EnrollmentMethod string `json:"enrollment_method"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
	if shown.PrimaryUser != "ann" || shown.EnrollmentMethod != "ade" {
		t.Fatalf("device after Setup Assistant sign-in = %+v, want primary user ann by ade", shown)
	}
	if got := ownershipShown(t, s, dev.UDID); got != "corporate ade" {
		t.Fatalf("device view of the ADE iPhone: ownership %q", got)
	}
	// The challenge named the web view's session: enrolling completed it.
	sess, err := s.Store().EnrollmentSession(ctx, ch.ForSession)
	if err != nil {
		t.Fatalf("the Setup Assistant session %q: %v", ch.ForSession, err)
	}
	var stages []string
	for _, st := range sess.Stages {
		stages = append(stages, st.Stage)
	}
	if got := strings.Join(stages, " "); got != "signin_shown signed_in terms_shown terms_accepted profile_downloaded enrolled" ||
		sess.Method != "setup-assistant" || sess.Serial != dev.SerialNumber || sess.Username != "ann" {
		t.Fatalf("Setup Assistant session = %+v, stages %s", sess.EnrollmentFacts, got)
	}
}

// saSignIn opens the Setup Assistant web view of dev at path and signs
// user in (no terms, no categories): the answer is the profile or a
// refusal page.
func saSignIn(t *testing.T, s *servertest.Server, path string, dev *simdevice.Device, user string) (*http.Response, *browser, []byte) {
	t.Helper()
	view := newBrowser(t, s, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
	view.header = http.Header{"X-Apple-Aspen-Deviceinfo": {deviceInfo(t, dev)}}
	if resp, _ := view.do("GET", path, nil); resp.StatusCode != 200 || !strings.Contains(view.page, `id="signin"`) {
		t.Fatalf("web view sign-in page for %s = %d: %s", dev.SerialNumber, resp.StatusCode, view.page)
	}
	view.header = nil
	resp, body := view.do("POST", "/portal/signin", url.Values{"csrf": {view.csrf()}, "username": {user}, "password": {"correct horse battery"}})
	return resp, view, body
}

// The Setup Assistant sign-in asks the policy with the user known: a user
// at their device limit is refused in the web view, before any profile,
// and the refusal is recorded with the device (method ade); under the
// limit, or for the device the user holds already, the profile comes. ADE
// devices are corporate, so "block personal" does not refuse them, but a
// group policy blocking the platform does.
func testSetupAssistantDeviceLimit(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	a := newABM(t, backend, 3)
	s := a.s
	for _, u := range []string{"cy", "bob"} {
		if code := s.API(t, "POST", "/v1/users", map[string]any{"username": u, "password": "correct horse battery"}, nil); code != http.StatusCreated {
			t.Fatalf("create user %s = %d", u, code)
		}
	}
	if code := s.API(t, "POST", "/v1/groups", map[string]any{"name": "no-phones"}, nil); code != http.StatusCreated {
		t.Fatalf("create group = %d", code)
	}
	if code := s.API(t, "POST", "/v1/groups/no-phones/members", map[string]any{"usernames": []string{"bob"}}, nil); code/100 != 2 {
		t.Fatalf("add member = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/enrollment/policies/default-platform", map[string]any{"name": "Default",
		"platforms": map[string]any{"iOS": map[string]any{"block_personal": true}}}, nil); code != 200 {
		t.Fatalf("default platform policy = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/enrollment/policies/default-limit", map[string]any{"name": "Default", "device_limit": 1}, nil); code != 200 {
		t.Fatalf("default limit policy = %d", code)
	}
	if code := s.API(t, "POST", "/v1/enrollment/policies", map[string]any{"kind": "platform", "name": "No phones", "priority": 1,
		"groups": []string{"no-phones"}, "platforms": map[string]any{"iOS": map[string]any{"block": true}}}, nil); code != http.StatusCreated {
		t.Fatalf("group policy = %d", code)
	}
	var decided struct {
		Allowed     bool   `json:"allowed"`
		Ownership   string `json:"ownership"`
		OwnershipBy string `json:"ownership_by"`
	}
	if code := s.API(t, "POST", "/v1/enrollment/decide", map[string]any{"method": "ade", "platform": "iOS", "os_version": "17.5"}, &decided); code != 200 ||
		!decided.Allowed || decided.Ownership != "corporate" || decided.OwnershipBy != "ade" {
		t.Fatalf("decide for an ADE iPhone = %d %+v, want allowed, corporate by ade", code, decided)
	}
	_, atApple := a.profile(t, map[string]any{"name": "Modern", "user_affinity": "setup_assistant_modern"},
		deptest.Serial(0), deptest.Serial(1), deptest.Serial(2))
	path := strings.TrimPrefix(atApple["configuration_web_url"].(string), s.URL)

	// Under the limit (and personal devices blocked): the profile.
	first := a.device(t, deptest.Serial(0))
	resp, _, profile := saSignIn(t, s, path, first, "cy")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("cy's first device = %d %s, want the profile: %s", resp.StatusCode, resp.Header.Get("Content-Type"), profile)
	}
	if err := first.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, first)
	var lim struct {
		Held  int `json:"held"`
		Limit int `json:"limit"`
	}
	if s.API(t, "GET", "/v1/users/cy/limit", nil, &lim); lim.Held != 1 || lim.Limit != 1 {
		t.Fatalf("cy's limit after the first device = %+v, want 1 of 1", lim)
	}

	// At the limit: refused in the web view (framable), no profile, no
	// challenge, and recorded.
	second := a.device(t, deptest.Serial(1))
	resp, view, body := saSignIn(t, s, path, second, "cy")
	if resp.StatusCode != http.StatusForbidden || strings.Contains(resp.Header.Get("Content-Type"), "aspen") || resp.Header.Get("X-Frame-Options") != "" ||
		!strings.Contains(view.page, "already has 1 of 1 devices allowed") || !strings.Contains(view.page, "raise your device limit") {
		t.Fatalf("cy's second device at the limit = %d %s (X-Frame-Options %q): %s", resp.StatusCode, resp.Header.Get("Content-Type"),
			resp.Header.Get("X-Frame-Options"), body)
	}
	onlyChallenge(t, s, a.token) // the first device's, nothing more
	if f := lastFailure(t, s, "?reason=device_limit"); f.Method != "ade" || f.Stage != "portal" || f.User != "cy" ||
		f.Serial != second.SerialNumber || f.UDID != second.UDID || f.OSVersion != second.OSVersion || f.Platform != "iOS" ||
		f.Policy != "default-limit" || f.Rule != "device_limit" {
		t.Fatalf("Setup Assistant device-limit refusal recorded as %+v", f)
	}

	// The device cy holds already is not counted twice.
	if resp, _, body := saSignIn(t, s, path, first, "cy"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("cy's own device again at the limit = %d: %s", resp.StatusCode, body)
	}

	// A group policy blocking iOS refuses an ADE iPhone too.
	third := a.device(t, deptest.Serial(2))
	if resp, view, _ := saSignIn(t, s, path, third, "bob"); resp.StatusCode != http.StatusForbidden || !strings.Contains(view.page, "iOS devices may not enroll") {
		t.Fatalf("bob's iPhone under a platform block = %d: %s", resp.StatusCode, view.page)
	}
	if f := lastFailure(t, s, "?reason=platform_blocked"); f.Method != "ade" || f.User != "bob" || f.Serial != third.SerialNumber || f.Rule != "iOS.block" {
		t.Fatalf("Setup Assistant platform refusal recorded as %+v", f)
	}
}

func onlyChallenge(t *testing.T, s *servertest.Server, token string) storage.Challenge {
	t.Helper()
	var list []storage.Challenge
	profiles := struct {
		Profiles []struct {
			ID string `json:"id"`
		} `json:"profiles"`
	}{}
	s.API(t, "GET", "/v1/dep/tokens/"+token+"/profiles", nil, &profiles)
	for _, p := range profiles.Profiles {
		chs, err := s.Store().ChallengesFor(context.Background(), token+"/"+p.ID)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, chs...)
	}
	if len(list) != 1 {
		t.Fatalf("challenges issued = %d, want 1", len(list))
	}
	return list[0]
}

// An ADE profile's minimum OS: a device below it that can update in Setup
// Assistant gets Apple's softwareupdate.required 403, on the MachineInfo
// post and on the modern-authentication page; one that cannot is refused
// with the reason; both are recorded; a device at the minimum enrolls.
func testADEMinimumOS(t *testing.T, backend servertest.Backend) {
	a := newABM(t, backend, 4)
	s := a.s
	minimum := map[string]any{"iOS": map[string]any{"version": "18.0", "build": "22A3354"}, "macOS": map[string]any{"version": "15.0"}}
	id, _ := a.profile(t, map[string]any{"name": "Needs 18", "minimum_os": minimum}, deptest.Serial(0), deptest.Serial(1), deptest.Serial(2))
	_, atApple := a.profile(t, map[string]any{"name": "Needs 18, sign-in", "user_affinity": "setup_assistant_modern", "minimum_os": minimum},
		deptest.Serial(3))
	postURL := enroll.ADEEnrollURL(s.URL, a.token, id)
	webPath := strings.TrimPrefix(atApple["configuration_web_url"].(string), s.URL)
	old := a.device(t, deptest.Serial(0)) // 17.5
	wantUpdate := func(what string, resp *http.Response, body []byte) {
		t.Helper()
		var got struct {
			Code    string            `json:"code"`
			Details map[string]string `json:"details"`
		}
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &got) != nil ||
			got.Code != "com.apple.softwareupdate.required" || got.Details["OSVersion"] != "18.0" || got.Details["BuildVersion"] != "22A3354" {
			t.Fatalf("%s below the minimum = %d %s %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	info, err := old.MachineInfo()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client.Post(postURL, "application/pkcs7-signature", bytes.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	wantUpdate("MachineInfo post", resp, readAll(t, resp))
	view := newBrowser(t, s, iPhoneUA)
	view.header = http.Header{"X-Apple-Aspen-Deviceinfo": {deviceInfo(t, a.device(t, deptest.Serial(3)))}}
	r2, body := view.do("GET", webPath, nil)
	wantUpdate("modern-auth page", r2, body)

	stuck := a.device(t, deptest.Serial(1))
	stuck.CannotUpdateInSetup = true
	if info, err = stuck.MachineInfo(); err != nil {
		t.Fatal(err)
	}
	resp, err = s.Client.Post(postURL, "application/pkcs7-signature", bytes.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "needs 18.0 or later") {
		t.Fatalf("device that cannot update = %d %s", resp.StatusCode, body)
	}
	var fails struct {
		Failures []storage.EnrollmentFailure `json:"failures"`
	}
	s.API(t, "GET", "/v1/enrollment/failures", nil, &fails)
	n := 0
	for _, f := range fails.Failures {
		if f.Code == "os_update_required" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("os_update_required failures recorded = %d, want 3: %+v", n, fails.Failures)
	}
	current := a.device(t, deptest.Serial(2))
	current.OSVersion = "18.0"
	if info, err = current.MachineInfo(); err != nil {
		t.Fatal(err)
	}
	resp, err = s.Client.Post(postURL, "application/pkcs7-signature", bytes.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("device at the minimum = %d %s", resp.StatusCode, body)
	}
	if code := s.API(t, "POST", "/v1/dep/tokens/"+a.token+"/profiles", map[string]any{"name": "Bad", "minimum_os": map[string]any{"iOS": map[string]any{"version": "eighteen"}}}, nil); code != http.StatusBadRequest {
		t.Fatalf("bad minimum_os = %d, want 400", code)
	}
}
