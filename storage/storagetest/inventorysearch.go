package storagetest

import (
	"context"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// runInventorySearch: SearchInventory finds by a case-insensitive part of
// the name, serial, UDID or device ID (any other field does not count),
// in ID order, after a cursor and up to a limit, with text that JSON
// escapes too.
func runInventorySearch(t *testing.T, open func(t *testing.T) storage.InventoryStore) {
	ctx := context.Background()
	s := open(t)
	for _, r := range []storage.DeviceInventory{
		{DeviceID: "S1", DeviceName: "Ana's iPhone", SerialNumber: "F2LXK0", UDID: "00008030-AAAA", Model: "findme"},
		{DeviceID: "S2", DeviceName: "Front desk iPad", SerialNumber: "DMPQ77", UDID: "00008030-BBBB"},
		{DeviceID: "S3", DeviceName: "R&D <Mac>", SerialNumber: "C02ZZ", UDID: "00008030-CCCC"},
		{DeviceID: "S4", DeviceName: "Ärger iPhone", SerialNumber: "X9", UDID: "00008030-DDDD"},
		{DeviceID: "ZZ-front", DeviceName: "spare"},
	} {
		if _, err := s.UpdateInventory(ctx, r.DeviceID, func(inv *storage.DeviceInventory) error { *inv = r; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(text, after string, limit int) []string {
		t.Helper()
		got, err := s.SearchInventory(ctx, text, after, limit)
		if err != nil {
			t.Fatalf("SearchInventory(%q): %v", text, err)
		}
		out := []string{}
		for _, g := range got {
			out = append(out, g.DeviceID)
		}
		return out
	}
	for _, c := range []struct {
		text, after string
		limit       int
		want        []string
	}{
		{"IPHONE", "", 0, []string{"S1", "S4"}},
		{"lxk0", "", 0, []string{"S1"}},
		{"bbbb", "", 0, []string{"S2"}},
		{"front", "", 0, []string{"S2", "ZZ-front"}},
		{"r&d <m", "", 0, []string{"S3"}},
		{"ärger", "", 0, []string{"S4"}},
		{"findme", "", 0, []string{}}, // the model is not searched
		{"00008030", "S1", 2, []string{"S2", "S3"}},
		{"nothing", "", 10, []string{}},
	} {
		got := ids(c.text, c.after, c.limit)
		if len(got) != len(c.want) {
			t.Errorf("search %q after %q limit %d = %v, want %v", c.text, c.after, c.limit, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("search %q after %q limit %d = %v, want %v", c.text, c.after, c.limit, got, c.want)
				break
			}
		}
	}
}
