package server_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
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
