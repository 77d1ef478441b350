package server_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/terms"
)

// testTerms drives terms and conditions through the admin API of a running
// server on loopback TLS and the Go API the portal calls: documents and
// their versions, assignment by group, Pending and Accept (once per user),
// re-acceptance, the acceptance report in JSON and CSV, and refusals that
// write nothing.
func testTerms(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	ctx := context.Background()
	do := dirCaller(t, srv)
	const js = "application/json"
	do("POST", "/v1/users", js, `{"username": "ann"}`, 201)
	do("POST", "/v1/users", js, `{"username": "bob"}`, 201)
	do("POST", "/v1/groups", js, `{"name": "sales"}`, 201)
	do("POST", "/v1/groups/sales/members", js, `{"usernames": ["ann"]}`, 200)

	// Refusals write nothing.
	big := strings.Repeat("x", terms.MaxText+1)
	for body, want := range map[string]int{
		`{"name": "aup", "title": "AUP", "text": "` + big + `", "all_users": true}`:                 400,
		`{"name": "aup", "title": "", "text": "t", "all_users": true}`:                              400,
		`{"name": "aup", "title": "AUP", "text": "t"}`:                                              400,
		`{"name": "aup", "title": "AUP", "text": "t", "groups": ["nosuch"]}`:                        404,
		`{"name": "acceptances", "title": "AUP", "text": "t", "all_users": true}`:                   400,
		`{"name": "aup", "title": "AUP", "text": "t", "all_users": true, "version": 7}`:             400,
		`{"name": "` + strings.Repeat("a", 65) + `", "title": "T", "text": "t", "all_users": true}`: 400,
	} {
		do("POST", "/v1/terms", js, body, want)
	}
	do("POST", "/v1/terms", js, `{"name": "aup", "title": "AUP", "text": "`+strings.Repeat("x", 3<<20)+`", "all_users": true}`, 413)
	if l := do("GET", "/v1/terms", "", "", 200); len(l["terms"].([]any)) != 0 {
		t.Fatalf("refused creates wrote %v", l)
	}

	d := do("POST", "/v1/terms", js, `{"name": "AUP", "title": "Acceptable use", "summary": "Be nice.", "text": "Version one.", "all_users": true}`, 201)
	if d["name"] != "aup" || d["version"] != 1.0 || len(d["versions"].([]any)) != 1 {
		t.Fatalf("created %v", d)
	}
	do("POST", "/v1/terms", js, `{"name": "aup", "title": "x", "text": "x", "all_users": true}`, 409)
	do("POST", "/v1/terms", js, `{"name": "sales-nda", "title": "Sales NDA", "text": "Keep it quiet.", "groups": ["Sales"]}`, 201)
	if l := do("GET", "/v1/terms", "", "", 200); len(l["terms"].([]any)) != 2 || l["terms"].([]any)[0].(map[string]any)["text"] != nil {
		t.Fatalf("list (no text): %v", l)
	}

	svc, err := terms.New(srv.Store())
	if err != nil {
		t.Fatal(err)
	}
	pending := func(user string) string {
		t.Helper()
		p, err := svc.Pending(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, d := range p {
			n = append(n, d.Name)
		}
		return strings.Join(n, ",")
	}
	if got := pending("ann"); got != "aup,sales-nda" {
		t.Fatalf("ann pending %q", got)
	}
	if got := pending("bob"); got != "aup" {
		t.Fatalf("bob pending %q", got)
	}
	meta := terms.Meta{Address: "192.0.2.10", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"}
	for _, doc := range []string{"aup", "sales-nda"} {
		if err := svc.Accept(ctx, "ann", doc, 1, meta); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Accept(ctx, "ann", "aup", 1, terms.Meta{Address: "198.51.100.1"}); err != nil { // her second device
		t.Fatal(err)
	}
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after accepting: %q", got)
	}

	// A typo fix keeps ann's acceptance; a new version that requires it does not.
	if v := do("PUT", "/v1/terms/aup", js, `{"text": "Version one, fixed."}`, 200); v["version"] != 2.0 || v["title"] != "Acceptable use" || v["reaccept_from"] != 1.0 {
		t.Fatalf("version 2: %v", v)
	}
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after a typo fix: %q", got)
	}
	do("PUT", "/v1/terms/aup", js, `{"groups": ["nosuch"]}`, 404)
	do("PUT", "/v1/terms/aup", js, `{"text": ""}`, 400)
	do("PUT", "/v1/terms/nosuch", js, `{"text": "x"}`, 404)
	v3 := do("PUT", "/v1/terms/aup", js, `{"text": "Version three.", "require_reacceptance": true}`, 200)
	if v3["version"] != 3.0 || v3["reaccept_from"] != 3.0 || len(v3["versions"].([]any)) != 3 {
		t.Fatalf("version 3: %v", v3)
	}
	if got := pending("ann"); got != "aup" {
		t.Fatalf("ann after a re-acceptance version: %q", got)
	}
	if old := do("GET", "/v1/terms/aup?version=1", "", "", 200); old["text"] != "Version one." {
		t.Fatalf("version 1 kept: %v", old)
	}
	do("GET", "/v1/terms/aup?version=9", "", "", 404)
	do("GET", "/v1/terms/aup?version=x", "", "", 400)

	// The report.
	rep := do("GET", "/v1/terms/acceptances?user=ann", "", "", 200)
	rows := rep["acceptances"].([]any)
	if len(rows) != 2 {
		t.Fatalf("ann's acceptances (one per document, not per device): %v", rep)
	}
	r0 := rows[0].(map[string]any)
	if r0["document"] != "aup" || r0["version"] != 1.0 || r0["accepted_latest"] != false || r0["current_version"] != 3.0 || r0["address"] != "192.0.2.10" {
		t.Fatalf("aup row: %v", r0)
	}
	if r1 := rows[1].(map[string]any); r1["document"] != "sales-nda" || r1["accepted_latest"] != true {
		t.Fatalf("nda row: %v", r1)
	}
	p1 := do("GET", "/v1/terms/acceptances?limit=1", "", "", 200)
	if len(p1["acceptances"].([]any)) != 1 || p1["next"] == "" {
		t.Fatalf("page 1: %v", p1)
	}
	p2 := do("GET", "/v1/terms/acceptances?limit=1&after="+p1["next"].(string), "", "", 200)
	if len(p2["acceptances"].([]any)) != 1 || p2["next"] != "" || p2["acceptances"].([]any)[0].(map[string]any)["document"] != "sales-nda" {
		t.Fatalf("page 2: %v", p2)
	}
	do("GET", "/v1/terms/acceptances?document=nosuch", "", "", 404)
	do("GET", "/v1/terms/acceptances?after=bad", "", "", 400)
	do("GET", "/v1/terms/acceptances?user=a%20b", "", "", 400)

	req, _ := http.NewRequest("GET", srv.URL+"/v1/terms/acceptances.csv?document=aup", nil)
	req.Header.Set("Authorization", "Bearer "+srv.APIKey())
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", resp.StatusCode, data)
	}
	recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil || len(recs) != 2 || strings.Join(recs[0], ",") != "username,document,version,accepted_at,accepted_latest,current_version,address,user_agent" ||
		recs[1][0] != "ann" || recs[1][2] != "1" || recs[1][4] != "false" || recs[1][7] != meta.UserAgent {
		t.Fatalf("csv rows %q: %v", recs, err)
	}

	// Deleting a document takes its acceptances with it.
	do("DELETE", "/v1/terms/aup", "", "", 204)
	do("DELETE", "/v1/terms/aup", "", "", 404)
	if rep := do("GET", "/v1/terms/acceptances", "", "", 200); len(rep["acceptances"].([]any)) != 1 {
		t.Fatalf("after delete: %v", rep)
	}
}

// testTermsEnforced: the portal hands out no profile unless the user has
// accepted the terms in their latest version that requires it, asked again
// at the download: a forged post straight to the profile step is refused
// and recorded, so is a download after a new version requiring
// re-acceptance came out; Decline stops the enrollment (stage and failure
// recorded) until the user comes back and accepts.
func testTermsEnforced(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	if code := s.API(t, "POST", "/v1/users", map[string]any{"username": "dee", "password": "correct horse battery"}, nil); code != http.StatusCreated {
		t.Fatalf("create user = %d", code)
	}
	if code := s.API(t, "POST", "/v1/terms", map[string]any{"name": "aup", "title": "Acceptable use", "text": "Use it with care.", "all_users": true}, nil); code != http.StatusCreated {
		t.Fatalf("create terms = %d", code)
	}
	termsFailures := func(stage string) []failureView {
		t.Helper()
		var page struct {
			Failures []failureView `json:"failures"`
		}
		if code := s.API(t, "GET", "/v1/enrollment/failures?reason=terms_not_accepted&stage="+stage, nil, &page); code != 200 {
			t.Fatalf("failures = %d", code)
		}
		return page.Failures
	}
	noProfile := func(what string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusForbidden || strings.Contains(resp.Header.Get("Content-Type"), "aspen") {
			t.Fatalf("%s = %d %s, want the 403 refusal page", what, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	b := newBrowser(t, s, iPhoneUA)
	if resp, body := b.signIn("dee", "correct horse battery"); resp.Request.URL.Path != "/portal/terms" ||
		!strings.Contains(body, `id="decline-terms"`) || !strings.Contains(body, `name="decline"`) {
		t.Fatalf("after sign-in: %s, want the terms page with a Decline button: %s", resp.Request.URL.Path, body)
	}

	// A post straight to the profile step, skipping the terms.
	resp, _ := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}})
	noProfile("forged profile post", resp)
	if !strings.Contains(b.page, "Acceptable use (version 1)") || !strings.Contains(b.page, "Accept the terms first") ||
		!strings.Contains(b.page, `href="/portal/terms"`) || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("refusal page: %s", b.page)
	}
	if fs := termsFailures("portal"); len(fs) != 1 || fs[0].User != "dee" || fs[0].Platform != "iOS" || fs[0].Method != "portal" || fs[0].Rule != "aup" ||
		!strings.Contains(fs[0].Reason, "aup version 1") {
		t.Fatalf("terms refusals recorded: %+v, want dee's at the portal stage", fs)
	}

	// Decline: the enrollment stops, recorded as a stage and a failure.
	b.do("GET", "/portal/terms", nil)
	resp, _ = b.do("POST", "/portal/terms", url.Values{"csrf": {b.csrf()}, "doc": {"aup:1"}, "decline": {"yes"}})
	if resp.StatusCode != 200 || !strings.Contains(b.page, "Enrollment stopped") || !strings.Contains(b.page, "Contact your IT team") ||
		!strings.Contains(b.page, `href="/portal/terms"`) {
		t.Fatalf("decline = %d: %s", resp.StatusCode, b.page)
	}
	if fs := termsFailures("terms"); len(fs) != 1 || fs[0].User != "dee" || fs[0].Platform != "iOS" || !strings.HasPrefix(fs[0].Reason, "declined") {
		t.Fatalf("declines recorded: %+v, want dee's at the terms stage", fs)
	}
	var rep struct {
		Sessions []struct {
			Username  string `json:"username"`
			LastStage string `json:"last_stage"`
			Section   string `json:"section"`
		} `json:"sessions"`
	}
	if code := s.API(t, "GET", "/v1/enrollment/incomplete", nil, &rep); code != 200 || len(rep.Sessions) != 1 ||
		rep.Sessions[0].Username != "dee" || rep.Sessions[0].LastStage != "terms_declined" || rep.Sessions[0].Section != "terms" {
		t.Fatalf("incomplete report after a decline = %d %+v", code, rep.Sessions)
	}
	resp, _ = b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}})
	noProfile("profile after declining", resp)
	if as := acceptances(t, s); len(as) != 0 {
		t.Fatalf("acceptances after a decline: %+v", as)
	}

	// Back to the terms, accepted: the profile page.
	b.do("GET", "/portal/terms", nil)
	if resp, _ := b.do("POST", "/portal/terms", url.Values{"csrf": {b.csrf()}, "doc": {"aup:1"}, "accept": {"yes"}}); resp.Request.URL.Path != "/portal/profile" {
		t.Fatalf("accepting after a decline went to %s, want the profile page", resp.Request.URL.Path)
	}
	// A version requiring re-acceptance comes out before the download.
	if code := s.API(t, "PUT", "/v1/terms/aup", map[string]any{"text": "Use it with more care.", "require_reacceptance": true}, nil); code != 200 {
		t.Fatalf("new terms version = %d", code)
	}
	resp, _ = b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}})
	noProfile("download after a re-acceptance version", resp)
	if !strings.Contains(b.page, "Acceptable use (version 2)") {
		t.Fatalf("refusal page names version 2? %s", b.page)
	}
	if fs := termsFailures("portal"); len(fs) != 3 || !strings.Contains(fs[2].Reason, "aup version 2") {
		t.Fatalf("terms refusals recorded: %+v, want 3 (the forged post, after the decline, after the new version)", fs)
	}
	if chs, err := s.Store().ChallengesFor(ctx, "dee"); err != nil || len(chs) != 0 {
		t.Fatalf("refusals issued challenges: %v %v", chs, err)
	}
	b.do("GET", "/portal/terms", nil)
	if resp, _ := b.do("POST", "/portal/terms", url.Values{"csrf": {b.csrf()}, "doc": {"aup:2"}, "accept": {"yes"}}); resp.Request.URL.Path != "/portal/profile" {
		t.Fatalf("accepting version 2 went to %s", resp.Request.URL.Path)
	}
	if resp, body := b.do("POST", "/portal/profile", url.Values{"csrf": {b.csrf()}}); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Fatalf("download with the terms accepted = %d %s", resp.StatusCode, body)
	}
}
