package console_test

import (
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// TestCommandPages: the Commands page lists every device's commands
// newest first with who sent them, filters them (a bad filter is the page
// again with the API's reason), pages on with the filters kept and
// downloads the same rows as CSV; a command's page shows its request and
// results with the PIN and the bypass code hidden, and the UUID lookup
// opens it.
func TestCommandPages(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 3)
	ctx := t.Context()
	send := func(rt string, payload map[string]any, targets ...string) string {
		t.Helper()
		var out struct {
			UUID string `json:"command_uuid"`
		}
		if st := srv.API(t, "POST", "/v1/commands", map[string]any{"targets": targets, "request_type": rt, "payload": payload}, &out); st != http.StatusCreated {
			t.Fatalf("send %s: %d", rt, st)
		}
		return out.UUID
	}
	list := send("ProfileList", nil, ids[1])
	// ids[1] answers: the response carries a bypass code, which is a secret.
	if _, err := srv.Store().Next(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`<plist><dict><key>CommandUUID</key><string>%s</string><key>Status</key><string>Acknowledged</string>`+
		`<key>ActivationLockBypassCode</key><string>BYPASS-SECRET-1</string><key>ProfileList</key><array><dict><key>PayloadIdentifier</key><string>com.example.wifi</string></dict></array></dict></plist>`, list)
	if _, err := srv.Store().StoreResult(ctx, &storage.Result{CommandUUID: list, ChannelID: ids[1], Status: storage.Acknowledged, Raw: []byte(raw), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	lock := send("DeviceLock", map[string]any{"Message": "Return to IT", "PIN": "246810"}, ids[0], ids[2])

	hana := newClient(t, srv)
	if st, _ := hana.signIn("hana", helpdeskPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	if st, body := hana.post("/console/devices/"+ids[2]+"/actions/lock", url.Values{"csrf": {hana.csrf("/console/devices/" + ids[2])}, "message": {"Call IT"}}); st != http.StatusSeeOther {
		t.Fatalf("lock from the console: %d %s", st, body)
	}

	st, page := hana.get("/console/commands")
	rows := between(page, `<table id="commands">`, "</table>")
	if st != http.StatusOK || strings.Count(rows, "<tr>") != 5 { // the header and four targets
		t.Fatalf("commands page: %d, rows %q", st, rows)
	}
	// Newest first: hana's lock, then the bulk lock's two targets, then the list.
	order := []string{">hana<", lock, list}
	for i := 1; i < len(order); i++ {
		if a, b := strings.Index(rows, order[i-1]), strings.Index(rows, order[i]); a < 0 || b < 0 || a > b {
			t.Errorf("%q should come before %q in %q", order[i-1], order[i], rows)
		}
	}
	if !strings.Contains(rows, `href="/console/devices/`+ids[2]+`"`) || !strings.Contains(rows, `href="/console/commands/`+lock+`"`) ||
		!strings.Contains(rows, ">bootstrap<") || !strings.Contains(rows, "Acknowledged") {
		t.Errorf("rows lack device and command links or senders: %q", rows)
	}
	for _, c := range []struct {
		query      string
		want, skip []string
	}{
		{"?sender=hana", []string{">hana<"}, []string{lock, list}},
		{"?request_type=ProfileList", []string{list}, []string{lock}},
		{"?status=Acknowledged", []string{list}, []string{lock}},
		{"?sender=bootstrap&request_type=DeviceLock", []string{lock, ids[0], ids[2]}, []string{list, ">hana<"}},
		{"?since=1h", []string{lock, list}, nil},
	} {
		st, page := hana.get("/console/commands" + c.query)
		rows := between(page, `<table id="commands">`, "</table>")
		if st != http.StatusOK {
			t.Errorf("%s: %d", c.query, st)
		}
		for _, w := range c.want {
			if !strings.Contains(rows, w) {
				t.Errorf("%s: no %s in %q", c.query, w, rows)
			}
		}
		for _, s := range c.skip {
			if strings.Contains(rows, s) {
				t.Errorf("%s: %s listed", c.query, s)
			}
		}
	}
	if st, page := hana.get("/console/commands?request_type=EraseDevice"); st != http.StatusOK || !strings.Contains(page, "No command matches.") {
		t.Errorf("no match: %d", st)
	}
	if st, page := hana.get("/console/commands?since=yesterday"); st != http.StatusBadRequest || !strings.Contains(page, "since must be an RFC 3339 time or a duration") ||
		!strings.Contains(page, `value="yesterday"`) {
		t.Errorf("a bad since: %d", st)
	}

	// The CSV link keeps the filters and answers the same rows.
	_, page = hana.get("/console/commands?request_type=DeviceLock")
	link := html.UnescapeString(between(page, `<a id="csv" href="`, `"`))
	resp, err := hana.c.Get(hana.base + link)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(recs) != 4 || recs[1][2] != "DeviceLock" || recs[1][3] != "hana" {
		t.Errorf("CSV %s: %d, %q, %v", link, resp.StatusCode, recs, err)
	}

	// Paging: 50 a page, the older page's link keeps the filter.
	for range 52 {
		send("ProfileList", nil, ids[0])
	}
	_, first := hana.get("/console/commands?request_type=ProfileList")
	next := html.UnescapeString(between(first, `<a id="next" href="`, `"`))
	_, second := hana.get(next)
	n1 := strings.Count(between(first, "<tbody>", "</tbody>"), "<tr>")
	n2 := strings.Count(between(second, "<tbody>", "</tbody>"), "<tr>")
	if n1 != 50 || n2 != 3 || !strings.Contains(next, "request_type=ProfileList") || !strings.Contains(second, list) ||
		strings.Contains(second, `id="next"`) || !strings.Contains(second, `id="newest"`) {
		t.Errorf("pages of %d and %d rows, next %q", n1, n2, next)
	}

	// The command's page: request with the PIN hidden, sender, targets.
	st, page = hana.get("/console/commands/" + lock)
	if st != http.StatusOK || !strings.Contains(page, "<h1>DeviceLock <code>"+lock+"</code></h1>") || !strings.Contains(page, "Return to IT") ||
		!strings.Contains(page, "(hidden)") || strings.Contains(page, "246810") || !strings.Contains(page, "bootstrap") ||
		!strings.Contains(page, `href="/console/devices/`+ids[0]+`"`) || !strings.Contains(page, "No answer yet.") {
		t.Errorf("command page: %d %s", st, between(page, "<main", "</main>"))
	}
	// The answered one: its response, without the bypass code.
	if st, page = hana.get("/console/commands?uuid=" + list); st != http.StatusOK || !strings.Contains(page, "com.example.wifi") ||
		strings.Contains(page, "BYPASS-SECRET-1") || !strings.Contains(page, "Acknowledged at") {
		t.Errorf("lookup of the answered command: %d %s", st, between(page, "<main", "</main>"))
	}
	if st, page = hana.get("/console/commands?uuid=NO-SUCH-COMMAND"); st != http.StatusNotFound || !strings.Contains(page, `id="uuid-error"`) {
		t.Errorf("lookup of an unknown command: %d", st)
	}
	if st, _ = hana.get("/console/commands/NO-SUCH-COMMAND"); st != http.StatusNotFound {
		t.Errorf("unknown command page: %d", st)
	}
	// The device page's history links to the command's page.
	if _, page = hana.get("/console/devices/" + ids[1]); !strings.Contains(page, `href="/console/commands/`+list+`"`) {
		t.Errorf("device history does not link to the command page")
	}
}
