package terms_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func newService(t *testing.T) (*terms.Service, *bolt.Store, *time.Time) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	svc, err := terms.New(st, terms.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, &now
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func names(ds []storage.TermsDocument) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return strings.Join(out, ",")
}

// TestCreateChecks refuses bad documents with ErrInvalid (or ErrNotFound
// for an unknown group), writing nothing.
func TestCreateChecks(t *testing.T) {
	ctx := context.Background()
	svc, st, _ := newService(t)
	must(t, st.CreateGroup(ctx, &storage.Group{Name: "sales"}))
	ok := terms.NewDocument{Name: "aup", Title: "Acceptable use", Text: "Be nice.", AllUsers: true}
	for name, mod := range map[string]func(d *terms.NewDocument){
		"bad name":        func(d *terms.NewDocument) { d.Name = "a b" },
		"long name":       func(d *terms.NewDocument) { d.Name = strings.Repeat("a", 65) },
		"reserved":        func(d *terms.NewDocument) { d.Name = "acceptances" },
		"reserved csv":    func(d *terms.NewDocument) { d.Name = "Acceptances.CSV" },
		"no title":        func(d *terms.NewDocument) { d.Title = " " },
		"two-line title":  func(d *terms.NewDocument) { d.Title = "a\nb" },
		"no text":         func(d *terms.NewDocument) { d.Text = "" },
		"text too long":   func(d *terms.NewDocument) { d.Text = strings.Repeat("x", terms.MaxText+1) },
		"NUL in text":     func(d *terms.NewDocument) { d.Text = "a\x00b" },
		"bad UTF-8":       func(d *terms.NewDocument) { d.Text = "\xff" },
		"long summary":    func(d *terms.NewDocument) { d.Summary = strings.Repeat("s", terms.MaxSummary+1) },
		"no assignment":   func(d *terms.NewDocument) { d.AllUsers = false },
		"both":            func(d *terms.NewDocument) { d.Groups = []string{"sales"} },
		"bad group name":  func(d *terms.NewDocument) { d.AllUsers, d.Groups = false, []string{"a/b"} },
		"too many groups": func(d *terms.NewDocument) { d.AllUsers, d.Groups = false, make([]string, terms.MaxGroups+1) },
	} {
		d := ok
		mod(&d)
		if _, err := svc.Create(ctx, d); !errors.Is(err, terms.ErrInvalid) && !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("%s: %v, want a refusal of the input", name, err)
		}
	}
	d := ok
	d.AllUsers, d.Groups = false, []string{"nosuch"}
	if _, err := svc.Create(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if ds, _ := st.ListTerms(ctx, "", 0); len(ds) != 0 {
		t.Fatalf("refused creates wrote %s", names(ds))
	}
	// The largest text allowed is accepted.
	d = ok
	d.Text = strings.Repeat("x", terms.MaxText)
	if _, err := svc.Create(ctx, d); err != nil {
		t.Fatalf("256 KiB text: %v", err)
	}
}

// TestPendingAndAccept: assignment by all users or group, one acceptance
// per user whatever the devices, and re-acceptance only for versions that
// ask for it.
func TestPendingAndAccept(t *testing.T) {
	ctx := context.Background()
	svc, st, now := newService(t)
	must(t, st.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann"}, {Username: "bob"}}))
	must(t, st.CreateGroup(ctx, &storage.Group{Name: "sales"}))
	must(t, st.AddGroupMembers(ctx, "sales", []string{"ann"}))

	if p, err := svc.Pending(ctx, "ann"); err != nil || len(p) != 0 {
		t.Fatalf("no documents: %v, %v", p, err)
	}
	_, err := svc.Create(ctx, terms.NewDocument{Name: "aup", Title: "Acceptable use", Text: "v1", AllUsers: true})
	must(t, err)
	_, err = svc.Create(ctx, terms.NewDocument{Name: "sales-nda", Title: "Sales NDA", Text: "nda", Groups: []string{"Sales"}})
	must(t, err)

	pending := func(user string) string {
		t.Helper()
		p, err := svc.Pending(ctx, user)
		must(t, err)
		return names(p)
	}
	if got := pending("ann"); got != "aup,sales-nda" {
		t.Fatalf("ann pending %q", got)
	}
	if got := pending("bob"); got != "aup" {
		t.Fatalf("bob pending %q", got)
	}
	must(t, svc.Accept(ctx, "Ann", "aup", 1, terms.Meta{Address: "192.0.2.1", UserAgent: "Mozilla/5.0 (iPhone)\r\nX: y"}))
	if got := pending("ann"); got != "sales-nda" {
		t.Fatalf("ann after accepting aup: %q", got)
	}
	// A second device of ann's: nothing more to accept for aup.
	must(t, svc.Accept(ctx, "ann", "sales-nda", 1, terms.Meta{}))
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after accepting both: %q", got)
	}

	// A typo fix (no re-acceptance) asks nothing of anyone who accepted.
	*now = now.Add(time.Hour)
	fix := "v1, fixed"
	d, err := svc.Update(ctx, "aup", terms.NewVersion{Text: &fix})
	must(t, err)
	if d.Version != 2 || d.ReacceptFrom != 1 || d.Title != "Acceptable use" || !d.AllUsers {
		t.Fatalf("version 2: %+v", d)
	}
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after a typo fix: %q", got)
	}
	if got := pending("bob"); got != "aup" {
		t.Fatalf("bob after a typo fix: %q", got)
	}
	// A version that requires re-acceptance asks again.
	v3 := "v3: new rules"
	d, err = svc.Update(ctx, "aup", terms.NewVersion{Text: &v3, RequireReacceptance: true})
	must(t, err)
	if d.Version != 3 || d.ReacceptFrom != 3 {
		t.Fatalf("version 3: %+v", d)
	}
	if got := pending("ann"); got != "aup" {
		t.Fatalf("ann after a re-acceptance version: %q", got)
	}
	// Accepting an old version does not clear it.
	must(t, svc.Accept(ctx, "ann", "aup", 2, terms.Meta{}))
	if got := pending("ann"); got != "aup" {
		t.Fatalf("ann after accepting v2: %q", got)
	}
	must(t, svc.Accept(ctx, "ann", "aup", 3, terms.Meta{}))
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after accepting v3: %q", got)
	}
	// Then a typo fix of v3 still asks nothing.
	_, err = svc.Update(ctx, "aup", terms.NewVersion{Text: &fix})
	must(t, err)
	if got := pending("ann"); got != "" {
		t.Fatalf("ann after v4 typo fix: %q", got)
	}

	if err := svc.Accept(ctx, "ann", "aup", 9, terms.Meta{}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("a version never made: %v", err)
	}
	if err := svc.Accept(ctx, "nobody", "aup", 1, terms.Meta{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := svc.Accept(ctx, "ann", "nope", 1, terms.Meta{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown document: %v", err)
	}

	// The report: every acceptance, whether it is of the latest version,
	// with request facts cleaned of control characters.
	rows, next, err := svc.Report(ctx, storage.TermsAcceptanceFilter{Username: "Ann"}, "", 2)
	must(t, err)
	if len(rows) != 2 || next == "" || rows[0].Document != "aup" || rows[0].Version != 1 || rows[0].AcceptedLatest ||
		rows[0].CurrentVersion != 4 || rows[0].Address != "192.0.2.1" || rows[0].UserAgent != "Mozilla/5.0 (iPhone)X: y" {
		t.Fatalf("page 1: %+v next %q", rows, next)
	}
	rows, next, err = svc.Report(ctx, storage.TermsAcceptanceFilter{Username: "ann"}, next, 2)
	must(t, err)
	if len(rows) != 2 || next != "" || rows[0].Version != 3 || rows[1].Document != "sales-nda" || !rows[1].AcceptedLatest {
		t.Fatalf("page 2: %+v next %q", rows, next)
	}
	if _, _, err := svc.Report(ctx, storage.TermsAcceptanceFilter{Document: "nope"}, "", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("report of an unknown document: %v", err)
	}
	for _, bad := range []string{"x", "a/b/c", "a/b/12345678901", "A b/c/0000000001", "a/b/000000000x"} {
		if _, _, err := svc.Report(ctx, storage.TermsAcceptanceFilter{}, bad, 0); !errors.Is(err, terms.ErrInvalid) {
			t.Errorf("cursor %q: %v", bad, err)
		}
	}
}
