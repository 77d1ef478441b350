package server_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// testIncompleteEnrollments records portal stages through the Go API the
// portal calls and reads the incomplete-enrollment report through the
// admin API of a running server, in JSON and CSV.
func testIncompleteEnrollments(t *testing.T, b servertest.Backend) {
	srv := b.Start(t)
	ctx := context.Background()
	do := dirCaller(t, srv)
	clock := time.Now().Add(-3 * time.Hour).UTC()
	rec, err := enrollstage.New(srv.Store(), enrollstage.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	step := func(id string, st enrollstage.Stage, after time.Duration, f enrollstage.Facts) {
		t.Helper()
		clock = clock.Add(after)
		if err := rec.Record(ctx, id, st, f); err != nil {
			t.Fatal(err)
		}
	}
	iphone := enrollstage.Facts{Method: enrollstage.MethodPortal, Platform: "iOS", Model: "iPhone14,2", OSVersion: "18.1"}
	step("s-done", enrollstage.SigninShown, 0, iphone)
	step("s-done", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "ann"})
	step("s-done", enrollstage.ProfileDownloaded, time.Minute, enrollstage.Facts{})
	step("s-done", enrollstage.Enrolled, time.Minute, enrollstage.Facts{UDID: "00008110-000A"})
	step("s-terms", enrollstage.SigninShown, time.Second, iphone)
	step("s-terms", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "bob"})
	step("s-terms", enrollstage.TermsShown, time.Minute, enrollstage.Facts{})
	step("s-mac", enrollstage.SigninShown, time.Second, enrollstage.Facts{Method: enrollstage.MethodSetupAssistant, Platform: "macOS", Serial: "C02XYZ"})
	step("s-mac", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "cy"})
	step("s-mac", enrollstage.Enrolled, 40*time.Minute, enrollstage.Facts{})

	rep := do("GET", "/v1/enrollment/incomplete", "", "", 200)
	rows := rep["sessions"].([]any)
	if rep["initiated"] != 3.0 || rep["incomplete"] != 1.0 || rep["slow"] != 1.0 || len(rows) != 2 {
		t.Fatalf("report %v", rep)
	}
	r0, r1 := rows[0].(map[string]any), rows[1].(map[string]any)
	if r0["session_id"] != "s-terms" || r0["last_stage"] != "terms_shown" || r0["section"] != "terms" || r0["username"] != "bob" ||
		r0["abandoned"] != true || r0["enrolled"] != false || r0["time_spent_seconds"] != 120.0 {
		t.Fatalf("terms row %v", r0)
	}
	if r1["session_id"] != "s-mac" || r1["took_over_30_minutes"] != true || r1["enrolled"] != true || r1["method"] != "setup-assistant" {
		t.Fatalf("mac row %v", r1)
	}
	if p := do("GET", "/v1/enrollment/incomplete?platform=macOS&limit=1", "", "", 200); len(p["sessions"].([]any)) != 1 || p["next"] != "" {
		t.Fatalf("macOS page %v", p)
	}
	p1 := do("GET", "/v1/enrollment/incomplete?limit=1", "", "", 200)
	if p1["next"] == "" {
		t.Fatalf("page 1 %v", p1)
	}
	if p2 := do("GET", "/v1/enrollment/incomplete?limit=1&after="+p1["next"].(string), "", "", 200); p2["sessions"].([]any)[0].(map[string]any)["session_id"] != "s-mac" {
		t.Fatalf("page 2 %v", p2)
	}
	if later := do("GET", "/v1/enrollment/incomplete?since="+time.Now().UTC().Format(time.RFC3339), "", "", 200); later["initiated"] != 0.0 {
		t.Fatalf("since now %v", later)
	}
	do("GET", "/v1/enrollment/incomplete?since=yesterday", "", "", 400)
	do("GET", "/v1/enrollment/incomplete?section=nope", "", "", 400)
	do("GET", "/v1/enrollment/incomplete?after=bad", "", "", 400)

	req, _ := http.NewRequest("GET", srv.URL+"/v1/enrollment/incomplete.csv", nil)
	req.Header.Set("Authorization", "Bearer "+srv.APIKey())
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if resp.StatusCode != 200 || err != nil || len(recs) != 3 || recs[0][0] != "session_id" || recs[1][0] != "s-terms" || recs[2][15] != "true" {
		t.Fatalf("csv %d %q: %v", resp.StatusCode, recs, err)
	}
}
