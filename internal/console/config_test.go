package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
)

// mobileconfig is a Wi-Fi profile with one payload; its password must
// never reach a page.
func mobileconfig(id, uuid, name string) []byte {
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadIdentifier</key><string>%[1]s</string>
<key>PayloadUUID</key><string>%[2]s</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadDisplayName</key><string>%[3]s</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.wifi.managed</string>
<key>PayloadIdentifier</key><string>%[1]s.wifi</string>
<key>PayloadUUID</key><string>%[2]s-W</string>
<key>PayloadVersion</key><integer>1</integer>
<key>SSID_STR</key><string>Office</string>
<key>Password</key><string>wifi-secret-do-not-show</string>
</dict></array></dict></plist>`, id, uuid, name))
}

// location is where a redirect answer sends the browser.
func (b *browserish) location(path string, form url.Values) string {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("post %s: %d, want a redirect", path, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// waitStates polls a profile's stored states until ok holds (the
// reconciler works in the background after a scope change).
func waitStates(t *testing.T, srv *servertest.Server, profile string, ok func([]storage.ChannelProfile) bool) []storage.ChannelProfile {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sts, err := srv.Store().ProfileStates(t.Context(), profile, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if ok(sts) {
			return sts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: states never settled: %+v", profile, sts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProfilePages: the owner uploads a profile (a bad file and a second
// one of the same identifier are refused at the field, storing nothing),
// scopes it (a scope the API refuses is shown again), sees its devices and
// resends, uploads a new version, and sees it on the device's page; the
// profile's secrets appear on no page.
func TestProfilePages(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 2)
	if st := srv.API(t, "POST", "/v1/groups", map[string]string{"name": "staff"}, nil); st != http.StatusCreated {
		t.Fatalf("create group: %d", st)
	}
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	if st, page := c.get("/console/profiles"); st != http.StatusOK || !strings.Contains(page, "No profiles yet.") || !strings.Contains(page, `id="upload"`) {
		t.Fatalf("empty library: %d %s", st, page)
	}
	tok := c.csrf("/console/profiles")
	const id, uuid1 = "com.example.wifi", "7E1D2C3B-0000-4000-8000-000000000001"
	st, _ := c.postFile("/console/profiles", map[string]string{"csrf": tok}, "file", "wifi.mobileconfig", mobileconfig(id, uuid1, "Office Wi-Fi"))
	c.follow(st, "")
	if _, page := c.get("/console/profiles/" + id); !strings.Contains(page, "Profile com.example.wifi uploaded") || !strings.Contains(page, "<h1>Office Wi-Fi</h1>") ||
		!strings.Contains(page, `<dd id="scope">nothing</dd>`) || !strings.Contains(page, "com.apple.wifi.managed") {
		t.Fatalf("profile page after the upload: %s", page)
	}

	// Refused uploads: the API's reason at the file field, nothing stored.
	st, page := c.postFile("/console/profiles", map[string]string{"csrf": tok}, "file", "bad.mobileconfig", []byte("<plist><dict/></plist>"))
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="file-error">`, "</p>"), "Configuration") {
		t.Fatalf("a bad file: %d %s", st, between(page, `id="file-error">`, "</p>"))
	}
	st, page = c.postFile("/console/profiles", map[string]string{"csrf": tok}, "file", "again.mobileconfig", mobileconfig(id, "7E1D2C3B-0000-4000-8000-000000000009", "Again"))
	if st != http.StatusConflict || !strings.Contains(between(page, `id="file-error">`, "</p>"), "exists") {
		t.Fatalf("the same identifier again: %d %s", st, between(page, `id="file-error">`, "</p>"))
	}
	if ps, err := srv.Store().ListProfiles(ctx, "", 0); err != nil || len(ps) != 1 || ps[0].Version != 1 {
		t.Fatalf("stored profiles: %+v, %v", ps, err)
	}

	// Scope: group staff on iOS and the first device by UDID.
	scope := url.Values{"csrf": {tok}, "groups": {"Staff"}, "platforms": {"iOS"}, "devices": {ids[0]}, "reinstall": {"on"}, "channel": {"device"}}
	c.follow(c.post("/console/profiles/"+id+"/scope", scope))
	p, err := srv.Store().GetProfile(ctx, id)
	if err != nil || !strings.Contains(string(p.Scope), `"groups":["staff"]`) || !strings.Contains(string(p.Scope), ids[0]) || !p.Reinstall {
		t.Fatalf("stored scope: %s, %v", p.Scope, err)
	}
	if _, list := c.get("/console/profiles"); !strings.Contains(between(list, `<table id="library">`, "</table>"), "groups staff and 1 listed device on iOS") {
		t.Fatalf("library row: %s", between(list, `<table id="library">`, "</table>"))
	}
	bad := url.Values{"csrf": {tok}, "platforms": {"Android"}}
	if st, page := c.post("/console/profiles/"+id+"/scope", bad); st != http.StatusBadRequest || !strings.Contains(between(page, `id="scope-error"`, "</p>"), "Android") {
		t.Fatalf("a refused scope: %d %s", st, between(page, `id="scope-error"`, "</p>"))
	}
	if p2, _ := srv.Store().GetProfile(ctx, id); string(p2.Scope) != string(p.Scope) {
		t.Fatalf("a refused scope changed the stored one: %s", p2.Scope)
	}

	// The device in scope gets it; a failure elsewhere is resent.
	waitStates(t, srv, id, func(s []storage.ChannelProfile) bool { return len(s) == 1 && s[0].ChannelID == ids[0] })
	if err := srv.Store().PutChannelProfiles(ctx, []storage.ChannelProfile{{ProfileID: id, ChannelID: ids[1], Version: 1, UUID: uuid1,
		State: storage.ProfileFailed, Attempts: 2, Errors: []string{"MCInstallationErrorDomain 4001 refused"}, UpdatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	_, page = c.get("/console/profiles/" + id)
	states := between(page, `<table id="states">`, "</table>")
	if !strings.Contains(states, ids[0]) || !strings.Contains(states, "failed") || !strings.Contains(states, "MCInstallationErrorDomain 4001 refused") ||
		!strings.Contains(states, `aria-label="Resend to `+ids[1]+`"`) {
		t.Fatalf("device states: %s", states)
	}
	if !strings.Contains(page, "1 failed") {
		t.Fatalf("counts: %s", between(page, `<dd id="counts">`, "</dd>"))
	}
	c.follow(c.post("/console/profiles/"+id+"/resend", url.Values{"csrf": {tok}}))
	waitStates(t, srv, id, func(s []storage.ChannelProfile) bool {
		for _, x := range s {
			if x.ChannelID == ids[1] && x.State == storage.ProfileFailed {
				return false
			}
		}
		return true
	})

	// A new version: the same UUID is refused at the field, a new one is version 2.
	st, page = c.postFile("/console/profiles/"+id+"/versions", map[string]string{"csrf": tok}, "file", "v.mobileconfig", mobileconfig(id, uuid1, "Office Wi-Fi"))
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="file-error">`, "</p>"), "PayloadUUID") {
		t.Fatalf("an unchanged version: %d %s", st, between(page, `id="file-error">`, "</p>"))
	}
	st, _ = c.postFile("/console/profiles/"+id+"/versions", map[string]string{"csrf": tok}, "file", "v2.mobileconfig", mobileconfig(id, "7E1D2C3B-0000-4000-8000-000000000002", "Office Wi-Fi 2"))
	c.follow(st, "")
	_, page = c.get("/console/profiles/" + id)
	versions := between(page, `<table id="versions">`, "</table>")
	if !strings.Contains(page, "Version 2 uploaded") || strings.Index(versions, "7E1D2C3B-0000-4000-8000-000000000002") > strings.Index(versions, uuid1) ||
		!strings.Contains(versions, "Office Wi-Fi 2") {
		t.Fatalf("versions: %s", versions)
	}
	if _, dev := c.get("/console/devices/" + ids[0]); !strings.Contains(between(dev, `<table id="managed-profiles">`, "</table>"), `href="/console/profiles/`+id+`"`) {
		t.Fatalf("device page lacks its managed profile: %s", dev)
	}
	for _, pg := range []string{"/console/profiles", "/console/profiles/" + id, "/console/devices/" + ids[0]} {
		if _, body := c.get(pg); strings.Contains(body, "wifi-secret-do-not-show") {
			t.Errorf("%s shows the profile's password", pg)
		}
	}
}

// TestProfileLibraryPages: the library reads the API 50 at a time.
func TestProfileLibraryPages(t *testing.T) {
	srv := start(t)
	for i := range 52 {
		body := mobileconfig(fmt.Sprintf("com.example.p%02d", i), fmt.Sprintf("7E1D2C3B-0000-4000-8000-0000000001%02d", i), fmt.Sprintf("P %02d", i))
		if st := srv.API(t, "POST", "/v1/profiles", rawProfile(body), nil); st != http.StatusCreated {
			t.Fatalf("upload %d: %d", i, st)
		}
	}
	c := signedIn(t, srv, "olga", ownerPW)
	_, first := c.get("/console/profiles")
	if strings.Count(first, `<th scope="row">`) != 50 || !strings.Contains(first, `href="/console/profiles?after=com.example.p49"`) {
		t.Fatalf("first page: %d rows", strings.Count(first, `<th scope="row">`))
	}
	_, second := c.get("/console/profiles?after=com.example.p49")
	if strings.Count(second, `<th scope="row">`) != 2 || !strings.Contains(second, "com.example.p51") || strings.Contains(second, `id="next"`) {
		t.Fatalf("second page: %s", between(second, `<table id="library">`, "</table>"))
	}
}

// TestDeclarativePages: a declaration made from a type's skeleton, bad
// JSON and a schema refusal shown at the payload field (nothing stored), a
// set with members, channels and scope, deletes that need the name typed
// and a declaration a set names kept, and the fleet and device views.
func TestDeclarativePages(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 1)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	const typ = "com.apple.configuration.softwareupdate.enforcement.specific"
	_, page := c.get("/console/declarations/new?type=" + typ)
	if !strings.Contains(page, `<option value="`+typ+`" selected>`) || !strings.Contains(between(page, `id="payload"`, "</textarea>"), "TargetOSVersion") ||
		!strings.Contains(between(page, `<table id="keys">`, "</table>"), "TargetLocalDateTime") || strings.Contains(page, `value="com.apple.activation.simple"`) {
		t.Fatalf("new declaration form: %s", page)
	}
	tok := c.csrf("/console/declarations/new")
	form := func(payload string) url.Values {
		return url.Values{"csrf": {tok}, "type": {typ}, "identifier": {"ios-26-1"}, "payload": {payload}}
	}
	st, page := c.post("/console/declarations", form(`{"TargetOSVersion": "26.1",`))
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="payload-error">`, "</p>"), "not JSON") || !strings.Contains(page, `{&#34;TargetOSVersion&#34;: &#34;26.1&#34;,</textarea>`) {
		t.Fatalf("bad JSON: %d %s", st, between(page, `id="payload-error">`, "</p>"))
	}
	st, page = c.post("/console/declarations", form(`{"TargetOSVersion": "26.1", "TargetLocalDateTime": "15 December"}`))
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="payload-error">`, "</p>"), "TargetLocalDateTime") {
		t.Fatalf("schema refusal: %d %s", st, between(page, `id="payload-error">`, "</p>"))
	}
	st, page = c.post("/console/declarations", url.Values{"csrf": {tok}, "type": {typ}, "identifier": {"orchard.mine"}, "payload": {`{"TargetOSVersion": "26.1", "TargetLocalDateTime": "2026-12-15T20:00:00"}`}})
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="identifier-error">`, "</p>"), "orchard.") {
		t.Fatalf("Orchard's identifier: %d %s", st, between(page, `id="identifier-error">`, "</p>"))
	}
	st, page = c.post("/console/declarations", url.Values{"csrf": {tok}, "type": {"com.apple.configuration.nope"}, "identifier": {"x"}, "payload": {"{}"}})
	if st != http.StatusBadRequest || !strings.Contains(between(page, `id="type-error">`, "</p>"), "is not in Apple&#39;s declarative schema") {
		t.Fatalf("an unknown type: %d %s", st, between(page, `id="type-error">`, "</p>"))
	}
	if ds, err := srv.Store().Declarations(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("refused declarations stored: %+v, %v", ds, err)
	}
	if loc := c.location("/console/declarations", form(`{"TargetOSVersion": "26.1", "TargetLocalDateTime": "2026-12-15T20:00:00"}`)); loc != "/console/declarations/ios-26-1" {
		t.Fatalf("after saving: %s", loc)
	}
	_, page = c.get("/console/declarations/ios-26-1")
	if !strings.Contains(page, "Declaration ios-26-1 saved") || !strings.Contains(page, `name="edit" value="ios-26-1"`) || !strings.Contains(page, "No device has reported it yet.") {
		t.Fatalf("declaration page: %s", page)
	}

	// A set with the declaration, a listed channel and a scope.
	c.follow(c.post("/console/declaration-sets", url.Values{"csrf": {tok}, "name": {"ios-update"}, "declarations": {"ios-26-1"}}))
	c.follow(c.post("/console/declaration-sets", url.Values{"csrf": {tok}, "name": {"ios-update"}}))
	if _, page := c.get("/console/declaration-sets"); !strings.Contains(page, "A set named ios-update exists") {
		t.Fatal("a taken set name is not refused")
	}
	c.follow(c.post("/console/declaration-sets/ios-update/scope", url.Values{"csrf": {tok}, "platforms": {"iOS", "iPadOS"}, "exclude": {ids[0]}}))
	c.follow(c.post("/console/declaration-sets/ios-update/members", url.Values{"csrf": {tok}, "declarations": {"ios-26-1"}, "channels": {ids[0]}}))
	set, err := srv.Store().DeclarationSet(ctx, "ios-update")
	if err != nil || strings.Join(set.Declarations, ",") != "ios-26-1" || strings.Join(set.Channels, ",") != ids[0] ||
		!strings.Contains(string(set.Scope), `"platforms":["iOS","iPadOS"]`) {
		t.Fatalf("stored set: %+v %s, %v", set, set.Scope, err)
	}
	_, page = c.get("/console/declaration-sets/ios-update")
	if !strings.Contains(page, `<dd id="scope">every device on iOS, iPadOS, except 1 device</dd>`) || !strings.Contains(page, `value="ios-26-1" type="checkbox" checked`) {
		t.Fatalf("set page: %s", page)
	}
	if _, page := c.get("/console/declaration-sets"); !strings.Contains(between(page, `<table id="sets">`, "</table>"), "every device on iOS, iPadOS") {
		t.Fatalf("set list: %s", page)
	}

	// Deletes: the name must be typed; a declaration a set names stays.
	c.follow(c.post("/console/declarations/ios-26-1/delete", url.Values{"csrf": {tok}, "confirm": {"ios"}}))
	c.follow(c.post("/console/declarations/ios-26-1/delete", url.Values{"csrf": {tok}, "confirm": {"ios-26-1"}}))
	if _, err := srv.Store().Declaration(ctx, "ios-26-1"); err != nil {
		t.Fatalf("a declaration a set names was deleted: %v", err)
	}
	c.follow(c.post("/console/declaration-sets/ios-update/delete", url.Values{"csrf": {tok}, "confirm": {"ios-update"}}))
	c.follow(c.post("/console/declarations/ios-26-1/delete", url.Values{"csrf": {tok}, "confirm": {"ios-26-1"}}))
	if _, err := srv.Store().DeclarationSet(ctx, "ios-update"); err == nil {
		t.Fatal("the set is still there")
	}
	if _, err := srv.Store().Declaration(ctx, "ios-26-1"); err == nil {
		t.Fatal("the declaration is still there")
	}

	for pg, want := range map[string]string{
		"/console/software-updates":         `<dl class="facts" id="update-counts">`,
		"/console/software-updates?state=x": "No device in state x.",
		"/console/declarations":             "No declarations yet.",
		"/console/devices/" + ids[0]:        "Declarations token",
	} {
		if st, body := c.get(pg); st != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q", pg, st, want)
		}
	}
}

// TestConfigRoles: helpdesk and auditor admins read every configuration
// page without a form that changes one (helpdesk keeps Resend, an action);
// their forged posts are refused with 403 and change nothing.
func TestConfigRoles(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 1)
	if st := srv.API(t, "POST", "/v1/admins", map[string]string{"username": "avi", "role": "auditor", "password": auditorPW}, nil); st != http.StatusCreated {
		t.Fatalf("create auditor: %d", st)
	}
	const id = "com.example.wifi"
	for _, x := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/profiles", rawProfile(mobileconfig(id, "7E1D2C3B-0000-4000-8000-000000000001", "Office Wi-Fi"))},
		{"POST", "/v1/declarations", map[string]any{"type": "com.apple.configuration.softwareupdate.enforcement.specific", "identifier": "ios-26-1",
			"payload": map[string]string{"TargetOSVersion": "26.1", "TargetLocalDateTime": "2026-12-15T20:00:00"}}},
		{"POST", "/v1/declaration-sets", map[string]any{"name": "ios-update", "declarations": []string{"ios-26-1"}, "channels": []string{}}},
	} {
		if st := srv.API(t, x.method, x.path, x.body, nil); st < 200 || st > 299 {
			t.Fatalf("%s %s: %d", x.method, x.path, st)
		}
	}
	forged := []forgedPost{
		{"/console/profiles/" + id + "/scope", url.Values{"all": {"on"}}},
		{"/console/declarations", url.Values{"type": {"com.apple.configuration.softwareupdate.enforcement.specific"}, "identifier": {"ios-26-1"},
			"payload": {`{"TargetOSVersion": "27.0", "TargetLocalDateTime": "2027-01-01T00:00:00"}`}}},
		{"/console/declarations/ios-26-1/delete", url.Values{"confirm": {"ios-26-1"}}},
		{"/console/declaration-sets", url.Values{"name": {"evil"}}},
		{"/console/declaration-sets/ios-update/members", url.Values{"declarations": {}}},
		{"/console/declaration-sets/ios-update/scope", url.Values{"all": {"on"}}},
		{"/console/declaration-sets/ios-update/delete", url.Values{"confirm": {"ios-update"}}},
	}
	buttons := map[string][]string{
		"/console/profiles":                    {`id="upload"`, `id="profile-file"`},
		"/console/profiles/" + id:              {`id="save-scope"`, `id="upload-version"`},
		"/console/declarations":                {`id="new-declaration"`},
		"/console/declarations/ios-26-1":       {`id="save-declaration"`, `id="delete-declaration"`},
		"/console/declaration-sets":            {`id="create-set"`},
		"/console/declaration-sets/ios-update": {`id="save-members"`, `id="save-scope"`, `id="delete-set"`},
		"/console/software-updates":            nil,
		"/console/devices/" + ids[0]:           nil,
	}
	for _, who := range []struct{ name, pw, role string }{{"hana", helpdeskPW, "helpdesk"}, {"avi", auditorPW, "auditor"}} {
		c := signedIn(t, srv, who.name, who.pw)
		c.readOnly(who.name, buttons)
		posts := forged
		if who.role == "auditor" {
			posts = append(posts, forgedPost{"/console/profiles/" + id + "/resend", nil})
		}
		c.refused(who.role, posts)
		tok := c.csrf("/console/account")
		st, _ := c.postFile("/console/profiles", map[string]string{"csrf": tok}, "file", "x.mobileconfig", mobileconfig("com.example.evil", "7E1D2C3B-0000-4000-8000-00000000000E", "Evil"))
		if st != http.StatusForbidden {
			t.Errorf("%s forged upload: %d, want 403", who.name, st)
		}
	}
	// With a failure, the helpdesk admin may resend (an action), the auditor not.
	ctx := t.Context()
	if err := srv.Store().PutChannelProfiles(ctx, []storage.ChannelProfile{{ProfileID: id, ChannelID: ids[0], Version: 1,
		UUID: "7E1D2C3B-0000-4000-8000-000000000001", State: storage.ProfileFailed, Attempts: 2, UpdatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	resend := []string{`id="resend-failed"`, `aria-label="Resend to ` + ids[0] + `"`}
	for _, who := range []struct {
		name, pw string
		sees     bool
	}{{"hana", helpdeskPW, true}, {"avi", auditorPW, false}} {
		_, body := signedIn(t, srv, who.name, who.pw).get("/console/profiles/" + id)
		for _, b := range resend {
			if strings.Contains(body, b) != who.sees {
				t.Errorf("%s: %s shown %v, want %v", who.name, b, !who.sees, who.sees)
			}
		}
	}
	if ps, _ := srv.Store().ListProfiles(ctx, "", 0); len(ps) != 1 || len(ps[0].Scope) != 0 {
		t.Errorf("profiles changed: %+v", ps)
	}
	if d, err := srv.Store().Declaration(ctx, "ios-26-1"); err != nil || !strings.Contains(string(d.Payload), "26.1") {
		t.Errorf("declaration changed: %+v, %v", d, err)
	}
	if s, err := srv.Store().DeclarationSet(ctx, "ios-update"); err != nil || len(s.Declarations) != 1 || len(s.Scope) != 0 {
		t.Errorf("set changed: %+v, %v", s, err)
	}
	if _, err := srv.Store().DeclarationSet(ctx, "evil"); err == nil {
		t.Error("a forged set was made")
	}
}

// TestBrowserProfileUploadAndScope: in Chromium the owner uploads a
// profile, scopes it to a group and sees it in the library; a helpdesk
// admin gets no upload button and a forged or CSRF-less post is refused.
func TestBrowserProfileUploadAndScope(t *testing.T) {
	srv := start(t)
	if st := srv.API(t, "POST", "/v1/groups", map[string]string{"name": "staff"}, nil); st != http.StatusCreated {
		t.Fatalf("create group: %d", st)
	}
	file := filepath.Join(t.TempDir(), "wifi.mobileconfig")
	if err := os.WriteFile(file, mobileconfig("com.example.wifi", "7E1D2C3B-0000-4000-8000-000000000001", "Office Wi-Fi"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"
	browserSignIn(t, ctx, base, "olga", ownerPW)
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/profiles"))
	st := browsertest.Load(t, ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#profile-file"), []string{file}),
		chromedp.Click(chromedp.CSS("#upload")),
	)
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); st != http.StatusOK || h != "Office Wi-Fi" {
		t.Fatalf("after the upload: %d %q", st, h)
	}
	st = browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#scope-groups"), "staff"),
		chromedp.Click(chromedp.CSS("#save-scope")),
	)
	if f := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash"))); st != http.StatusOK || f != "Scope saved: groups staff." {
		t.Fatalf("after scoping: %d %q", st, f)
	}
	browsertest.Screenshot(t, ctx, "profile")
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS(`nav[aria-label="Main"] a[href="/console/profiles"]`)))
	rows := browsertest.Get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#library tbody tr')].map(r => r.innerText)`))
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "Office Wi-Fi\tcom.example.wifi\t1\tgroups staff\t") {
		t.Fatalf("library: %q", rows)
	}
	browsertest.Screenshot(t, ctx, "profiles")

	hctx := browsertest.New(t)
	browserSignIn(t, hctx, base, "hana", helpdeskPW)
	browsertest.Load(t, hctx, chromedp.Navigate(base+"/profiles"))
	if n := browsertest.Get(t, hctx, chromedp.Evaluate[int](`document.querySelectorAll('#upload, #profile-file').length`)); n != 0 {
		t.Fatalf("helpdesk sees %d upload controls", n)
	}
	if n := browsertest.Get(t, hctx, chromedp.Evaluate[int](`document.querySelectorAll('#library tbody tr').length`)); n != 1 {
		t.Fatalf("helpdesk library rows: %d", n)
	}
	h := signedIn(t, srv, "hana", helpdeskPW)
	if st, body := h.post("/console/profiles/com.example.wifi/scope", url.Values{"csrf": {h.csrf("/console/account")}, "all": {"on"}}); st != http.StatusForbidden {
		t.Fatalf("helpdesk forged scope: %d %q", st, body)
	}
	o := signedIn(t, srv, "olga", ownerPW)
	if st, body := o.post("/console/profiles/com.example.wifi/scope", url.Values{"all": {"on"}}); st != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: missing or wrong CSRF token") {
		t.Fatalf("a post without a token: %d %q", st, body)
	}
	if p, err := srv.Store().GetProfile(t.Context(), "com.example.wifi"); err != nil || string(p.Scope) != `{"groups":["staff"]}` {
		t.Fatalf("stored scope: %s, %v", p.Scope, err)
	}
}

// rawProfile is a .mobileconfig body for the admin API.
func rawProfile(b []byte) apiclient.Raw {
	return apiclient.Raw{ContentType: "application/x-apple-aspen-config", Body: b}
}

// TestSoftwareUpdatesPage: the fleet view counts the devices' update
// states against the enforcement scoped to them, lists OS versions newest
// first, filters by state and pages by 50; a device's report shows on its
// page and on the declaration's.
func TestSoftwareUpdatesPage(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 52)
	ctx := t.Context()
	if st := srv.API(t, "POST", "/v1/declarations", map[string]any{"type": "com.apple.configuration.softwareupdate.enforcement.specific", "identifier": "ios-26-1",
		"payload": map[string]string{"TargetOSVersion": "26.1", "TargetLocalDateTime": "2026-12-15T20:00:00"}}, nil); st != http.StatusOK {
		t.Fatalf("declaration: %d", st)
	}
	if st := srv.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "ios-update", "declarations": []string{"ios-26-1"}, "channels": ids}, nil); st != http.StatusOK {
		t.Fatalf("set: %d", st)
	}
	for i, id := range ids {
		err := srv.Store().UpdateDDMStatus(ctx, id, func(s *storage.DDMStatus) error {
			s.Channel, s.UpdatedAt = id, time.Now().UTC()
			s.Items = map[string]json.RawMessage{"device.operating-system.version": json.RawMessage(`"18.1"`)}
			s.Declarations = map[string]storage.DeclarationState{"ios-26-1": {Kind: "configuration", Active: true, Valid: "valid", At: time.Now().UTC()}}
			switch i {
			case 1:
				s.Items["device.operating-system.version"] = json.RawMessage(`"26.1"`)
			case 2:
				s.Items["softwareupdate.install-state"] = json.RawMessage(`"failed"`)
				s.Declarations["ios-26-1"] = storage.DeclarationState{Kind: "configuration", Valid: "invalid", Reasons: json.RawMessage(`[{"Code":"Error.ConfigurationCannotBeApplied"}]`)}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c := signedIn(t, srv, "hana", helpdeskPW)
	_, page := c.get("/console/software-updates")
	if counts := between(page, `id="update-counts">`, "</dl>"); counts != "<dt>Pending</dt><dd>50</dd><dt>Failed</dt><dd>1</dd><dt>Up to date</dt><dd>1</dd>" {
		t.Fatalf("counts: %s", counts)
	}
	if os := between(page, `<table id="os-versions">`, "</table>"); !strings.Contains(os, "<td>26.1</td><td>1</td></tr><tr><td>18.1</td><td>51</td>") {
		t.Fatalf("OS versions: %s", os)
	}
	rows := strings.Count(between(page, `<table id="updates">`, "</table>"), "<tr><td>")
	if rows != 50 || !strings.Contains(page, `id="next" href="/console/software-updates?after=`+ids[49]+`"`) {
		t.Fatalf("first page: %d rows", rows)
	}
	_, page = c.get("/console/software-updates?after=" + ids[49])
	if rows := strings.Count(between(page, `<table id="updates">`, "</table>"), "<tr><td>"); rows != 2 || strings.Contains(page, `id="next"`) {
		t.Fatalf("second page: %d rows", rows)
	}
	_, page = c.get("/console/software-updates?state=failed")
	if table := between(page, `<table id="updates">`, "</table>"); strings.Count(table, "<tr><td>") != 1 || !strings.Contains(table, ids[2]) || !strings.Contains(table, "failed") {
		t.Fatalf("failed devices: %s", table)
	}
	_, page = c.get("/console/devices/" + ids[2])
	if decls := between(page, `<table id="device-declarations">`, "</table>"); !strings.Contains(decls, "ios-26-1") || !strings.Contains(decls, "invalid") ||
		!strings.Contains(decls, "Error.ConfigurationCannotBeApplied") {
		t.Fatalf("device declarations: %s", decls)
	}
	_, page = c.get("/console/declarations/ios-26-1")
	if status := between(page, `<table id="status">`, "</table>"); strings.Count(status, "<tr><td>") != 52 || !strings.Contains(status, ids[2]) {
		t.Fatalf("declaration status: %d rows", strings.Count(status, "<tr><td>"))
	}
}
