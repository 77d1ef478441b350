package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// runInventorySearch: SearchInventory finds by a case-insensitive part of
// the name, serial, UDID or device ID (any other field does not count),
// its start or its middle, under Unicode case folding (the Kelvin sign is
// a k, the long s an s, final sigma a sigma), in ID order, after a cursor
// and up to a limit, with text that JSON or a LIKE pattern would treat
// specially; a renamed device is found by its new name only.
func runInventorySearch(t *testing.T, open func(t *testing.T) storage.InventoryStore) {
	ctx := context.Background()
	s := open(t)
	records := []storage.DeviceInventory{
		{DeviceID: "S1", DeviceName: "Ana's iPhone", SerialNumber: "F2LXK0", UDID: "00008030-AAAA", Model: "findme"},
		{DeviceID: "S2", DeviceName: "Front desk iPad", SerialNumber: "DMPQ77", UDID: "00008030-BBBB"},
		{DeviceID: "S3", DeviceName: "R&D <Mac>", SerialNumber: "C02ZZ", UDID: "00008030-CCCC"},
		{DeviceID: "S4", DeviceName: "Ärger iPhone", SerialNumber: "X9", UDID: "00008030-DDDD"},
		{DeviceID: "ZZ-front", DeviceName: "spare"},
		{DeviceID: "S5", DeviceName: "Lab \u212Aiosk", SerialNumber: "100%_OK", UDID: "S5"},
		{DeviceID: "S6", DeviceName: "ΟΔΥΣΣΕΥΣ", SerialNumber: "nul\x00here", UDID: "S6"},
		{DeviceID: "S7", DeviceName: "Compta \\ Mac", SerialNumber: "100XXOK", UDID: "S7"},
	}
	for _, r := range records {
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
		{"f2l", "", 0, []string{"S1"}},                         // the start of a serial
		{"00008030-", "", 0, []string{"S1", "S2", "S3", "S4"}}, // UDIDs, in ID order
		{"00008030-", "", 3, []string{"S1", "S2", "S3"}},
		{"00008030-", "S3", 0, []string{"S4"}},
		{"00008030-", "S4", 0, []string{}},
		{"00008030-", "S0", 1, []string{"S1"}},  // a cursor that is no device
		{"lab \u212Aio", "", 0, []string{"S5"}}, // the Kelvin sign
		{"\u212Aiosk", "", 0, []string{"S5"}},
		{"%_ok", "", 0, []string{"S5"}}, // not a pattern: S7 has no "%_"
		{"0%", "", 0, []string{"S5"}},
		{"_", "", 0, []string{"S5"}},
		{"ς", "", 0, []string{"S6"}}, // final sigma folds with Σ
		{"οδυσσευσ", "", 0, []string{"S6"}},
		{"nul\x00h", "", 0, []string{"S6"}},
		{"l\x00", "", 0, []string{"S6"}},
		{"a \\ m", "", 0, []string{"S7"}},
		{"\\", "", 0, []string{"S7"}},
		{"", "S4", 2, []string{"S5", "S6"}},                                          // empty text: every device
		{"s", "", 0, []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "ZZ-front"}}, // every ID holds an s
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

	// Whatever the text (case variants of other byte lengths, text that is
	// not UTF-8), the answer is MatchesText's over all records.
	for _, text := range []string{"LAB KIOSK", "ſ6", "\xff", "\xef\xbf", "\uFFFD", "\xc3", "ΣΣ", "Mac>", "\x00"} {
		want := []string{}
		for i := range records {
			if records[i].MatchesText(text) {
				want = append(want, records[i].DeviceID)
			}
		}
		slices.Sort(want)
		if got := ids(text, "", 0); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("search %q = %v, want MatchesText's %v", text, got, want)
		}
	}

	// Paging a search through a cursor yields each match once, in order.
	var paged []string
	for after := ""; ; {
		page := ids("0", after, 2)
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1]
	}
	if got := fmt.Sprint(paged); got != "[S1 S2 S3 S4 S5 S7]" {
		t.Errorf("paging the search for 0 = %s", got)
	}

	// A rename: the search follows the record written, in the same write.
	if _, err := s.UpdateInventory(ctx, "S2", func(inv *storage.DeviceInventory) error { inv.DeviceName = "Lobby iPad"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := ids("front desk", "", 0); len(got) != 0 {
		t.Errorf("old name still found: %v", got)
	}
	if got := ids("LOBBY", "", 0); len(got) != 1 || got[0] != "S2" {
		t.Errorf("new name = %v", got)
	}
	// A report's inventory change is indexed too.
	if err := s.PutDeviceReport(ctx, &storage.DeviceReport{ChannelID: "S3", Kind: "DeviceInformation", CommandUUID: "c", Raw: []byte("x")},
		func(inv *storage.DeviceInventory) error { inv.SerialNumber = "NEWSERIAL"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := ids("newser", "", 0); len(got) != 1 || got[0] != "S3" {
		t.Errorf("serial from a report = %v", got)
	}
	if got := ids("c02zz", "", 0); len(got) != 0 {
		t.Errorf("old serial still found: %v", got)
	}
}
