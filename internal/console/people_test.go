package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/storage"
)

const auditorPW = "avi-auditor-password"

// startPeople is start with an auditor (avi) too and a small directory made
// through the admin API: users ann (in staff) and bob, groups staff and
// contractors, a kiosk category, an acceptable-use document ann accepted,
// a corporate serial number and one device whose primary user is ann.
func startPeople(t *testing.T) (*servertest.Server, []string) {
	t.Helper()
	srv := start(t)
	ids := seed(t, srv.Store(), 2)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/admins", map[string]string{"username": "avi", "role": "auditor", "password": auditorPW}},
		{"POST", "/v1/users", map[string]string{"username": "ann", "display_name": "Ann Example", "email": "ann@example.com"}},
		{"POST", "/v1/users", map[string]string{"username": "bob"}},
		{"POST", "/v1/groups", map[string]string{"name": "staff", "description": "Everyone on staff"}},
		{"POST", "/v1/groups", map[string]string{"name": "contractors"}},
		{"POST", "/v1/groups/staff/members", map[string]any{"usernames": []string{"ann"}}},
		{"POST", "/v1/categories", map[string]string{"name": "kiosk", "description": "Front desk iPads", "group": "staff"}},
		{"POST", "/v1/terms", map[string]any{"name": "acceptable-use", "title": "Acceptable use", "text": "Be kind to the devices.", "all_users": true}},
		{"POST", "/v1/corporate-identifiers", map[string]any{"kind": "serial", "identifiers": []map[string]string{{"value": "C02XK1JHJG5J", "details": "Design lab iMac"}}}},
		{"PUT", "/v1/devices/" + ids[0] + "/user", map[string]string{"username": "ann"}},
	} {
		if st := srv.API(t, c.method, c.path, c.body, nil); st < 200 || st > 299 {
			t.Fatalf("%s %s: %d", c.method, c.path, st)
		}
	}
	if err := srv.Store().AcceptTerms(t.Context(), &storage.TermsAcceptance{Document: "acceptable-use", Username: "ann", Version: 1,
		AcceptedAt: time.Now().UTC(), Address: "192.0.2.7"}); err != nil {
		t.Fatal(err)
	}
	return srv, ids
}

// signedIn is a client signed in as user.
func signedIn(t *testing.T, srv *servertest.Server, user, pw string) *browserish {
	t.Helper()
	c := newClient(t, srv)
	if st, body := c.signIn(user, pw); st != http.StatusSeeOther {
		t.Fatalf("sign-in %s: %d %s", user, st, body)
	}
	return c
}

// follow checks that a form post answered a redirect (303).
func (b *browserish) follow(st int, body string) {
	b.t.Helper()
	if st != http.StatusSeeOther {
		b.t.Fatalf("form post: %d, want a redirect: %s", st, body)
	}
}

// TestPeoplePagesRender: every new page answers 200 with what the owner
// should see, for the auditor without a form that changes anything, and
// without a session sends the browser to sign in.
func TestPeoplePagesRender(t *testing.T) {
	srv, ids := startPeople(t)
	pages := []struct {
		path  string
		owner []string // on the owner's page
		forms []string // on the owner's page, never on the auditor's
	}{
		{"/console/users", []string{"<h1>Users</h1>", `href="/console/users/ann"`, "Ann Example", `href="/console/users/bob"`}, []string{`id="create-user"`}},
		{"/console/users?q=b", []string{`href="/console/users/bob"`}, nil},
		{"/console/users/ann", []string{"<h1>User ann</h1>", `href="/console/groups/staff"`, "Device 0000", "primary user", "acceptable-use",
			`<dd id="dem">no</dd>`, `<dd id="limit">1 of 5`}, []string{`id="disable"`, `id="reset-password"`, `id="dem-on"`, `name="group"`}},
		{"/console/groups", []string{"<h1>Groups</h1>", `href="/console/groups/contractors"`, "Everyone on staff"}, []string{`id="create-group"`}},
		{"/console/groups/staff", []string{"<h1>Group staff</h1>", `href="/console/users/ann"`}, []string{`id="add-members"`, `id="delete-group"`}},
		{"/console/policy", []string{"<h1>Enrollment policy</h1>", `href="/console/policy/default-platform"`, "iOS: allowed; macOS: allowed",
			`href="/console/policy/default-limit"`, "5 devices per user"}, []string{`id="new-limit"`, `id="new-platform"`}},
		{"/console/policy/default-limit", []string{"Default device limit"}, []string{`id="save-policy"`}},
		{"/console/policy/new?kind=limit", []string{"New device limit policy"}, []string{`id="save-policy"`}},
		{"/console/corporate-ids", []string{"<h1>Corporate identifiers</h1>", "C02XK1JHJG5J", "Design lab iMac"}, []string{`id="import"`, `id="add-identifier"`, `aria-label="Delete C02XK1JHJG5J"`}},
		{"/console/corporate-ids?kind=serial&q=C02", []string{"C02XK1JHJG5J"}, nil},
		{"/console/reports", []string{"<h1>Reports</h1>", `href="/console/reports/failures"`}, nil},
		{"/console/reports/failures", []string{"<h1>Enrollment failures</h1>", `href="/console/reports/failures.csv"`}, nil},
		{"/console/reports/incomplete", []string{"<h1>Incomplete enrollments</h1>", "0 started"}, nil},
		{"/console/reports/summary?days=7", []string{"<h1>Enrollment summary</h1>", "invitation 2;", `href="/console/users/ann"`}, nil},
		{"/console/categories", []string{"<h1>Device categories</h1>", `href="/console/categories/kiosk"`, "Front desk iPads"}, []string{`id="create-category"`}},
		{"/console/categories/kiosk", []string{"<h1>Category kiosk</h1>"}, []string{`id="save-category"`, `id="delete-category"`}},
		{"/console/terms", []string{"<h1>Terms and conditions</h1>", `href="/console/terms/acceptable-use"`, "all users"}, []string{`id="create-terms"`}},
		{"/console/terms/acceptable-use", []string{"<h1>Acceptable use</h1>", "Be kind to the devices."}, []string{`id="publish"`, `id="require_reacceptance"`, `id="delete-terms"`}},
		{"/console/terms/acceptances", []string{"<h1>Terms acceptances</h1>", "192.0.2.7", `href="/console/terms/acceptances.csv"`}, nil},
		{"/console/devices/" + ids[0], []string{`href="/console/users/ann"`}, []string{`id="set-ownership"`}},
	}
	anon := newClient(t, srv)
	owner := signedIn(t, srv, "olga", ownerPW)
	aud := signedIn(t, srv, "avi", auditorPW)
	for _, p := range pages {
		if st, _ := anon.get(p.path); st != http.StatusSeeOther {
			t.Errorf("%s without a session: %d, want 303 to sign in", p.path, st)
		}
		st, body := owner.get(p.path)
		if st != http.StatusOK {
			t.Errorf("owner %s: %d %s", p.path, st, body)
			continue
		}
		for _, want := range append(append([]string{}, p.owner...), p.forms...) {
			if !strings.Contains(body, want) {
				t.Errorf("owner %s lacks %q", p.path, want)
			}
		}
		st, body = aud.get(p.path)
		if st != http.StatusOK {
			t.Errorf("auditor %s: %d", p.path, st)
			continue
		}
		for _, form := range p.forms {
			if strings.Contains(body, form) {
				t.Errorf("auditor %s offers %q", p.path, form)
			}
		}
	}
	for _, p := range []string{"/console/users/nobody", "/console/groups/nothing", "/console/policy/no-such", "/console/categories/none", "/console/terms/none"} {
		if st, _ := owner.get(p); st != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, st)
		}
	}
}

// TestUserForms: the owner creates a user with a generated password
// (shown once, a real argon2id hash stored, never in the audit log),
// edits, disables and re-enables them, resets the password, flags them a
// device enrollment manager, and manages their groups.
func TestUserForms(t *testing.T) {
	srv, _ := startPeople(t)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	tok := c.csrf("/console/users")

	st, page := c.post("/console/users", url.Values{"csrf": {tok}, "username": {"Cara"}, "display_name": {"Cara Doe"}, "password": {"generate"}})
	pw := between(page, `<code id="new-password">`, "<")
	if st != http.StatusOK || len(pw) < 20 {
		t.Fatalf("create with a generated password: %d, password %q", st, pw)
	}
	u, err := srv.Store().User(ctx, "cara")
	if err != nil || u.DisplayName != "Cara Doe" {
		t.Fatalf("stored user: %+v, %v", u, err)
	}
	if ok, err := directory.VerifyPassword(u.PasswordHash, pw); !ok || err != nil {
		t.Fatalf("the password shown does not verify: %v", err)
	}
	if _, again := c.get("/console/users/cara"); strings.Contains(again, pw) {
		t.Fatal("the password is shown again")
	}

	cases := []struct {
		name  string
		path  string
		form  url.Values
		flash string
		check func(*storage.DirectoryUser) bool
	}{
		{"edit", "/console/users/cara", url.Values{"display_name": {"Cara D."}, "email": {"cara@example.com"}}, "User saved.",
			func(u *storage.DirectoryUser) bool {
				return u.DisplayName == "Cara D." && u.Email == "cara@example.com"
			}},
		{"bad email", "/console/users/cara", url.Values{"display_name": {"X"}, "email": {"not an email"}}, "email",
			func(u *storage.DirectoryUser) bool { return u.DisplayName == "Cara D." }},
		{"disable", "/console/users/cara/state", url.Values{"state": {"disabled"}}, "User disabled",
			func(u *storage.DirectoryUser) bool { return u.Disabled }},
		{"enable", "/console/users/cara/state", url.Values{"state": {"enabled"}}, "User enabled.",
			func(u *storage.DirectoryUser) bool { return !u.Disabled }},
		{"dem on", "/console/users/cara/dem", url.Values{"dem": {"true"}}, "Now a device enrollment manager",
			func(u *storage.DirectoryUser) bool { return u.DEM }},
		{"join a group", "/console/users/cara/groups", url.Values{"group": {"Contractors"}}, "Added to group contractors.",
			func(*storage.DirectoryUser) bool {
				g, _ := srv.Store().UserGroups(ctx, "cara")
				return strings.Join(g, ",") == "contractors"
			}},
		{"join no group", "/console/users/cara/groups", url.Values{"group": {"nosuch"}}, "nosuch",
			func(*storage.DirectoryUser) bool { g, _ := srv.Store().UserGroups(ctx, "cara"); return len(g) == 1 }},
		{"leave it", "/console/groups/contractors/members/cara/remove", url.Values{"from": {"user"}}, "cara removed from contractors.",
			func(*storage.DirectoryUser) bool { g, _ := srv.Store().UserGroups(ctx, "cara"); return len(g) == 0 }},
	}
	for _, tc := range cases {
		tc.form.Set("csrf", tok)
		st, body := c.post(tc.path, tc.form)
		if st != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", tc.name, st, body)
		}
		_, page := c.get("/console/users/cara")
		if !strings.Contains(page, tc.flash) {
			t.Errorf("%s: the page does not say %q", tc.name, tc.flash)
		}
		u, err := srv.Store().User(ctx, "cara")
		if err != nil || !tc.check(u) {
			t.Errorf("%s: stored %+v, %v", tc.name, u, err)
		}
	}
	if _, page := c.get("/console/users/cara"); !strings.Contains(page, `<dd id="dem">yes</dd>`) || !strings.Contains(page, `id="dem-off"`) {
		t.Error("the user page does not show the DEM flag")
	}

	old := u.PasswordHash
	st, page = c.post("/console/users/cara/password", url.Values{"csrf": {tok}})
	pw2 := between(page, `<code id="new-password">`, "<")
	u, _ = srv.Store().User(ctx, "cara")
	if st != http.StatusOK || pw2 == "" || pw2 == pw || u.PasswordHash == old {
		t.Fatalf("reset: %d %q", st, pw2)
	}
	if ok, _ := directory.VerifyPassword(u.PasswordHash, pw2); !ok {
		t.Fatal("the reset password does not verify")
	}
	audit, err := srv.Store().ListAudit(ctx, storage.AuditFilter{Actor: "olga"}, "", 0)
	if err != nil || len(audit) < len(cases)+2 {
		t.Fatalf("audit: %d entries, %v", len(audit), err)
	}
	for _, e := range audit {
		if line := e.Action + " " + e.Target; strings.Contains(line, pw) || strings.Contains(line, pw2) {
			t.Fatalf("a password in the audit log: %+v", e)
		}
	}

	// Groups: create, add members all or none, remove, delete.
	gtok := c.csrf("/console/groups")
	c.follow(c.post("/console/groups", url.Values{"csrf": {gtok}, "name": {"Lab"}, "description": {"Lab staff"}}))
	if _, page := c.get("/console/groups/lab"); !strings.Contains(page, "Group lab created.") {
		t.Error("no creation message on the new group's page")
	}
	c.follow(c.post("/console/groups/lab/members", url.Values{"csrf": {gtok}, "usernames": {"ann, nobody"}}))
	if m, _ := srv.Store().GroupMembers(ctx, "lab", "", 0); len(m) != 0 {
		t.Fatalf("an unknown username added some: %v", m)
	}
	c.follow(c.post("/console/groups/lab/members", url.Values{"csrf": {gtok}, "usernames": {"ann\nbob cara"}}))
	if m, _ := srv.Store().GroupMembers(ctx, "lab", "", 0); strings.Join(m, ",") != "ann,bob,cara" {
		t.Fatalf("members: %v", m)
	}
	c.follow(c.post("/console/groups/lab/members/bob/remove", url.Values{"csrf": {gtok}}))
	if m, _ := srv.Store().GroupMembers(ctx, "lab", "", 0); strings.Join(m, ",") != "ann,cara" {
		t.Fatalf("after removing bob: %v", m)
	}
	c.follow(c.post("/console/groups/lab/delete", url.Values{"csrf": {gtok}}))
	if _, err := srv.Store().Group(ctx, "lab"); err == nil {
		t.Fatal("the group is still there")
	}
	if _, err := srv.Store().User(ctx, "ann"); err != nil {
		t.Fatal("deleting the group deleted a member")
	}
}

// between is the text of s after start up to end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return ""
}

// TestUserListPages: the user list pages through the API 50 at a time and
// a prefix search finds only the names that start with it, across pages.
func TestUserListPages(t *testing.T) {
	srv := start(t)
	for i := range 120 {
		name := "u" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		if st := srv.API(t, "POST", "/v1/users", map[string]string{"username": name}, nil); st != http.StatusCreated {
			t.Fatalf("create %s: %d", name, st)
		}
	}
	if st := srv.API(t, "POST", "/v1/users", map[string]string{"username": "zed"}, nil); st != http.StatusCreated {
		t.Fatalf("create zed: %d", st)
	}
	c := signedIn(t, srv, "olga", ownerPW)
	seen := map[string]bool{}
	path := "/console/users?q=u"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		_, body := c.get(path)
		rows := strings.Count(body, `<tr><td><a href="/console/users/`)
		if rows > 50 {
			t.Fatalf("%d rows on one page", rows)
		}
		for _, part := range strings.Split(body, `<tr><td><a href="/console/users/`)[1:] {
			seen[part[:strings.IndexByte(part, '"')]] = true
		}
		path = strings.ReplaceAll(between(body, `<a id="next" href="`, `"`), "&amp;", "&")
	}
	if len(seen) != 120 || seen["zed"] {
		t.Fatalf("the search for u found %d names (zed: %v)", len(seen), seen["zed"])
	}
	if _, body := c.get("/console/users?q=ub"); strings.Count(body, `<tr><td><a href="/console/users/ub`) != 26 || strings.Contains(body, "/console/users/uc") {
		t.Fatalf("search ub: %s", body)
	}
}
