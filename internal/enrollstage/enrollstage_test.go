package enrollstage_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func newRecorder(t *testing.T) (*enrollstage.Recorder, *time.Time) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r, err := enrollstage.New(st, enrollstage.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return r, &now
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecordChecks refuses bad session IDs, stages and facts.
func TestRecordChecks(t *testing.T) {
	r, _ := newRecorder(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		id    string
		stage enrollstage.Stage
		facts enrollstage.Facts
	}{
		"empty id":    {"", enrollstage.SigninShown, enrollstage.Facts{}},
		"long id":     {strings.Repeat("a", 65), enrollstage.SigninShown, enrollstage.Facts{}},
		"slash id":    {"a/b", enrollstage.SigninShown, enrollstage.Facts{}},
		"stage":       {"s1", "hacked", enrollstage.Facts{}},
		"method":      {"s1", enrollstage.SignedIn, enrollstage.Facts{Method: "email"}},
		"username":    {"s1", enrollstage.SignedIn, enrollstage.Facts{Username: "a b"}},
		"serial":      {"s1", enrollstage.SignedIn, enrollstage.Facts{Serial: strings.Repeat("S", 65)}},
		"control":     {"s1", enrollstage.SignedIn, enrollstage.Facts{Model: "iPhone\n"}},
		"bad unicode": {"s1", enrollstage.SignedIn, enrollstage.Facts{OSVersion: "\xff"}},
	} {
		if err := r.Record(ctx, tc.id, tc.stage, tc.facts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	rep, err := r.Incomplete(ctx, enrollstage.Query{})
	must(t, err)
	if rep.Initiated != 0 {
		t.Fatalf("refused records wrote %+v", rep)
	}
}

// TestIncompleteReport: sessions that stopped before enrolled are listed
// with their last stage and time spent; enrolled ones only when a step
// took more than 30 minutes; counts cover the whole window.
func TestIncompleteReport(t *testing.T) {
	r, now := newRecorder(t)
	ctx := context.Background()
	step := func(id string, stage enrollstage.Stage, after time.Duration, f enrollstage.Facts) {
		t.Helper()
		*now = now.Add(after)
		must(t, r.Record(ctx, id, stage, f))
	}
	start := *now
	portal := enrollstage.Facts{Method: enrollstage.MethodPortal, Platform: "iOS", Model: "iPhone14,2", OSVersion: "18.1"}
	// quick: enrolled within minutes, not in the report.
	step("quick", enrollstage.SigninShown, 0, portal)
	step("quick", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "Ann"})
	step("quick", enrollstage.TermsAccepted, time.Minute, enrollstage.Facts{})
	step("quick", enrollstage.ProfileDownloaded, time.Minute, enrollstage.Facts{})
	step("quick", enrollstage.Enrolled, time.Minute, enrollstage.Facts{UDID: "U1", Serial: "S1"})
	// declined: stopped at the terms.
	step("declined", enrollstage.SigninShown, time.Second, portal)
	step("declined", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "bob"})
	step("declined", enrollstage.TermsDeclined, 2*time.Minute, enrollstage.Facts{})
	// slow: enrolled, but 45 minutes passed between the profile and enrollment.
	step("slow", enrollstage.SigninShown, time.Second, enrollstage.Facts{Method: enrollstage.MethodSetupAssistant, Platform: "macOS", Serial: "C02X"})
	step("slow", enrollstage.SignedIn, time.Minute, enrollstage.Facts{Username: "cy"})
	step("slow", enrollstage.ProfileDownloaded, time.Minute, enrollstage.Facts{})
	step("slow", enrollstage.Enrolled, 45*time.Minute, enrollstage.Facts{})
	// fresh: still on the sign-in page a minute ago: incomplete, not abandoned.
	step("fresh", enrollstage.SigninShown, time.Second, portal)

	rep, err := r.Incomplete(ctx, enrollstage.Query{Since: start})
	must(t, err)
	if rep.Initiated != 4 || rep.Incomplete != 2 || rep.Slow != 1 || rep.Rate != 0.5 || len(rep.Rows) != 3 || rep.Next != "" {
		t.Fatalf("report %+v", rep)
	}
	d, s, f := rep.Rows[0], rep.Rows[1], rep.Rows[2]
	if d.SessionID != "declined" || d.LastStage != "terms_declined" || d.Section != "terms" || d.Username != "bob" ||
		d.TimeSpentSeconds != 180 || d.Enrolled || !d.Abandoned || d.TookOver30Minutes || d.Model != "iPhone14,2" {
		t.Errorf("declined row %+v", d)
	}
	if s.SessionID != "slow" || !s.Enrolled || !s.TookOver30Minutes || s.SlowStage != "enrolled" || s.Abandoned ||
		s.Method != "setup-assistant" || s.Serial != "C02X" || s.TimeSpentSeconds != 47*60 {
		t.Errorf("slow row %+v", s)
	}
	if f.SessionID != "fresh" || f.Abandoned || f.LastStage != "signin_shown" || f.Section != "sign-in" {
		t.Errorf("fresh row %+v", f)
	}

	// Filters and paging.
	if rep, _ := r.Incomplete(ctx, enrollstage.Query{Since: start, Platform: "macos"}); rep.Initiated != 1 || len(rep.Rows) != 1 || rep.Rows[0].SessionID != "slow" {
		t.Errorf("macOS %+v", rep)
	}
	if rep, _ := r.Incomplete(ctx, enrollstage.Query{Since: start, Section: "terms"}); len(rep.Rows) != 1 || rep.Rows[0].SessionID != "declined" || rep.Incomplete != 2 {
		t.Errorf("terms section %+v", rep)
	}
	p1, err := r.Incomplete(ctx, enrollstage.Query{Since: start, Limit: 2})
	must(t, err)
	if len(p1.Rows) != 2 || p1.Next == "" {
		t.Fatalf("page 1 %+v", p1)
	}
	p2, err := r.Incomplete(ctx, enrollstage.Query{Since: start, Limit: 2, After: p1.Next})
	must(t, err)
	if len(p2.Rows) != 1 || p2.Rows[0].SessionID != "fresh" || p2.Next != "" || p2.Initiated != 4 {
		t.Fatalf("page 2 %+v", p2)
	}
	// The window: nothing started after now.
	if rep, _ := r.Incomplete(ctx, enrollstage.Query{Since: now.Add(time.Second)}); rep.Initiated != 0 || len(rep.Rows) != 0 {
		t.Errorf("empty window %+v", rep)
	}
	for _, q := range []enrollstage.Query{{Section: "nope"}, {After: "x"}, {After: "00000000000000000001/a b"}} {
		if _, err := r.Incomplete(ctx, q); !errors.Is(err, enrollstage.ErrInvalid) {
			t.Errorf("%+v: %v", q, err)
		}
	}
	// The "fresh" session is abandoned once 30 minutes pass.
	*now = now.Add(31 * time.Minute)
	if rep, _ := r.Incomplete(ctx, enrollstage.Query{Since: start}); !rep.Rows[2].Abandoned {
		t.Errorf("fresh after 31 minutes %+v", rep.Rows[2])
	}
}
