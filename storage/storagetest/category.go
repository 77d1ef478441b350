package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// runCategories is the conformance suite of storage.CategoryStore.
func runCategories(t *testing.T, newStore func(t *testing.T) storage.CategoryStore) {
	ctx := context.Background()
	cat := func(name string) *storage.Category {
		return &storage.Category{Name: name, Description: "About " + name, Group: "g-" + name, CreatedAt: t0, UpdatedAt: t0}
	}
	names := func(cs []storage.Category) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}

	t.Run("CreateReadList", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Category(ctx, "kiosk"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing category: %v", err)
		}
		for _, n := range []string{"lab", "kiosk", "staff"} {
			must(t, s.CreateCategory(ctx, cat(n)))
		}
		if err := s.CreateCategory(ctx, cat("kiosk")); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("taken name: %v", err)
		}
		got, err := s.Category(ctx, "kiosk")
		must(t, err)
		if got.Description != "About kiosk" || got.Group != "g-kiosk" || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
			t.Fatalf("read back %+v", got)
		}
		all, err := s.ListCategories(ctx, "", 0)
		must(t, err)
		if n := names(all); !slices.Equal(n, []string{"kiosk", "lab", "staff"}) {
			t.Fatalf("list: %v", n)
		}
		page, err := s.ListCategories(ctx, "kiosk", 1)
		must(t, err)
		if n := names(page); !slices.Equal(n, []string{"lab"}) {
			t.Fatalf("page after kiosk: %v", n)
		}
	})

	t.Run("Update", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.UpdateCategory(ctx, "kiosk", func(*storage.Category) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update of a missing category: %v", err)
		}
		must(t, s.CreateCategory(ctx, cat("kiosk")))
		out, err := s.UpdateCategory(ctx, "kiosk", func(c *storage.Category) error {
			c.Name = "renamed" // ignored: the name is the key
			c.Group = ""
			c.Description = "Front desk"
			return nil
		})
		must(t, err)
		if out.Name != "kiosk" || out.Group != "" || out.Description != "Front desk" {
			t.Fatalf("returned %+v", out)
		}
		got, err := s.Category(ctx, "kiosk")
		must(t, err)
		if got.Group != "" || got.Description != "Front desk" {
			t.Fatalf("stored %+v", got)
		}
		if _, err := s.Category(ctx, "renamed"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update renamed the category: %v", err)
		}
		boom := errors.New("boom")
		if _, err := s.UpdateCategory(ctx, "kiosk", func(c *storage.Category) error { c.Description = "x"; return boom }); !errors.Is(err, boom) {
			t.Fatalf("failing fn: %v", err)
		}
		if got, _ := s.Category(ctx, "kiosk"); got.Description != "Front desk" {
			t.Fatalf("a failed update wrote %+v", got)
		}
	})

	t.Run("Devices", func(t *testing.T) {
		s := newStore(t)
		if c, err := s.DeviceCategory(ctx, "D1"); err != nil || c != "" {
			t.Fatalf("device without category = %q, %v", c, err)
		}
		if err := s.SetDeviceCategory(ctx, "D1", "kiosk"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown category: %v", err)
		}
		if c, _ := s.DeviceCategory(ctx, "D1"); c != "" {
			t.Fatalf("a refused set wrote %q", c)
		}
		if _, err := s.CategoryDevices(ctx, "kiosk", "", 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("devices of an unknown category: %v", err)
		}
		must(t, s.CreateCategory(ctx, cat("kiosk")))
		must(t, s.CreateCategory(ctx, cat("lab")))
		for _, d := range []string{"D3", "D1", "D2"} {
			must(t, s.SetDeviceCategory(ctx, d, "kiosk"))
		}
		must(t, s.SetDeviceCategory(ctx, "D1", "kiosk")) // again: no change
		devs, err := s.CategoryDevices(ctx, "kiosk", "", 0)
		must(t, err)
		if !slices.Equal(devs, []string{"D1", "D2", "D3"}) {
			t.Fatalf("kiosk devices: %v", devs)
		}
		page, err := s.CategoryDevices(ctx, "kiosk", "D1", 1)
		must(t, err)
		if !slices.Equal(page, []string{"D2"}) {
			t.Fatalf("page after D1: %v", page)
		}
		// Moving a device takes it out of its old category.
		must(t, s.SetDeviceCategory(ctx, "D2", "lab"))
		if c, _ := s.DeviceCategory(ctx, "D2"); c != "lab" {
			t.Fatalf("moved device is in %q", c)
		}
		if devs, _ := s.CategoryDevices(ctx, "kiosk", "", 0); !slices.Equal(devs, []string{"D1", "D3"}) {
			t.Fatalf("kiosk after the move: %v", devs)
		}
		if devs, _ := s.CategoryDevices(ctx, "lab", "", 0); !slices.Equal(devs, []string{"D2"}) {
			t.Fatalf("lab after the move: %v", devs)
		}
		// "" clears.
		must(t, s.SetDeviceCategory(ctx, "D3", ""))
		must(t, s.SetDeviceCategory(ctx, "D9", "")) // clearing a device with none is no error
		if c, _ := s.DeviceCategory(ctx, "D3"); c != "" {
			t.Fatalf("cleared device is in %q", c)
		}
		if devs, _ := s.CategoryDevices(ctx, "kiosk", "", 0); !slices.Equal(devs, []string{"D1"}) {
			t.Fatalf("kiosk after clearing D3: %v", devs)
		}
		// Deleting a category leaves its devices in none.
		must(t, s.DeleteCategory(ctx, "kiosk"))
		if err := s.DeleteCategory(ctx, "kiosk"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if c, _ := s.DeviceCategory(ctx, "D1"); c != "" {
			t.Fatalf("device of a deleted category is in %q", c)
		}
		// A category made again under the old name starts empty.
		must(t, s.CreateCategory(ctx, cat("kiosk")))
		if devs, err := s.CategoryDevices(ctx, "kiosk", "", 0); err != nil || len(devs) != 0 {
			t.Fatalf("recreated kiosk holds %v, %v", devs, err)
		}
		if c, _ := s.DeviceCategory(ctx, "D2"); c != "lab" {
			t.Fatalf("deleting kiosk moved D2 out of lab: %q", c)
		}
	})
}
