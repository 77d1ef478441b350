package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runDeclarations checks the DeclarationStore contracts.
func runDeclarations(t *testing.T, open func(t *testing.T) storage.DeclarationStore) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	decl := func(id, token string) *storage.StoredDeclaration {
		return &storage.StoredDeclaration{Identifier: id, Type: "com.apple.configuration.softwareupdate.enforcement.specific",
			Payload: json.RawMessage(`{"TargetOSVersion":"26.1"}`), ServerToken: token, UpdatedAt: at}
	}
	t.Run("DeclarationsAndSets", func(t *testing.T) {
		s := open(t)
		if _, err := s.Declaration(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("absent declaration: %v", err)
		}
		for _, d := range []*storage.StoredDeclaration{decl("b", "t1"), decl("a", "t1"), decl("a", "t2")} {
			if err := s.PutDeclaration(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.Declarations(ctx)
		if err != nil || len(all) != 2 || all[0].Identifier != "a" || all[0].ServerToken != "t2" || string(all[0].Payload) != `{"TargetOSVersion":"26.1"}` {
			t.Fatalf("declarations = %+v, %v", all, err)
		}
		if err := s.PutDeclarationSet(ctx, &storage.DeclarationSet{Name: "x", Declarations: []string{"a", "missing"}}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("set naming a missing declaration: %v", err)
		}
		if _, err := s.DeclarationSet(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused set was stored: %v", err)
		}
		set := &storage.DeclarationSet{Name: "x", Declarations: []string{"a"}, Channels: []string{"UDID-1"},
			Scope: json.RawMessage(`{"categories":["lab"]}`), UpdatedAt: at}
		if err := s.PutDeclarationSet(ctx, set); err != nil {
			t.Fatal(err)
		}
		got, err := s.DeclarationSet(ctx, "x")
		if err != nil || len(got.Channels) != 1 || got.Channels[0] != "UDID-1" || !got.UpdatedAt.Equal(at) ||
			!jsonEqual(got.Scope, set.Scope) {
			t.Fatalf("set = %+v, %v", got, err)
		}
		if err := s.DeleteDeclaration(ctx, "a"); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("delete of a declaration in a set: %v", err)
		}
		if err := s.DeleteDeclaration(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDeclaration(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := s.DeleteDeclarationSet(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDeclarationSet(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second set delete: %v", err)
		}
		if sets, err := s.DeclarationSets(ctx); err != nil || len(sets) != 0 {
			t.Fatalf("sets after delete = %v, %v", sets, err)
		}
		if err := s.DeleteDeclaration(ctx, "a"); err != nil {
			t.Fatalf("delete once no set names it: %v", err)
		}
	})
	t.Run("Status", func(t *testing.T) {
		s := open(t)
		if _, err := s.DDMStatus(ctx, "UDID-1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("absent status: %v", err)
		}
		for i := range storage.MaxDDMRawReports + 3 {
			err := s.UpdateDDMStatus(ctx, "UDID-1", func(st *storage.DDMStatus) error {
				if st.Items == nil {
					st.Items = map[string]json.RawMessage{}
				}
				st.Items[fmt.Sprintf("item.%d", i)] = json.RawMessage(`true`)
				st.Raw = append(st.Raw, storage.RawDDMReport{At: at, Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		st, err := s.DDMStatus(ctx, "UDID-1")
		if err != nil || len(st.Items) != storage.MaxDDMRawReports+3 || len(st.Raw) != storage.MaxDDMRawReports {
			t.Fatalf("status = %+v, %v", st, err)
		}
		if last := string(st.Raw[len(st.Raw)-1].Body); last != fmt.Sprintf(`{"n":%d}`, storage.MaxDDMRawReports+2) {
			t.Fatalf("newest raw report = %s", last)
		}
		// A failing fn writes nothing.
		boom := errors.New("boom")
		if err := s.UpdateDDMStatus(ctx, "UDID-2", func(*storage.DDMStatus) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("fn error = %v", err)
		}
		all, err := s.DDMStatuses(ctx)
		if err != nil || len(all) != 1 || all[0].Channel != "UDID-1" || all[0].Raw != nil {
			t.Fatalf("statuses = %+v, %v", all, err)
		}
	})
}

// jsonEqual compares two JSON documents by value (PostgreSQL's jsonb may
// respace them).
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
