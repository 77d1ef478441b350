package inventory

import (
	"context"
	"slices"
	"testing"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/storage"
)

func TestInventoryFilters(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	yes, no := true, false
	for _, r := range []storage.DeviceInventory{
		{DeviceID: "A1", Platform: IOS, ProductName: "iPhone15,3", ModelName: "iPhone", Model: "MQ9T3", OSVersion: "17.5.1", Supervised: &yes, Ownership: storage.Corporate},
		{DeviceID: "A2", Platform: IOS, ProductName: "iPhone14,2", ModelName: "iPhone", OSVersion: "17.50", Supervised: &no, Ownership: storage.Personal},
		{DeviceID: "A3", Platform: IPadOS, ProductName: "iPad13,16", ModelName: "iPad Air", OSVersion: "18.1", Ownership: storage.Personal},
		{DeviceID: "A4", Platform: MacOS, ProductName: "Mac14,9", ModelName: "MacBook Pro", OSVersion: "14.6.1", Supervised: &yes, Ownership: storage.Corporate},
		{DeviceID: "A5", Platform: IOS, ProductName: "iPhone15,3", ModelName: "iPhone", OSVersion: "17", Supervised: &yes, Ownership: storage.Corporate,
			DeviceName: "Ana's iPhone", SerialNumber: "F2LXK0ABCD"},
	} {
		if _, err := h.store.UpdateInventory(ctx, r.DeviceID, func(inv *storage.DeviceInventory) error { *inv = r; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"A1", "A2", "A3", "A4", "A5"}},
		{"platform=ios", []string{"A1", "A2", "A5"}},
		{"q=ANA%27S", []string{"A5"}},
		{"q=lxk0", []string{"A5"}},
		{"q=a3", []string{"A3"}},
		{"q=nobody", nil},
		{"platform=iPadOS", []string{"A3"}},
		{"model=iphone15,3", []string{"A1", "A5"}},
		{"model=MacBook%20Pro", []string{"A4"}},
		{"model=MQ9T3", []string{"A1"}},
		{"os_version=17", []string{"A1", "A2", "A5"}},
		{"os_version=17.5", []string{"A1"}},
		{"os_version=17.5.1", []string{"A1"}},
		{"supervised=true", []string{"A1", "A4", "A5"}},
		{"supervised=false", []string{"A2"}},
		{"ownership=personal", []string{"A2", "A3"}},
		{"ownership=corporate&platform=iOS&supervised=true", []string{"A1", "A5"}},
		{"platform=tvOS", []string{}},
	} {
		var out struct {
			Devices []storage.DeviceInventory
			Next    string
		}
		if code := h.api("GET", "/v1/inventory?"+c.query, nil, &out); code != 200 {
			t.Errorf("%s: %d", c.query, code)
			continue
		}
		got := []string{}
		for _, d := range out.Devices {
			got = append(got, d.DeviceID)
		}
		if !slices.Equal(got, c.want) || out.Next != "" {
			t.Errorf("%s: got %v next %q, want %v", c.query, got, out.Next, c.want)
		}
	}

	// Pages: a limit of 2 over the three corporate devices.
	var page struct {
		Devices []storage.DeviceInventory
		Next    string
	}
	h.api("GET", "/v1/inventory?ownership=corporate&limit=2", nil, &page)
	if len(page.Devices) != 2 || page.Next != "A4" {
		t.Fatalf("first page: %v next %q", page.Devices, page.Next)
	}
	h.api("GET", "/v1/inventory?ownership=corporate&limit=2&after="+page.Next, nil, &page)
	if len(page.Devices) != 1 || page.Devices[0].DeviceID != "A5" || page.Next != "" {
		t.Fatalf("second page: %v next %q", page.Devices, page.Next)
	}

	for _, q := range []string{"supervised=maybe", "ownership=leased", "limit=0", "limit=1001", "platfrom=iOS", "q=%FF%FE"} {
		var e map[string]string
		if code := h.api("GET", "/v1/inventory?"+q, nil, &e); code != 400 || e["error"] == "" {
			t.Errorf("%s: %d %v", q, code, e)
		}
	}
}

func TestPlatformOf(t *testing.T) {
	for _, c := range []struct{ product, model, want string }{
		{"iPhone15,3", "iPhone", IOS},
		{"iPod9,1", "", IOS},
		{"iPad13,16", "iPad Air", IPadOS},
		{"Mac14,9", "MacBook Pro", MacOS},
		{"MacBookPro18,1", "", MacOS},
		{"iMac21,1", "", MacOS},
		{"Macmini9,1", "", MacOS},
		{"VirtualMac2,1", "", MacOS},
		{"AppleTV14,1", "Apple TV", TVOS},
		{"Watch7,1", "Apple Watch", WatchOS},
		{"RealityDevice14,1", "Apple Vision Pro", VisionOS},
		{"", "iPad", IPadOS},
		{"Unknown1,1", "MacBook Air", MacOS},
		{"", "", ""},
		{"Toaster", "Toaster", ""},
	} {
		if got := platformOf(c.product, c.model); got != c.want {
			t.Errorf("platformOf(%q, %q) = %q, want %q", c.product, c.model, got, c.want)
		}
	}
}

func TestQueriesFor(t *testing.T) {
	has := func(qs []any, k string) bool { return slices.Contains(qs, any(k)) }
	for _, c := range []struct {
		platform string
		ue       bool
		want     []string
		not      []string
	}{
		{IOS, false, []string{"UDID", "SerialNumber", "IMEI", "IsSupervised", "WiFiMAC", "BatteryLevel", "IsMDMLostModeEnabled"}, []string{"EthernetMAC", "HostName", "PushToken"}},
		{IPadOS, false, []string{"IMEI", "IsMultiUser", "ResidentUsers"}, []string{"PINRequiredForEraseDevice"}},
		{IOS, true, []string{"DeviceName", "OSVersion", "IsSupervised", "BatteryLevel"}, []string{"UDID", "SerialNumber", "IMEI", "WiFiMAC", "PhoneNumber"}},
		{MacOS, false, []string{"SerialNumber", "EthernetMAC", "PINRequiredForDeviceLock", "IsAppleSilicon", "ProvisioningUDID"}, []string{"IMEI", "MEID", "TimeZone"}},
		{TVOS, false, []string{"DeviceID", "SerialNumber"}, []string{"DeviceCapacity", "BatteryLevel"}},
		{"", false, []string{"IMEI", "EthernetMAC", "DeviceName"}, []string{"DeviceID", "PushToken"}},
	} {
		qs := queriesFor(c.platform, c.ue)
		for _, k := range c.want {
			if !has(qs, k) {
				t.Errorf("%s ue=%v: %s missing", c.platform, c.ue, k)
			}
		}
		for _, k := range c.not {
			if has(qs, k) {
				t.Errorf("%s ue=%v: %s asked", c.platform, c.ue, k)
			}
		}
	}
}

func TestOwnership(t *testing.T) {
	for _, c := range []struct {
		method string
		prev   storage.Ownership
		want   storage.Ownership
	}{
		{storage.KindADE, "", storage.Corporate},
		{storage.KindConfigurator, storage.Personal, storage.Corporate},
		{storage.KindInvitation, storage.Corporate, storage.Personal},
		{storage.KindProfile, "", storage.Personal},
		{"admin", "", storage.Personal},
		{storage.KindRenewal, storage.Corporate, storage.Corporate},
		{storage.KindRenewal, "", storage.Personal},
		{"", storage.Corporate, storage.Corporate},
	} {
		if got := OwnershipOf(c.method, c.prev); got != c.want {
			t.Errorf("OwnershipOf(%q, %q) = %q, want %q", c.method, c.prev, got, c.want)
		}
	}
}

// The retire action removes the profile Orchard installs; if the builder
// renames it, retire must follow.
func TestRetireTargetsEnrollmentProfile(t *testing.T) {
	raw, err := enrollprofile.Build(enrollprofile.Params{PublicURL: "https://mdm.example.com", Challenge: "c", Topic: "com.apple.mgmt.External.t"})
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ PayloadIdentifier string }
	if err := plist.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.PayloadIdentifier != EnrollmentProfileIdentifier {
		t.Fatalf("enrollment profile is %q, retire removes %q", p.PayloadIdentifier, EnrollmentProfileIdentifier)
	}
}

func TestNewRefuses(t *testing.T) {
	h := newHarness(t)
	unlock := UnlockTokenFunc(func(context.Context, string) ([]byte, error) { return nil, nil })
	for i, c := range []struct {
		store  Store
		unlock UnlockTokens
		cmds   Commands
		opts   []Option
	}{
		{nil, unlock, h.cmds, nil},
		{h.store, nil, h.cmds, nil},
		{h.store, unlock, nil, nil},
		{h.store, unlock, h.cmds, []Option{WithInterval(0)}},
		{h.store, unlock, h.cmds, []Option{WithMDMProfileIdentifier("")}},
	} {
		if _, err := New(c.store, c.unlock, c.cmds, c.opts...); err == nil {
			t.Errorf("case %d: New accepted it", i)
		}
	}
}
