package storagetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// termsStore is the terms role with the directory its acceptances name.
type termsStore interface {
	storage.TermsStore
	storage.DirectoryStore
}

// runTerms is the conformance suite of storage.TermsStore (its stores also
// keep the directory, whose users acceptances name).
func runTerms(t *testing.T, newStore func(t *testing.T) termsStore) {
	ctx := context.Background()
	doc := func(name string, v int) *storage.TermsDocument {
		return &storage.TermsDocument{Name: name, Title: "Terms " + name, Summary: "Summary", Text: strings.Repeat("Text. ", 10),
			Version: v, ReacceptFrom: 1, AllUsers: true, CreatedAt: t0}
	}
	users := func(s termsStore, names ...string) {
		t.Helper()
		var us []storage.DirectoryUser
		for _, n := range names {
			us = append(us, storage.DirectoryUser{Username: n, CreatedAt: t0})
		}
		must(t, s.CreateUsers(ctx, us))
	}
	accepted := func(as []storage.TermsAcceptance) string {
		var b strings.Builder
		for _, a := range as {
			b.WriteString(a.Cursor() + " ")
		}
		return strings.TrimSpace(b.String())
	}

	t.Run("Versions", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Terms(ctx, "aup"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing document: %v", err)
		}
		if err := s.PutTermsVersion(ctx, doc("aup", 2)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("new version of a missing document: %v", err)
		}
		must(t, s.CreateTerms(ctx, doc("aup", 1)))
		if err := s.CreateTerms(ctx, doc("aup", 1)); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("taken name: %v", err)
		}
		must(t, s.CreateTerms(ctx, doc("byod", 1)))
		v2 := doc("aup", 2)
		v2.Text, v2.RequireReacceptance, v2.ReacceptFrom, v2.AllUsers, v2.Groups = "New text", true, 2, false, []string{"sales", "staff"}
		must(t, s.PutTermsVersion(ctx, v2))
		// Skipping or repeating a version is refused, nothing written.
		for _, v := range []int{2, 4} {
			if err := s.PutTermsVersion(ctx, doc("aup", v)); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("version %d after 2: %v", v, err)
			}
		}
		cur, err := s.Terms(ctx, "aup")
		must(t, err)
		if cur.Version != 2 || cur.Text != "New text" || !cur.RequireReacceptance || cur.ReacceptFrom != 2 || cur.AllUsers ||
			strings.Join(cur.Groups, ",") != "sales,staff" || !cur.CreatedAt.Equal(t0) {
			t.Fatalf("current %+v", cur)
		}
		old, err := s.TermsVersion(ctx, "aup", 1)
		must(t, err)
		if old.Version != 1 || old.Text != doc("aup", 1).Text || !old.AllUsers {
			t.Fatalf("version 1 %+v", old)
		}
		if _, err := s.TermsVersion(ctx, "aup", 3); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("version 3: %v", err)
		}
		vs, err := s.ListTermsVersions(ctx, "aup")
		must(t, err)
		if len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 {
			t.Fatalf("versions %+v", vs)
		}
		if _, err := s.ListTermsVersions(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("versions of a missing document: %v", err)
		}
		list, err := s.ListTerms(ctx, "", 0)
		must(t, err)
		if len(list) != 2 || list[0].Name != "aup" || list[0].Version != 2 || list[1].Name != "byod" {
			t.Fatalf("list %+v", list)
		}
		if page, _ := s.ListTerms(ctx, "aup", 1); len(page) != 1 || page[0].Name != "byod" {
			t.Fatalf("page after aup %+v", page)
		}
	})

	t.Run("Acceptances", func(t *testing.T) {
		s := newStore(t)
		users(s, "ann", "bob")
		must(t, s.CreateTerms(ctx, doc("aup", 1)))
		must(t, s.CreateTerms(ctx, doc("byod", 1)))
		acc := func(d, u string, v int) *storage.TermsAcceptance {
			return &storage.TermsAcceptance{Document: d, Username: u, Version: v, AcceptedAt: t0, Address: "192.0.2.1", UserAgent: "Safari"}
		}
		if err := s.AcceptTerms(ctx, acc("nope", "ann", 1)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown document: %v", err)
		}
		if err := s.AcceptTerms(ctx, acc("aup", "nobody", 1)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		for _, v := range []int{0, 2} {
			if err := s.AcceptTerms(ctx, acc("aup", "ann", v)); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("version %d of a document at 1: %v", v, err)
			}
		}
		if all, _ := s.ListTermsAcceptances(ctx, storage.TermsAcceptanceFilter{}, "", 0); len(all) != 0 {
			t.Fatalf("refused acceptances wrote %+v", all)
		}
		must(t, s.AcceptTerms(ctx, acc("aup", "bob", 1)))
		must(t, s.AcceptTerms(ctx, acc("aup", "ann", 1)))
		again := acc("aup", "ann", 1)
		again.AcceptedAt, again.Address = t0.Add(1), "198.51.100.7"
		must(t, s.AcceptTerms(ctx, again)) // no change: the first stands
		must(t, s.PutTermsVersion(ctx, doc("aup", 2)))
		must(t, s.AcceptTerms(ctx, acc("aup", "ann", 2)))
		must(t, s.AcceptTerms(ctx, acc("byod", "ann", 1)))

		all, err := s.ListTermsAcceptances(ctx, storage.TermsAcceptanceFilter{}, "", 0)
		must(t, err)
		if got, want := accepted(all), "aup/ann/0000000001 aup/ann/0000000002 aup/bob/0000000001 byod/ann/0000000001"; got != want {
			t.Fatalf("all acceptances\n got %s\nwant %s", got, want)
		}
		if a := all[0]; !a.AcceptedAt.Equal(t0) || a.Address != "192.0.2.1" || a.UserAgent != "Safari" {
			t.Fatalf("first acceptance replaced: %+v", a)
		}
		for _, tc := range []struct {
			f     storage.TermsAcceptanceFilter
			after string
			limit int
			want  string
		}{
			{storage.TermsAcceptanceFilter{Username: "ann"}, "", 0, "aup/ann/0000000001 aup/ann/0000000002 byod/ann/0000000001"},
			{storage.TermsAcceptanceFilter{Document: "aup"}, "", 0, "aup/ann/0000000001 aup/ann/0000000002 aup/bob/0000000001"},
			{storage.TermsAcceptanceFilter{Document: "aup", Username: "bob"}, "", 0, "aup/bob/0000000001"},
			{storage.TermsAcceptanceFilter{}, "aup/ann/0000000002", 2, "aup/bob/0000000001 byod/ann/0000000001"},
			{storage.TermsAcceptanceFilter{Username: "ann"}, "aup/ann/0000000001", 1, "aup/ann/0000000002"},
			{storage.TermsAcceptanceFilter{Document: "byod"}, "aup/bob/0000000001", 0, "byod/ann/0000000001"},
			{storage.TermsAcceptanceFilter{Username: "cy"}, "", 0, ""},
		} {
			got, err := s.ListTermsAcceptances(ctx, tc.f, tc.after, tc.limit)
			must(t, err)
			if accepted(got) != tc.want {
				t.Errorf("%+v after %q limit %d:\n got %s\nwant %s", tc.f, tc.after, tc.limit, accepted(got), tc.want)
			}
		}

		// Deleting a document takes its history and acceptances with it.
		must(t, s.DeleteTerms(ctx, "aup"))
		if err := s.DeleteTerms(ctx, "aup"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.TermsVersion(ctx, "aup", 1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("history kept: %v", err)
		}
		must(t, s.CreateTerms(ctx, doc("aup", 1)))
		for _, f := range []storage.TermsAcceptanceFilter{{}, {Username: "ann"}, {Document: "aup"}} {
			got, _ := s.ListTermsAcceptances(ctx, f, "", 0)
			if accepted(got) != "byod/ann/0000000001" && !(f.Document == "aup" && len(got) == 0) {
				t.Errorf("after delete and re-create, %+v: %s", f, accepted(got))
			}
		}
	})
}
