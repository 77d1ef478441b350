package console_test

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/storage"
)

// TestPolicyForms: the owner creates group policies of both kinds, lists
// them in priority order with the default last, edits one's priority, is
// refused a taken priority, sees the warning when the default blocks iOS,
// and deletes a group policy but not a default.
func TestPolicyForms(t *testing.T) {
	srv, ids := startPeople(t)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	tok := c.csrf("/console/policy")
	limit := func(name, prio, groups, n string) url.Values {
		return url.Values{"csrf": {tok}, "kind": {"limit"}, "name": {name}, "priority": {prio}, "groups": {groups}, "device_limit": {n}}
	}
	c.follow(c.post("/console/policy", limit("Staff", "2", "staff", "10")))
	c.follow(c.post("/console/policy", limit("Contractors", "1", "Contractors, staff", "1")))
	st, _ := c.post("/console/policy", limit("Clash", "1", "staff", "3"))
	if _, page := c.get("/console/policy/new?kind=limit"); st != http.StatusSeeOther || !strings.Contains(page, "priority 1 is taken") {
		t.Fatalf("a taken priority: %d, the form does not say why", st)
	}
	ps, err := srv.Store().EnrollmentPolicies(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("stored policies: %+v, %v", ps, err)
	}
	var contractors storage.EnrollmentPolicy
	for _, p := range ps {
		if p.Name == "Contractors" {
			contractors = p
		}
	}
	if contractors.DeviceLimit != 1 || strings.Join(contractors.Groups, ",") != "contractors,staff" {
		t.Fatalf("contractors: %+v", contractors)
	}
	_, list := c.get("/console/policy")
	table := between(list, `<table id="limit-policies">`, "</table>")
	i, j, k := strings.Index(table, "Contractors"), strings.Index(table, "Staff"), strings.Index(table, "default (last)")
	if i < 0 || j < i || k < j {
		t.Fatalf("limit policies not in priority order: %s", table)
	}
	// Anna in both groups gets the priority-1 limit.
	if _, page := c.get("/console/users/ann"); !strings.Contains(page, `<dd id="limit">1 of 1 (policy <a href="/console/policy/`+contractors.ID) {
		t.Fatalf("ann's limit: %s", between(page, `<dd id="limit">`, "</dd>"))
	}
	// Change the priority: Contractors to 3, below Staff.
	c.follow(c.post("/console/policy/"+contractors.ID, limit("Contractors", "3", "contractors", "1")))
	if _, list := c.get("/console/policy"); !strings.Contains(list, "Policy Contractors saved.") {
		t.Fatal("no saved message")
	} else if table := between(list, `<table id="limit-policies">`, "</table>"); strings.Index(table, "Staff") > strings.Index(table, "Contractors") {
		t.Fatalf("after the priority change: %s", table)
	}

	// The default platform policy blocking iOS: saved, with the warning.
	st, page := c.post("/console/policy/default-platform", url.Values{"csrf": {tok}, "kind": {"platform"}, "default": {"true"},
		"name": {"Default platform restrictions"}, "iOS-block": {"on"}, "macOS-min": {"14.0"}})
	if st != http.StatusOK || !strings.Contains(between(page, `id="warnings"`, "</div>"), "Automated Device Enrollment") {
		t.Fatalf("blocking iOS in the default: %d, no warning: %s", st, page)
	}
	def, err := srv.Store().EnrollmentPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var saved bool
	for _, p := range def {
		if p.ID == "default-platform" {
			saved = p.Platforms["iOS"].Block && p.Platforms["macOS"].MinOS == "14.0" && !p.Platforms["macOS"].Block
		}
	}
	if !saved {
		t.Fatalf("default platform policy not saved: %+v", def)
	}
	// A group policy blocking iOS is no warning.
	st, _ = c.post("/console/policy", url.Values{"csrf": {tok}, "kind": {"platform"}, "name": {"No iPhones for contractors"}, "priority": {"1"},
		"groups": {"contractors"}, "iOS-block": {"on"}})
	if st != http.StatusSeeOther {
		t.Fatalf("group platform policy: %d", st)
	}
	// A bad version is refused with the engine's reason, nothing written.
	st, _ = c.post("/console/policy/default-platform", url.Values{"csrf": {tok}, "kind": {"platform"}, "default": {"true"},
		"name": {"Default platform restrictions"}, "iOS-min": {"seventeen"}})
	if _, page := c.get("/console/policy/default-platform"); st != http.StatusSeeOther || !strings.Contains(page, "is not a version like 17.4") {
		t.Fatalf("a bad version: %d", st)
	}

	// Delete: a group policy goes; a default cannot (no button, and the
	// API refuses a forged post).
	if _, page := c.get("/console/policy/default-limit"); strings.Contains(page, `id="delete-policy"`) {
		t.Fatal("a delete button on a default policy")
	}
	c.follow(c.post("/console/policy/"+contractors.ID+"/delete", url.Values{"csrf": {tok}}))
	c.follow(c.post("/console/policy/default-limit/delete", url.Values{"csrf": {tok}}))
	if _, page := c.get("/console/policy/default-limit"); !strings.Contains(page, "a default policy cannot be deleted") {
		t.Fatal("deleting the default: no reason shown")
	}
	if ps, _ := srv.Store().EnrollmentPolicies(ctx); len(ps) != 3 {
		t.Fatalf("after deleting one of three group policies and refusing the default: %d policies", len(ps))
	}
	// An admin's word on ownership: the device page shows it, and why.
	c.follow(c.post("/console/devices/"+ids[0]+"/ownership", url.Values{"csrf": {tok}, "ownership": {"corporate"}}))
	if _, page := c.get("/console/devices/" + ids[0]); !strings.Contains(page, "<dd>corporate <span class=\"muted\">(why: admin)</span></dd>") {
		t.Fatalf("device page after an admin's ownership change: %s", page)
	}
}

// TestCorporateIDImport: a CSV upload imports new identifiers and reports
// the ones that exist with other details, with both details side by side;
// the overwrite form replaces them; a bad file is refused whole.
func TestCorporateIDImport(t *testing.T) {
	srv, _ := startPeople(t)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	tok := c.csrf("/console/corporate-ids")
	file := "c02xk1jhjg5j,Design lab iMac (2024)\nF9FZK2ABCD12,Loaner iPad 4\nF9FZK2ABCD13,Loaner iPad 5\n"
	st, page := c.postFile("/console/corporate-ids/import", map[string]string{"csrf": tok, "kind": "serial"}, "file", "serials.csv", []byte(file))
	if st != http.StatusOK || !strings.Contains(page, "2 added, 0 overwritten, 0 unchanged, 1 kept because they already exist") {
		t.Fatalf("import: %d %s", st, between(page, `id="import-result"`, "</div>"))
	}
	conflicts := between(page, `<table id="conflicts">`, "</table>")
	if !strings.Contains(conflicts, "<th scope=\"row\">C02XK1JHJG5J</th><td>Design lab iMac</td><td>Design lab iMac (2024)</td>") {
		t.Fatalf("conflicts report: %s", conflicts)
	}
	if got, _ := srv.Store().CorporateIdentifier(ctx, "serial", "C02XK1JHJG5J"); got == nil || got.Details != "Design lab iMac" {
		t.Fatalf("the conflict was overwritten without asking: %+v", got)
	}
	if !strings.Contains(page, `<input type="hidden" name="value" value="C02XK1JHJG5J"><input type="hidden" name="details" value="Design lab iMac (2024)">`) {
		t.Fatal("no overwrite form for the conflict")
	}
	st, page = c.post("/console/corporate-ids/overwrite", url.Values{"csrf": {tok}, "kind": {"serial"}, "value": {"C02XK1JHJG5J"}, "details": {"Design lab iMac (2024)"}})
	if st != http.StatusOK || !strings.Contains(page, "0 added, 1 overwritten") || strings.Contains(page, `id="overwrite"`) {
		t.Fatalf("overwrite: %d %s", st, between(page, `id="import-result"`, "</div>"))
	}
	if got, _ := srv.Store().CorporateIdentifier(ctx, "serial", "C02XK1JHJG5J"); got == nil || got.Details != "Design lab iMac (2024)" {
		t.Fatalf("after overwrite: %+v", got)
	}

	// A file with a bad row: refused whole with the line, nothing added.
	st, _ = c.postFile("/console/corporate-ids/import", map[string]string{"csrf": tok, "kind": "serial"}, "file", "bad.csv",
		[]byte("GOOD0001,fine\nnot a serial!,x\n"))
	if _, page := c.get("/console/corporate-ids"); st != http.StatusSeeOther || !strings.Contains(page, "nothing imported: line 2") {
		t.Fatalf("a bad file: %d", st)
	}
	if got, err := srv.Store().CorporateIdentifier(ctx, "serial", "GOOD0001"); err == nil {
		t.Fatalf("a row of a refused file was imported: %+v", got)
	}
	// Add one, search, delete.
	if st, page := c.post("/console/corporate-ids", url.Values{"csrf": {tok}, "kind": {"imei"}, "value": {"35 209900 176148 1"}, "details": {"Spare phone"}}); st != http.StatusOK || !strings.Contains(page, "1 added") {
		t.Fatalf("add one: %d", st)
	}
	if _, page := c.get("/console/corporate-ids?kind=imei&q=3520"); !strings.Contains(page, "352099001761481") || strings.Contains(page, "F9FZK2ABCD12") {
		t.Fatal("the IMEI search")
	}
	c.follow(c.post("/console/corporate-ids/imei/352099001761481/delete", url.Values{"csrf": {tok}}))
	if _, err := srv.Store().CorporateIdentifier(ctx, "imei", "352099001761481"); err == nil {
		t.Fatal("not deleted")
	}
}

// TestPolicyRoles: helpdesk and auditor admins see no button that changes
// policy, users, groups, categories or terms, and each forged post is
// refused 403 by the API, audited as denied, with nothing written.
func TestPolicyRoles(t *testing.T) {
	srv, ids := startPeople(t)
	ctx := t.Context()
	forged := []forgedPost{
		{"/console/policy", url.Values{"kind": {"limit"}, "name": {"X"}, "priority": {"1"}, "groups": {"staff"}, "device_limit": {"1"}}},
		{"/console/policy/default-platform", url.Values{"kind": {"platform"}, "default": {"true"}, "name": {"X"}, "iOS-block": {"on"}}},
		{"/console/policy/default-limit/delete", nil},
		{"/console/corporate-ids", url.Values{"kind": {"serial"}, "value": {"EVIL0001"}}},
		{"/console/corporate-ids/serial/C02XK1JHJG5J/delete", nil},
		{"/console/corporate-ids/overwrite", url.Values{"kind": {"serial"}, "value": {"C02XK1JHJG5J"}, "details": {"mine"}}},
		{"/console/users", url.Values{"username": {"mallory"}}},
		{"/console/users/ann/dem", url.Values{"dem": {"true"}}},
		{"/console/users/ann/state", url.Values{"state": {"disabled"}}},
		{"/console/users/ann/password", nil},
		{"/console/groups/staff/members/ann/remove", nil},
		{"/console/groups/staff/delete", nil},
		{"/console/categories/kiosk/delete", nil},
		{"/console/terms/acceptable-use", url.Values{"title": {"X"}, "text": {"Y"}, "all_users": {"on"}, "require_reacceptance": {"on"}}},
		{"/console/devices/" + ids[0] + "/ownership", url.Values{"ownership": {"personal"}}},
	}
	buttons := map[string][]string{
		"/console/policy":                  {`id="new-limit"`, `id="new-platform"`},
		"/console/policy/default-platform": {`id="save-policy"`, "<form method=\"post\" action=\"/console/policy/"},
		"/console/corporate-ids":           {`id="import"`, `id="add-identifier"`, "Delete C02XK1JHJG5J"},
		"/console/users/ann":               {`id="dem-on"`, `id="disable"`, `id="reset-password"`},
		"/console/groups/staff":            {`id="delete-group"`, `id="add-members"`},
		"/console/devices/" + ids[0]:       {`id="set-ownership"`},
		"/console/terms/acceptable-use":    {`id="publish"`},
	}
	for _, who := range []struct{ name, pw, role string }{{"hana", helpdeskPW, "helpdesk"}, {"avi", auditorPW, "auditor"}} {
		c := signedIn(t, srv, who.name, who.pw)
		c.readOnly(who.name, buttons)
		c.refused(who.role, forged)
		audit, err := srv.Store().ListAudit(ctx, storage.AuditFilter{Actor: who.name}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		denied := 0
		for _, e := range audit {
			if e.Result == "denied" && e.Status == http.StatusForbidden {
				denied++
			}
		}
		if denied != len(forged) {
			t.Errorf("%s: %d posts audited as denied, want %d: %+v", who.name, denied, len(forged), audit)
		}
	}
	// Nothing changed.
	if ps, _ := srv.Store().EnrollmentPolicies(ctx); len(ps) != 0 {
		t.Errorf("policies written: %+v", ps)
	}
	if u, _ := srv.Store().User(ctx, "ann"); u == nil || u.DEM || u.Disabled || u.PasswordHash != "" {
		t.Errorf("ann changed: %+v", u)
	}
	if _, err := srv.Store().User(ctx, "mallory"); err == nil {
		t.Error("mallory created")
	}
	if got, _ := srv.Store().CorporateIdentifier(ctx, "serial", "C02XK1JHJG5J"); got == nil || got.Details != "Design lab iMac" {
		t.Errorf("corporate identifier changed: %+v", got)
	}
	if d, _ := srv.Store().Terms(ctx, "acceptable-use"); d == nil || d.Version != 1 {
		t.Errorf("terms changed: %+v", d)
	}
	if m, _ := srv.Store().GroupMembers(ctx, "staff", "", 0); len(m) != 1 {
		t.Errorf("staff members: %v", m)
	}
}

// TestReports: the failures report filters, pages and exports CSV through
// the API as the admin; a bad filter shows the API's reason.
func TestReports(t *testing.T) {
	srv, _ := startPeople(t)
	ctx := t.Context()
	now := time.Now().UTC()
	for i, f := range []storage.EnrollmentFailure{
		{At: now.Add(-3 * time.Hour), UDID: "UDID-1", Serial: "SER1", Method: "invitation", Reason: "device limit reached", Code: "device_limit", User: "ann", Platform: "iOS", Policy: "default-limit"},
		{At: now.Add(-2 * time.Hour), UDID: "UDID-2", Serial: "SER2", Method: "ade", Reason: "iOS is blocked", Code: "platform_blocked", Platform: "iOS", OSVersion: "17.1"},
		{At: now.Add(-50 * time.Hour), UDID: "UDID-3", Serial: "SER3", Method: "invitation", Reason: "device limit reached", Code: "device_limit", User: "bob"},
	} {
		if err := srv.Store().RecordEnrollmentFailure(ctx, &f); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	c := signedIn(t, srv, "avi", auditorPW)
	cases := []struct {
		query      string
		want, skip []string
	}{
		{"", []string{"UDID-1", "UDID-2", "UDID-3"}, nil},
		{"?reason=device_limit", []string{"UDID-1", "UDID-3"}, []string{"UDID-2"}},
		{"?reason=device_limit&since=24h", []string{"UDID-1"}, []string{"UDID-2", "UDID-3"}},
		{"?user=BOB", []string{"UDID-3"}, []string{"UDID-1"}},
		{"?method=ade", []string{"UDID-2", "platform_blocked"}, []string{"UDID-1"}},
	}
	for _, tc := range cases {
		st, page := c.get("/console/reports/failures" + tc.query)
		rows := between(page, "<tbody>", "</tbody>")
		if st != http.StatusOK {
			t.Errorf("%s: %d", tc.query, st)
		}
		for _, w := range tc.want {
			if !strings.Contains(rows, w) {
				t.Errorf("%s: no %s", tc.query, w)
			}
		}
		for _, s := range tc.skip {
			if strings.Contains(rows, s) {
				t.Errorf("%s: %s listed", tc.query, s)
			}
		}
		// The CSV link carries the same filters and answers the same rows.
		link := strings.ReplaceAll(between(page, `<a id="csv" href="`, `"`), "&amp;", "&")
		resp, err := c.c.Get(c.base + link)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || len(recs) != len(tc.want)+1-countCode(tc.want) {
			t.Errorf("%s: CSV %s: %d %q, %d rows, %v", tc.query, link, resp.StatusCode, resp.Header.Get("Content-Type"), len(recs), err)
		}
	}
	if st, page := c.get("/console/reports/failures?since=yesterday"); st != http.StatusOK || !strings.Contains(page, "since must be an RFC 3339 time or a duration") {
		t.Errorf("a bad since: %d", st)
	}
	if st, page := c.get("/console/reports/incomplete?section=nowhere"); st != http.StatusOK || !strings.Contains(page, "section &#34;nowhere&#34;") {
		t.Errorf("a bad section: %d %s", st, between(page, `role="alert">`, "<"))
	}
	if st, page := c.get("/console/reports/summary?days=0"); st != http.StatusOK || !strings.Contains(page, "days must be 1..366") {
		t.Errorf("a bad days: %d", st)
	}
	// Paging: a page of 50 and a next link.
	for i := range 60 {
		f := storage.EnrollmentFailure{At: now, UDID: "PAGED-" + string(rune('A'+i/26)) + string(rune('A'+i%26)), Reason: "r", Code: "identity_refused"}
		if err := srv.Store().RecordEnrollmentFailure(ctx, &f); err != nil {
			t.Fatal(err)
		}
	}
	_, first := c.get("/console/reports/failures?reason=identity_refused")
	next := strings.ReplaceAll(between(first, `<a id="next" href="`, `"`), "&amp;", "&")
	_, second := c.get(next)
	if n1, n2 := strings.Count(first, "PAGED-"), strings.Count(second, "PAGED-"); n1 != 50 || n2 != 10 || !strings.Contains(next, "reason=identity_refused") {
		t.Errorf("pages of %d and %d, next %q", n1, n2, next)
	}
}

// countCode counts the wanted strings that are reason codes rather than
// devices (each device is one CSV row).
func countCode(want []string) int {
	n := 0
	for _, w := range want {
		if !strings.HasPrefix(w, "UDID-") {
			n++
		}
	}
	return n
}

// TestBrowserPolicyAndImport: in Chromium, the owner creates a device
// limit policy for the contractors group, sees it above the default and
// its limit on a member's page, then imports a corporate-identifier CSV,
// reads the conflict report and overwrites the conflict.
func TestBrowserPolicyAndImport(t *testing.T) {
	srv, _ := startPeople(t)
	if st := srv.API(t, "POST", "/v1/groups/contractors/members", map[string]any{"usernames": []string{"bob"}}, nil); st != http.StatusOK {
		t.Fatalf("add bob: %d", st)
	}
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"
	browserSignIn(t, ctx, base, "olga", ownerPW)
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/policy"))
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS("#new-limit")))
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != "New device limit policy" {
		t.Fatalf("new policy page: %q", h)
	}
	st := browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "Contractors"),
		chromedp.SetValue(chromedp.CSS("#priority"), "1"),
		chromedp.SendKeys(chromedp.CSS("#groups"), "contractors"),
		chromedp.SetValue(chromedp.CSS("#device_limit"), "1"),
		chromedp.Click(chromedp.CSS("#save-policy")),
	)
	if f := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash"))); st != http.StatusOK || f != "Policy Contractors saved." {
		t.Fatalf("after saving: %d %q", st, f)
	}
	rows := browsertest.Get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#limit-policies tbody tr')].map(r => r.innerText)`))
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "1\tContractors\tcontractors\t1 device per user") || !strings.HasPrefix(rows[1], "default (last)") {
		t.Fatalf("limit policies: %q", rows)
	}
	browsertest.Screenshot(t, ctx, "policies")
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/users/bob"))
	if l := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#limit"))); !strings.HasPrefix(l, "0 of 1 (policy ") {
		t.Fatalf("bob's limit: %q", l)
	}
	browsertest.Screenshot(t, ctx, "user")
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/policy/default-platform"))
	browsertest.Screenshot(t, ctx, "platform-policy")

	csvFile := filepath.Join(t.TempDir(), "serials.csv")
	if err := os.WriteFile(csvFile, []byte("C02XK1JHJG5J,Design lab iMac (2024)\nF9FZK2ABCD12,Loaner iPad 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/corporate-ids"))
	st = browsertest.Load(t, ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#import-file"), []string{csvFile}),
		chromedp.Click(chromedp.CSS("#import")),
	)
	res := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#import-result")))
	if st != http.StatusOK || !strings.Contains(res, "1 added, 0 overwritten, 0 unchanged, 1 kept") {
		t.Fatalf("import: %d %q", st, res)
	}
	conflict := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#conflicts tbody")))
	if !strings.Contains(conflict, "C02XK1JHJG5J\tDesign lab iMac\tDesign lab iMac (2024)") {
		t.Fatalf("conflicts: %q", conflict)
	}
	browsertest.Screenshot(t, ctx, "conflicts")
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS("#overwrite")))
	if res := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#import-result"))); !strings.Contains(res, "0 added, 1 overwritten") {
		t.Fatalf("overwrite: %q", res)
	}
	if got, _ := srv.Store().CorporateIdentifier(t.Context(), "serial", "C02XK1JHJG5J"); got == nil || got.Details != "Design lab iMac (2024)" {
		t.Fatalf("stored: %+v", got)
	}
}
