package directory_test

import (
	"context"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/directory"
)

func TestMembershipHookAndGroupsOf(t *testing.T) {
	ctx := context.Background()
	var seen [][]string
	d := newDir(t, directory.WithMembershipHook(func(_ context.Context, ids []string) { seen = append(seen, ids) }))
	for _, u := range []string{"ann", "bob"} {
		if _, err := d.CreateUser(ctx, directory.NewUser{Username: u}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.CreateGroup(ctx, "sales", ""); err != nil {
		t.Fatal(err)
	}
	st := d.Store()
	if err := st.SetPrimaryUser(ctx, "DEV-A", "ann"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPrimaryUser(ctx, "DEV-A", "ann"); err != nil { // no change: no call
		t.Fatal(err)
	}
	if err := d.AddMembers(ctx, "sales", []string{"ann", "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AddMembers(ctx, "sales", []string{"nobody"}); err == nil { // refused: no call
		t.Fatal("unknown member added")
	}
	if g, err := d.GroupsOf(ctx, "DEV-A"); err != nil || !slices.Equal(g, []string{"sales"}) {
		t.Fatalf("GroupsOf(DEV-A) = %v, %v", g, err)
	}
	if g, err := d.GroupsOf(ctx, "DEV-NONE"); err != nil || len(g) != 0 {
		t.Fatalf("GroupsOf a device without a primary user = %v, %v", g, err)
	}
	if err := st.RemoveGroupMember(ctx, "sales", "ann"); err != nil {
		t.Fatal(err)
	}
	if err := d.AddMembers(ctx, "sales", []string{"ann"}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteGroup(ctx, "sales"); err != nil {
		t.Fatal(err)
	}
	// Bob has no device: his joining reaches only Ann's.
	want := [][]string{{"DEV-A"}, {"DEV-A"}, {"DEV-A"}, {"DEV-A"}, {"DEV-A"}}
	if !slices.EqualFunc(seen, want, slices.Equal[[]string]) {
		t.Fatalf("hook calls %v, want %v", seen, want)
	}
}
