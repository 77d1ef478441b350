package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// TestCategoryForms: create, edit (group set and removed) and delete a
// category through the console; a bad group is refused with the reason.
func TestCategoryForms(t *testing.T) {
	srv, ids := startPeople(t)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	tok := c.csrf("/console/categories")
	cases := []struct {
		name, path string
		form       url.Values
		page, say  string
		check      func() bool
	}{
		{"create", "/console/categories", url.Values{"name": {"Lab"}, "description": {"Lab Macs"}}, "/console/categories", "Category lab created.",
			func() bool {
				g, err := srv.Store().Category(ctx, "lab")
				return err == nil && g.Description == "Lab Macs" && g.Group == ""
			}},
		{"create, unknown group", "/console/categories", url.Values{"name": {"spare"}, "group": {"nosuch"}}, "/console/categories", "nosuch",
			func() bool { _, err := srv.Store().Category(ctx, "spare"); return err != nil }},
		{"set a group", "/console/categories/lab", url.Values{"description": {"Lab Macs, 2nd floor"}, "group": {"contractors"}}, "/console/categories/lab", "Category saved.",
			func() bool {
				g, _ := srv.Store().Category(ctx, "lab")
				return g.Group == "contractors" && g.Description == "Lab Macs, 2nd floor"
			}},
		{"remove the group", "/console/categories/lab", url.Values{"description": {"Lab Macs"}, "group": {""}}, "/console/categories/lab", "Category saved.",
			func() bool { g, _ := srv.Store().Category(ctx, "lab"); return g.Group == "" }},
		{"delete", "/console/categories/lab/delete", nil, "/console/categories", "Category lab deleted",
			func() bool { _, err := srv.Store().Category(ctx, "lab"); return err != nil }},
	}
	for _, tc := range cases {
		form := url.Values{"csrf": {tok}}
		for k, v := range tc.form {
			form[k] = v
		}
		if st, body := c.post(tc.path, form); st != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", tc.name, st, body)
		}
		if _, page := c.get(tc.page); !strings.Contains(page, tc.say) {
			t.Errorf("%s: %s does not say %q", tc.name, tc.page, tc.say)
		}
		if !tc.check() {
			t.Errorf("%s: not stored", tc.name)
		}
	}
	// A category's page lists its devices.
	if st := srv.API(t, "PUT", "/v1/devices/"+ids[1]+"/category", map[string]string{"category": "kiosk"}, nil); st != http.StatusOK {
		t.Fatalf("set category: %d", st)
	}
	if _, page := c.get("/console/categories/kiosk"); !strings.Contains(between(page, `<ul id="category-devices">`, "</ul>"), ids[1]) {
		t.Error("the kiosk page does not list its device")
	}
}

// TestTermsForms: create a document for a group, publish a typo fix
// (earlier acceptances still count) and then a version that asks for
// re-acceptance (they no longer do), read an older version, filter the
// acceptance report and export it, and delete the document.
func TestTermsForms(t *testing.T) {
	srv, _ := startPeople(t)
	ctx := t.Context()
	c := signedIn(t, srv, "olga", ownerPW)
	tok := c.csrf("/console/terms")
	post := func(path string, fields map[string]string) (int, string) {
		fields["csrf"] = tok
		// The terms forms are multipart (a text of up to 256 KiB).
		return c.postFile(path, fields, "unused", "unused.txt", nil)
	}
	if st, body := post("/console/terms", map[string]string{"name": "BYOD", "title": "Personal devices", "summary": "Read me.",
		"text": "Version one.", "groups": "staff, contractors"}); st != http.StatusSeeOther {
		t.Fatalf("create: %d %s", st, body)
	}
	d, err := srv.Store().Terms(ctx, "byod")
	if err != nil || d.AllUsers || strings.Join(d.Groups, ",") != "contractors,staff" || d.Version != 1 {
		t.Fatalf("created: %+v, %v", d, err)
	}
	if err := srv.Store().AcceptTerms(ctx, &storage.TermsAcceptance{Document: "byod", Username: "ann", Version: 1, AcceptedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if st, _ := post("/console/terms/byod", map[string]string{"title": "Personal devices", "summary": "Read me.", "text": "Version one, fixed.", "groups": "staff, contractors"}); st != http.StatusSeeOther {
		t.Fatalf("typo fix: %d", st)
	}
	if _, page := c.get("/console/terms/byod"); !strings.Contains(page, "Version 2 published; earlier acceptances still count.") || !strings.Contains(page, "Publish version 3") {
		t.Fatal("after the typo fix")
	}
	if _, page := c.get("/console/terms/acceptances?document=byod"); !strings.Contains(between(page, "<tbody>", "</tbody>"), `ann</a></td><td><a href="/console/terms/byod">byod</a></td><td>1</td>`) {
		t.Fatal("the report after the typo fix")
	}
	if st, _ := post("/console/terms/byod", map[string]string{"title": "Personal devices", "text": "Version three: new rules.", "all_users": "on", "require_reacceptance": "on"}); st != http.StatusSeeOther {
		t.Fatalf("new rules: %d", st)
	}
	d, _ = srv.Store().Terms(ctx, "byod")
	if d.Version != 3 || d.ReacceptFrom != 3 || !d.AllUsers || d.Summary != "" {
		t.Fatalf("version 3: %+v", d)
	}
	if _, page := c.get("/console/terms/byod"); !strings.Contains(page, "users who accepted an earlier version must accept it") {
		t.Fatal("no re-acceptance message")
	}
	if _, page := c.get("/console/terms/byod?version=1"); !strings.Contains(page, "Version one.") || !strings.Contains(page, "an older one; the current is 3") {
		t.Fatal("version 1")
	}
	_, page := c.get("/console/terms/acceptances?user=ann&document=byod")
	if rows := between(page, "<tbody>", "</tbody>"); strings.Count(rows, "<tr>") != 1 || strings.Contains(rows, "(accepted)") {
		t.Fatalf("ann's acceptance of byod: %s", rows)
	}
	link := strings.ReplaceAll(between(page, `<a id="csv" href="`, `"`), "&amp;", "&")
	resp, err := c.c.Get(c.base + link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	if resp.StatusCode != 200 || !strings.Contains(b.String(), "ann,byod,1,") || strings.Contains(b.String(), "acceptable-use") {
		t.Fatalf("CSV %s: %d %q", link, resp.StatusCode, b.String())
	}
	if st, _ := post("/console/terms/byod/delete", map[string]string{}); st != http.StatusSeeOther {
		t.Fatalf("delete: %d", st)
	}
	if _, err := srv.Store().Terms(ctx, "byod"); err == nil {
		t.Fatal("not deleted")
	}
}
