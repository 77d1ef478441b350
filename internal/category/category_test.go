package category_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

var _ scope.CategoryResolver = (*category.Service)(nil)

func newService(t *testing.T) (*category.Service, *bolt.Store) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := category.New(st)
	if err != nil {
		t.Fatal(err)
	}
	return svc, st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCreateChecks refuses bad names, descriptions and unknown groups,
// writing nothing, and normalises names.
func TestCreateChecks(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	for _, nc := range []category.NewCategory{
		{Name: ""}, {Name: "bad name"}, {Name: strings.Repeat("a", 65)}, {Name: "a/b"},
		{Name: "ok", Description: strings.Repeat("x", category.MaxDescription+1)},
		{Name: "ok", Description: "two\nlines"},
		{Name: "ok", Group: "Bad Group"},
	} {
		if _, err := svc.Create(ctx, nc); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Create(%+v) = %v, want a refusal of the input", nc, err)
		}
	}
	if _, err := svc.Create(ctx, category.NewCategory{Name: "ok", Group: "nosuch"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown group: %v", err)
	}
	if cs, _ := st.ListCategories(ctx, "", 0); len(cs) != 0 {
		t.Fatalf("refused creates wrote %+v", cs)
	}
	c, err := svc.Create(ctx, category.NewCategory{Name: " Kiosk ", Description: "Front desk"})
	must(t, err)
	if c.Name != "kiosk" || c.CreatedAt.IsZero() {
		t.Fatalf("created %+v", c)
	}
	if _, err := svc.Create(ctx, category.NewCategory{Name: "KIOSK"}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("same name again: %v", err)
	}
}

// TestJoinGroup: putting a device with a primary user in a category with a
// group adds that user to the group; the category set on a userless device
// joins once the device gets a user; changing category never removes.
func TestJoinGroup(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	must(t, st.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann"}, {Username: "bob"}}))
	must(t, st.CreateGroup(ctx, &storage.Group{Name: "kiosk-staff"}))
	_, err := svc.Create(ctx, category.NewCategory{Name: "kiosk", Group: "Kiosk-Staff"})
	must(t, err)
	_, err = svc.Create(ctx, category.NewCategory{Name: "lab"})
	must(t, err)

	must(t, st.SetPrimaryUser(ctx, "D1", "ann"))
	a, err := svc.SetDevice(ctx, "D1", "Kiosk")
	must(t, err)
	if a.Category != "kiosk" || a.Joined != "kiosk-staff" {
		t.Fatalf("assignment %+v", a)
	}
	if m, _ := st.GroupMembers(ctx, "kiosk-staff", "", 0); !slices.Equal(m, []string{"ann"}) {
		t.Fatalf("members after the join: %v", m)
	}

	// A userless device joins nothing until it has a user.
	a, err = svc.SetDevice(ctx, "D2", "kiosk")
	must(t, err)
	if a.Joined != "" {
		t.Fatalf("userless device joined %q", a.Joined)
	}
	must(t, st.SetPrimaryUser(ctx, "D2", "bob"))
	g, err := svc.Join(ctx, "D2")
	must(t, err)
	if m, _ := st.GroupMembers(ctx, "kiosk-staff", "", 0); g != "kiosk-staff" || !slices.Equal(m, []string{"ann", "bob"}) {
		t.Fatalf("join after the user was set: %q, members %v", g, m)
	}

	// Moving or clearing never removes anyone.
	_, err = svc.SetDevice(ctx, "D1", "lab")
	must(t, err)
	_, err = svc.SetDevice(ctx, "D2", "")
	must(t, err)
	if m, _ := st.GroupMembers(ctx, "kiosk-staff", "", 0); !slices.Equal(m, []string{"ann", "bob"}) {
		t.Fatalf("members after moving: %v", m)
	}
	if got, _ := svc.CategoriesOf(ctx, "D1"); !slices.Equal(got, []string{"lab"}) {
		t.Fatalf("CategoriesOf(D1) = %v", got)
	}
	if got, _ := svc.CategoriesOf(ctx, "D2"); len(got) != 0 {
		t.Fatalf("CategoriesOf(D2) = %v", got)
	}

	// A deleted group is no error: the device is in the category, no one joins.
	must(t, st.DeleteGroup(ctx, "kiosk-staff"))
	a, err = svc.SetDevice(ctx, "D1", "kiosk")
	must(t, err)
	if a.Joined != "" {
		t.Fatalf("joined a deleted group: %+v", a)
	}
	if _, err := svc.SetDevice(ctx, "D1", "nosuch"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown category: %v", err)
	}
	if c, _ := st.DeviceCategory(ctx, "D1"); c != "kiosk" {
		t.Fatalf("a refused set changed the category to %q", c)
	}
}

// TestUpdate changes the description and the group, keeping the rest.
func TestUpdate(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	must(t, st.CreateGroup(ctx, &storage.Group{Name: "staff"}))
	c, err := svc.Create(ctx, category.NewCategory{Name: "kiosk", Description: "Front desk"})
	must(t, err)
	group := "staff"
	u, err := svc.Update(ctx, "kiosk", category.Change{Group: &group})
	must(t, err)
	if u.Group != "staff" || u.Description != "Front desk" || !u.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("updated %+v", u)
	}
	bad := "nosuch"
	if _, err := svc.Update(ctx, "kiosk", category.Change{Group: &bad}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	none := ""
	u, err = svc.Update(ctx, "kiosk", category.Change{Group: &none})
	must(t, err)
	if u.Group != "" {
		t.Fatalf("group not removed: %+v", u)
	}
	if _, err := svc.Update(ctx, "nosuch", category.Change{}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown category: %v", err)
	}
}
