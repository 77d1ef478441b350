package category_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func TestChangeHook(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	var seen [][]string
	svc, err := category.New(st, category.WithChangeHook(func(_ context.Context, ids []string) { seen = append(seen, ids) }))
	must(t, err)
	must(t, st.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann"}}))
	must(t, st.CreateGroup(ctx, &storage.Group{Name: "staff"}))
	must(t, st.SetPrimaryUser(ctx, "DEV-A", "ann"))
	_, err = svc.Create(ctx, category.NewCategory{Name: "kiosk", Group: "staff"})
	must(t, err)
	_, err = svc.Create(ctx, category.NewCategory{Name: "lab"})
	must(t, err)

	_, err = svc.SetDevice(ctx, "DEV-A", "kiosk") // the category, then ann joins staff
	must(t, err)
	_, err = svc.SetDevice(ctx, "DEV-A", "kiosk") // no change of category; the join again
	must(t, err)
	if _, err := svc.SetDevice(ctx, "DEV-A", "nosuch"); err == nil { // refused: no call
		t.Fatal("unknown category set")
	}
	_, err = svc.SetDevice(ctx, "DEV-B", "lab")
	must(t, err)
	must(t, svc.Delete(ctx, "lab")) // DEV-B leaves it
	want := [][]string{{"DEV-A"}, {"DEV-A"}, {"DEV-A"}, {"DEV-B"}, {"DEV-B"}}
	if !slices.EqualFunc(seen, want, slices.Equal[[]string]) {
		t.Fatalf("hook calls %v, want %v", seen, want)
	}
}
