package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
)

const (
	iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	macUA    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
)

// browser is a person's browser on the portal: cookies, a User-Agent, and
// the last page it saw (for its CSRF token).
type browser struct {
	t      *testing.T
	s      *servertest.Server
	c      *http.Client
	ua     string
	page   string
	header http.Header // sent with every request (Setup Assistant's device info)
}

func newBrowser(t *testing.T, s *servertest.Server, ua string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, s: s, ua: ua, c: &http.Client{Transport: s.Client.Transport, Jar: jar}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) csrf() string {
	m := csrfRE.FindStringSubmatch(b.page)
	if m == nil {
		b.t.Fatalf("no CSRF token on the page: %s", b.page)
	}
	return m[1]
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.s.URL+path, body)
	req.Header.Set("User-Agent", b.ua)
	for k, v := range b.header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.s.URL)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	data := readAll(b.t, resp)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		b.page = string(data)
	}
	return resp, data
}

// invitationProfile opens an invitation link's landing page and presses
// its button, as a person does, and returns the profile.
func invitationProfile(t *testing.T, s *servertest.Server, link string) []byte {
	t.Helper()
	b := newBrowser(t, s, iPhoneUA)
	path := strings.TrimPrefix(link, s.URL)
	b.do("GET", path, nil)
	resp, profile := b.do("POST", path, url.Values{"csrf": {b.csrf()}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("invitation profile = %d %s", resp.StatusCode, profile)
	}
	return profile
}

func (b *browser) signIn(username, password string) (*http.Response, string) {
	b.t.Helper()
	if resp, _ := b.do("GET", "/portal", nil); resp.StatusCode != 200 {
		b.t.Fatalf("GET /portal = %d", resp.StatusCode)
	}
	resp, body := b.do("POST", "/portal/signin", url.Values{"csrf": {b.csrf()}, "username": {username}, "password": {password}})
	return resp, string(body)
}

// The whole portal flow over real HTTPS: sign in, pick a category, get the
// profile bound to the user, a simulated device enrolls with it, and the
// device shows the user as its primary user, and its category (whose group
// the user joined). The profile is single-use. Step times are logged (the
// report's figures).
func testPortalEnrollment(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	if code := s.API(t, "POST", "/v1/users", map[string]any{"username": "ann", "display_name": "Ann", "password": "correct horse battery"}, nil); code != http.StatusCreated {
		t.Fatalf("create user = %d", code)
	}
	for _, c := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/groups", map[string]any{"name": "sales"}},
		{"/v1/categories", map[string]any{"name": "sales-phones", "description": "Phones of the sales team", "group": "sales"}},
		{"/v1/categories", map[string]any{"name": "kiosk", "description": "Shared kiosks"}},
		{"/v1/terms", map[string]any{"name": "aup", "title": "Acceptable use", "summary": "Use company devices with care.",
			"text": "Full text of the acceptable use policy.", "all_users": true}},
	} {
		if code := s.API(t, "POST", c.path, c.body, nil); code != http.StatusCreated {
			t.Fatalf("POST %s = %d", c.path, code)
		}
	}
	b := newBrowser(t, s, iPhoneUA)
	start := time.Now()
	resp, _ := b.do("GET", "/portal", nil)
	if resp.StatusCode != 200 || !strings.Contains(b.page, `<strong id="platform">iPhone</strong>`) {
		t.Fatalf("sign-in page = %d, want it to name the iPhone: %s", resp.StatusCode, b.page)
	}
	for _, c := range resp.Cookies() {
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("session cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Lax", c)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page headers: %v", resp.Header)
	}
	signinShown := time.Since(start)
	resp, _ = b.do("POST", "/portal/signin", url.Values{"csrf": {b.csrf()}, "username": {"ann"}, "password": {"correct horse battery"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/portal/terms" || !strings.Contains(b.page, "Acceptable use") ||
		!strings.Contains(b.page, `name="doc" value="aup:1"`) {
		t.Fatalf("after sign-in: %d %s, want the terms page: %s", resp.StatusCode, resp.Request.URL.Path, b.page)
	}
	signedIn := time.Since(start)
	// Terms not accepted: neither the category page nor a profile.
	if resp, _ := b.do("POST", "/portal/terms", url.Values{"csrf": {b.csrf()}, "doc": {"aup:1"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("terms without ticking the box = %d, want 400", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/portal/category", url.Values{"csrf": {b.csrf()}, "category": {"sales-phones"}}); resp.Request.URL.Path != "/portal/terms" {
		t.Fatalf("a category chosen before the terms were accepted went to %s, want the terms page", resp.Request.URL.Path)
	}
	b.do("GET", "/portal/terms", nil)
	if resp, _ := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}}); strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatal("a profile went out before the terms were accepted")
	}
	b.do("GET", "/portal/terms", nil)
	resp, _ = b.do("POST", "/portal/terms", url.Values{"csrf": {b.csrf()}, "doc": {"aup:1"}, "accept": {"yes"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/portal/category" || !strings.Contains(b.page, "Phones of the sales team") {
		t.Fatalf("after accepting the terms: %d %s, want the category page: %s", resp.StatusCode, resp.Request.URL.Path, b.page)
	}
	if resp, _ := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}}); strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatal("a profile went out before a category was chosen")
	}
	if resp, _ := b.do("POST", "/portal/category", url.Values{"csrf": {b.csrf()}, "category": {"no-such"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown category = %d, want 400", resp.StatusCode)
	}
	resp, _ = b.do("POST", "/portal/category", url.Values{"csrf": {b.csrf()}, "category": {"sales-phones"}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/portal/profile" || !strings.Contains(b.page, "Profile Downloaded") {
		t.Fatalf("after the category: %d %s, want the profile page with iOS instructions: %s", resp.StatusCode, resp.Request.URL.Path, b.page)
	}
	resp, profile := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("profile download = %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), profile)
	}
	downloaded := time.Since(start)
	dev := s.NewDevice(t)
	if err := dev.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	enrolled := time.Since(start)
	t.Logf("portal enrollment: sign-in page %v, signed in (argon2id) %v, category and profile %v, device enrolled (SCEP, Authenticate, TokenUpdate, inventory) %v",
		signinShown.Round(time.Millisecond), signedIn.Round(time.Millisecond), downloaded.Round(time.Millisecond), enrolled.Round(time.Millisecond))
	var shown struct {
		PrimaryUser      string `json:"primary_user"`
		Category         string `json:"category"`
		EnrollmentMethod string `json:"enrollment_method"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
	if shown.PrimaryUser != "ann" || shown.Category != "sales-phones" || shown.EnrollmentMethod != "portal" {
		t.Fatalf("device after portal enrollment = %+v, want primary user ann, category sales-phones, method portal", shown)
	}
	var members struct {
		Members []string `json:"members"`
	}
	s.API(t, "GET", "/v1/groups/sales/members", nil, &members)
	if !slices.Contains(members.Members, "ann") {
		t.Fatalf("the category's group after enrollment = %+v, want ann in it", members)
	}
	if resp, _ := b.do("GET", "/portal/done", nil); resp.StatusCode != 200 || !strings.Contains(b.page, "ann") {
		t.Fatalf("done page = %d: %s", resp.StatusCode, b.page)
	}
	other := s.NewDevice(t)
	if err := other.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err == nil {
		t.Fatal("a second device enrolled with the portal's single-use profile")
	}
	checkPortalTerms(t, s)
}

type acceptanceRow struct {
	Username       string `json:"username"`
	Document       string `json:"document"`
	Version        int    `json:"version"`
	AcceptedLatest bool   `json:"accepted_latest"`
	UserAgent      string `json:"user_agent"`
}

func acceptances(t *testing.T, s *servertest.Server) []acceptanceRow {
	t.Helper()
	var rep struct {
		Acceptances []acceptanceRow `json:"acceptances"`
	}
	if code := s.API(t, "GET", "/v1/terms/acceptances", nil, &rep); code != 200 {
		t.Fatalf("GET /v1/terms/acceptances = %d", code)
	}
	return rep.Acceptances
}

// checkPortalTerms follows testPortalEnrollment (ann accepted aup version 1
// and enrolled): the acceptance is reported, ann is not asked again, a
// version that requires re-acceptance asks again, and the stage records
// show the unfinished sessions but not the enrolled one.
func checkPortalTerms(t *testing.T, s *servertest.Server) {
	t.Helper()
	if as := acceptances(t, s); len(as) != 1 || as[0].Username != "ann" || as[0].Document != "aup" || as[0].Version != 1 ||
		!as[0].AcceptedLatest || as[0].UserAgent != iPhoneUA {
		t.Fatalf("acceptances after the portal = %+v, want ann's of aup 1, the latest", as)
	}
	// A session that stops at the sign-in page.
	if resp, _ := newBrowser(t, s, macUA).do("GET", "/portal", nil); resp.StatusCode != 200 {
		t.Fatalf("GET /portal = %d", resp.StatusCode)
	}
	again := newBrowser(t, s, iPhoneUA)
	if resp, body := again.signIn("ann", "correct horse battery"); resp.Request.URL.Path != "/portal/category" {
		t.Fatalf("second sign-in of ann went to %s, want the category page (terms accepted once): %s", resp.Request.URL.Path, body)
	}
	if code := s.API(t, "PUT", "/v1/terms/aup", map[string]any{"text": "New text of the acceptable use policy.", "require_reacceptance": true}, nil); code != 200 {
		t.Fatalf("new terms version = %d", code)
	}
	if as := acceptances(t, s); len(as) != 1 || as[0].AcceptedLatest {
		t.Fatalf("acceptances after a new version = %+v, want ann's not the latest", as)
	}
	third := newBrowser(t, s, iPhoneUA)
	if resp, body := third.signIn("ann", "correct horse battery"); resp.Request.URL.Path != "/portal/terms" || !strings.Contains(body, `value="aup:2"`) {
		t.Fatalf("sign-in after a version requiring re-acceptance went to %s, want the terms page of version 2: %s", resp.Request.URL.Path, body)
	}

	var rep struct {
		Initiated  int `json:"initiated"`
		Incomplete int `json:"incomplete"`
		Sessions   []struct {
			Username  string `json:"username"`
			Platform  string `json:"platform"`
			LastStage string `json:"last_stage"`
			Enrolled  bool   `json:"enrolled"`
		} `json:"sessions"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/incomplete", nil, &rep); code != 200 {
		t.Fatalf("GET /v1/enrollment/incomplete = %d", code)
	}
	// Four sessions: the enrolled one, the sign-in page left alone, and
	// ann's two later sign-ins.
	if rep.Initiated != 4 || rep.Incomplete != 3 || len(rep.Sessions) != 3 {
		t.Fatalf("incomplete report = %+v, want 4 initiated, 3 incomplete (the enrolled session is complete)", rep)
	}
	stopped, atTerms := 0, 0
	for _, r := range rep.Sessions {
		if r.LastStage == "terms_shown" && r.Username == "ann" {
			atTerms++
		}
		if r.Enrolled || r.LastStage == "enrolled" || r.LastStage == "profile_downloaded" {
			t.Errorf("the enrolled session is reported incomplete: %+v", r)
		}
		if r.LastStage == "signin_shown" && r.Platform == "macOS" && r.Username == "" {
			stopped++
		}
	}
	if atTerms != 1 {
		t.Errorf("incomplete sessions = %+v, want ann's last one stopped at the terms of version 2", rep.Sessions)
	}
	if stopped != 1 {
		t.Errorf("incomplete sessions = %+v, want one stopped at the sign-in page", rep.Sessions)
	}
}

// Refusals: wrong password, disabled user, forms without their CSRF token,
// pages out of order; none hands out a profile.
func testPortalRefusals(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	for _, u := range []map[string]any{
		{"username": "bob", "password": "bob's right password"},
		{"username": "eve", "password": "eve's right password", "disabled": true},
	} {
		if code := s.API(t, "POST", "/v1/users", u, nil); code != http.StatusCreated {
			t.Fatalf("create user %v = %d", u["username"], code)
		}
	}
	b := newBrowser(t, s, macUA)
	if resp, body := b.signIn("bob", "wrong password"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") ||
		strings.Contains(body, "wrong password") {
		t.Fatalf("wrong password = %d %s", resp.StatusCode, body)
	}
	if resp, body := b.signIn("eve", "eve's right password"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled user = %d %s", resp.StatusCode, body)
	}
	b.do("GET", "/portal", nil)
	if resp, _ := b.do("POST", "/portal/signin", url.Values{"username": {"bob"}, "password": {"bob's right password"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the CSRF token = %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/portal/signin", url.Values{"csrf": {"forged"}, "username": {"bob"}, "password": {"bob's right password"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in with a wrong CSRF token = %d, want 403", resp.StatusCode)
	}
	fresh := newBrowser(t, s, macUA)
	if resp, _ := fresh.do("POST", "/portal/profile", url.Values{}); resp.StatusCode != http.StatusForbidden || strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatalf("profile without a session or token = %d, want 403", resp.StatusCode)
	}
	fresh.do("GET", "/portal", nil)
	if resp, _ := fresh.do("POST", "/portal/profile", url.Values{"csrf": {fresh.csrf()}}); resp.Request.URL.Path != "/portal" || strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatalf("profile before signing in = %d at %s, want the sign-in page", resp.StatusCode, resp.Request.URL.Path)
	}
	resp, body := b.signIn("bob", "bob's right password")
	if resp.StatusCode != 200 || !strings.Contains(body, "System Settings") || !strings.Contains(body, `<strong id="platform">Mac</strong>`) {
		t.Fatalf("Mac sign-in = %d: %s", resp.StatusCode, body)
	}
	if resp, _ := b.do("POST", "/portal/profile", url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("profile with a wrong CSRF token = %d, want 403", resp.StatusCode)
	}
	// The person corrects the platform (an iPad showing desktop sites).
	b.do("GET", "/portal/profile", nil)
	if resp, _ := b.do("POST", "/portal/platform", url.Values{"csrf": {b.csrf()}, "platform": {"iPadOS"}}); resp.StatusCode != 200 ||
		!strings.Contains(b.page, `<strong id="platform">iPad</strong>`) || !strings.Contains(b.page, "Profile Downloaded") {
		t.Fatalf("platform corrected = %d: %s", resp.StatusCode, b.page)
	}
	if n, err := s.Store().ChallengesFor(ctx, "bob"); err != nil || len(n) != 0 {
		t.Fatalf("refusals issued challenges: %v %v", n, err)
	}

	// The enrollment policy decides before a profile is handed out: with
	// iPadOS (iOS rules) blocked, bob's page says so, no challenge is
	// issued, and the failures report names the rule.
	if code := s.API(t, "PUT", "/v1/enrollment/policies/default-platform", map[string]any{"name": "Default",
		"platforms": map[string]any{"iOS": map[string]any{"block": true}}}, nil); code != 200 {
		t.Fatalf("block iOS = %d", code)
	}
	if resp, _ := b.do("GET", "/portal/profile", nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(b.page, "cannot be enrolled") {
		t.Fatalf("profile page under a blocked platform = %d: %s", resp.StatusCode, b.page)
	}
	b.do("GET", "/portal", nil)
	if resp, body := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}}); resp.StatusCode != http.StatusForbidden ||
		strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
		t.Fatalf("profile under a blocked platform = %d %s", resp.StatusCode, body)
	}
	if n, err := s.Store().ChallengesFor(ctx, "bob"); err != nil || len(n) != 0 {
		t.Fatalf("a policy refusal issued challenges: %v %v", n, err)
	}
	var failures struct {
		Failures []struct {
			Code, Method, User, Platform, Policy string
		} `json:"failures"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/failures?reason=platform_blocked", nil, &failures); code != 200 || len(failures.Failures) == 0 {
		t.Fatalf("failures = %d %+v", code, failures)
	}
	if f := failures.Failures[len(failures.Failures)-1]; f.Method != "portal" || f.User != "bob" || f.Platform != "iPadOS" || f.Policy != "default-platform" {
		t.Fatalf("portal refusal recorded as %+v", f)
	}
}
