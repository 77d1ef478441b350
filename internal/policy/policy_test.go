package policy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

func openStore(t testing.TB) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture: ann in staff and mac-users, bob in contractors, dem a device
// enrollment manager, off disabled; policies by priority.
func fixture(t *testing.T) (*policy.Engine, *bolt.Store) {
	t.Helper()
	ctx := context.Background()
	s := openStore(t)
	must(t, s.CreateUsers(ctx, []storage.DirectoryUser{{Username: "ann"}, {Username: "bob"}, {Username: "cy"},
		{Username: "dem", DEM: true}, {Username: "off", Disabled: true}}))
	for _, g := range []string{"staff", "mac-users", "contractors"} {
		must(t, s.CreateGroup(ctx, &storage.Group{Name: g}))
	}
	must(t, s.AddGroupMembers(ctx, "staff", []string{"ann"}))
	must(t, s.AddGroupMembers(ctx, "mac-users", []string{"ann"}))
	must(t, s.AddGroupMembers(ctx, "contractors", []string{"bob"}))
	e, err := policy.New(s, nil)
	must(t, err)
	save := func(p storage.EnrollmentPolicy) {
		t.Helper()
		if _, _, err := e.Save(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	save(storage.EnrollmentPolicy{ID: policy.DefaultPlatformID, Name: "Default",
		Platforms: map[string]storage.PlatformRule{"iOS": {MinOS: "16.0", MaxOS: "18.9"}, "macOS": {BlockPersonal: true}}})
	save(storage.EnrollmentPolicy{ID: policy.DefaultLimitID, Name: "Default", DeviceLimit: 2})
	// ann's groups hold two platform policies: priority 1 wins over 5.
	save(storage.EnrollmentPolicy{Kind: storage.PolicyPlatform, Name: "Staff", Priority: 5, Groups: []string{"staff"},
		Platforms: map[string]storage.PlatformRule{"macOS": {Block: true}}})
	save(storage.EnrollmentPolicy{Kind: storage.PolicyPlatform, Name: "Mac users", Priority: 1, Groups: []string{"mac-users"},
		Platforms: map[string]storage.PlatformRule{"macOS": {MinOS: "14.0"}, "iOS": {Block: true}}})
	save(storage.EnrollmentPolicy{Kind: storage.PolicyLimit, Name: "Contractors", Priority: 1, Groups: []string{"contractors"}, DeviceLimit: 1})
	_, err = e.ImportIdentifiers(ctx, []storage.CorporateIdentifier{{Kind: storage.IdentifierSerial, Value: "C02CORP"},
		{Kind: storage.IdentifierIMEI, Value: "350000000000001"}}, false)
	must(t, err)
	return e, s
}

func TestDecide(t *testing.T) {
	e, s := fixture(t)
	ctx := context.Background()
	must(t, s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: "BOB-1", Username: "bob", Limit: 1}))
	cases := []struct {
		name   string
		a      policy.Attempt
		code   policy.Code // "" allowed
		policy string      // the policy that decided ("" any)
		own    storage.Ownership
	}{
		{"default allows a personal iPhone in range", policy.Attempt{User: "cy", Method: storage.KindInvitation, Platform: "iOS", OSVersion: "17.4"}, "", "", storage.Personal},
		{"default: OS below minimum", policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "15.7"}, policy.OSTooOld, policy.DefaultPlatformID, storage.Personal},
		{"default: OS unknown with a minimum", policy.Attempt{User: "cy", Platform: "iPadOS"}, policy.OSTooOld, policy.DefaultPlatformID, storage.Personal},
		{"default: OS above maximum", policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "19.0"}, policy.OSTooNew, policy.DefaultPlatformID, storage.Personal},
		{"versions compare by number", policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "18.10"}, policy.OSTooNew, "", storage.Personal},
		{"tvOS shares iOS rules", policy.Attempt{User: "cy", Platform: "tvOS", OSVersion: "15.0"}, policy.OSTooOld, "", storage.Personal},
		{"default: personal Mac blocked", policy.Attempt{User: "cy", Platform: "macOS", OSVersion: "15.1", Serial: "C02OTHER"}, policy.PersonalBlocked, policy.DefaultPlatformID, storage.Personal},
		{"corporate serial admits the same Mac", policy.Attempt{User: "cy", Platform: "macOS", OSVersion: "15.1", Serial: "c02corp"}, "", "", storage.Corporate},
		{"corporate IMEI", policy.Attempt{User: "cy", Platform: "macOS", IMEI: "35 000000 000000 1"}, "", "", storage.Corporate},
		{"ADE is corporate: block personal never refuses it", policy.Attempt{Method: storage.KindADE, Platform: "macOS", OSVersion: "15.1"}, "", "", storage.Corporate},
		{"Configurator is corporate", policy.Attempt{Method: storage.KindConfigurator, Platform: "macOS"}, "", "", storage.Corporate},
		{"highest-priority group policy wins", policy.Attempt{User: "ann", Platform: "macOS", OSVersion: "13.6", Serial: "C02CORP"}, policy.OSTooOld, "", storage.Corporate},
		{"group policy blocks a platform, ADE too", policy.Attempt{User: "ann", Method: storage.KindADE, Platform: "iOS", OSVersion: "17.0"}, policy.PlatformBlocked, "", storage.Corporate},
		{"group policy replaces the default", policy.Attempt{User: "ann", Platform: "macOS", OSVersion: "14.2"}, "", "", storage.Personal},
		{"user at the limit of their group policy", policy.Attempt{User: "bob", Platform: "iOS", OSVersion: "17.0", DeviceID: "BOB-2"}, policy.DeviceLimit, "", storage.Personal},
		{"a device the user holds already re-enrolls", policy.Attempt{User: "bob", Platform: "iOS", OSVersion: "17.0", DeviceID: "BOB-1"}, "", "", storage.Personal},
		{"unknown user", policy.Attempt{User: "zed", Platform: "iOS", OSVersion: "17.0"}, policy.IdentityRefused, "", storage.Personal},
		{"disabled user", policy.Attempt{User: "off", Platform: "iOS", OSVersion: "17.0"}, policy.IdentityRefused, "", storage.Personal},
		{"DEM enrollments are corporate", policy.Attempt{User: "dem", Platform: "macOS", OSVersion: "15.0"}, "", "", storage.Corporate},
		{"userless enrollment has no limit", policy.Attempt{Platform: "iOS", OSVersion: "17.0"}, "", "", storage.Personal},
		{"unknown platform has no rule", policy.Attempt{User: "cy", Platform: "watchOS"}, "", "", storage.Personal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Decide(ctx, c.a)
			must(t, err)
			if d.Allowed != (c.code == "") || d.Reason != c.code || d.Ownership != c.own {
				t.Fatalf("decision %+v, want code %q ownership %s", d, c.code, c.own)
			}
			if c.policy != "" && d.Policy != c.policy {
				t.Errorf("decided by %q, want %q", d.Policy, c.policy)
			}
			if !d.Allowed && (d.Message == "" || d.Remedy == "" || d.Rule == "") {
				t.Errorf("a refusal must say why, which rule and what to do: %+v", d)
			}
		})
	}
}

func TestDecideGroupPolicyName(t *testing.T) {
	e, _ := fixture(t)
	d, err := e.Decide(context.Background(), policy.Attempt{User: "ann", Platform: "iOS", OSVersion: "17.0"})
	must(t, err)
	if d.PolicyName != "Mac users" || d.Rule != "iOS.block" {
		t.Fatalf("the priority-1 policy should refuse: %+v", d)
	}
}

func TestAdmitClaimsAndRefusesPastTheLimit(t *testing.T) {
	e, s := fixture(t)
	ctx := context.Background()
	a := policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "17.0"}
	for i := range 2 {
		a.DeviceID = fmt.Sprintf("CY-%d", i)
		d, err := e.Admit(ctx, a)
		must(t, err)
		if !d.Allowed || d.Limit != 2 {
			t.Fatalf("slot %d: %+v", i, d)
		}
	}
	if u, _ := s.PrimaryUser(ctx, "CY-1"); u != "cy" {
		t.Fatalf("admit did not make cy the primary user: %q", u)
	}
	a.DeviceID = "CY-2"
	d, err := e.Admit(ctx, a)
	must(t, err)
	if d.Allowed || d.Reason != policy.DeviceLimit || d.Policy != policy.DefaultLimitID {
		t.Fatalf("third device: %+v", d)
	}
}

func TestAdmitConcurrentLastSlot(t *testing.T) {
	e, s := fixture(t)
	ctx := context.Background()
	must(t, s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: "CY-0", Username: "cy", Limit: 2}))
	const n = 6
	var wg sync.WaitGroup
	ds := make([]policy.Decision, n)
	for i := range n {
		wg.Go(func() {
			d, err := e.Admit(ctx, policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "17.0", DeviceID: fmt.Sprintf("R%d", i)})
			if err != nil {
				t.Error(err)
			}
			ds[i] = d
		})
	}
	wg.Wait()
	won := 0
	for _, d := range ds {
		if d.Allowed {
			won++
		} else if d.Reason != policy.DeviceLimit {
			t.Errorf("loser's reason: %+v", d)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d won the last slot", won, n)
	}
}

func TestDEMPastFifteenAndItsOwnLimit(t *testing.T) {
	e, s := fixture(t)
	ctx := context.Background()
	for i := range policy.MaxDeviceLimit + 5 {
		d, err := e.Admit(ctx, policy.Attempt{User: "dem", Platform: "iOS", OSVersion: "17.0", DeviceID: fmt.Sprintf("DEM-%d", i)})
		must(t, err)
		if !d.Allowed || !d.DEM || d.Ownership != storage.Corporate {
			t.Fatalf("DEM device %d: %+v", i, d)
		}
	}
	if u, _ := s.PrimaryUser(ctx, "DEM-3"); u != "" {
		t.Fatalf("DEM enrollments are userless, got primary user %q", u)
	}
	// Fill the DEM's slots to the cap straight in storage (concurrently,
	// so the writes share commits), then one more.
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Go(func() {
			for i := policy.MaxDeviceLimit + 5 + w; i < policy.DEMLimit; i += 20 {
				if err := s.ClaimDevice(ctx, storage.DeviceClaim{DeviceID: fmt.Sprintf("DEM-%d", i), Username: "dem", DEM: true, Limit: policy.DEMLimit}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	d, err := e.Admit(ctx, policy.Attempt{User: "dem", Platform: "iOS", OSVersion: "17.0", DeviceID: "DEM-X"})
	must(t, err)
	if d.Allowed || d.Reason != policy.DEMLimitReached {
		t.Fatalf("device 1001: %+v", d)
	}
}

func TestSaveRules(t *testing.T) {
	e, _ := fixture(t)
	ctx := context.Background()
	bad := []storage.EnrollmentPolicy{
		{Kind: storage.PolicyLimit, Name: "x", Priority: 2, Groups: []string{"staff"}, DeviceLimit: 16},
		{Kind: storage.PolicyLimit, Name: "x", Priority: 2, Groups: []string{"staff"}, DeviceLimit: 0},
		{Kind: storage.PolicyLimit, Name: "x", Priority: 1, Groups: []string{"staff"}, DeviceLimit: 3}, // priority taken
		{Kind: storage.PolicyLimit, Name: "x", Priority: 2, DeviceLimit: 3},                            // no group
		{Kind: storage.PolicyLimit, Name: "x", Priority: 2, Groups: []string{"nope"}, DeviceLimit: 3},  // unknown group
		{Kind: storage.PolicyPlatform, Name: "x", Priority: 2, Groups: []string{"staff"}, Platforms: map[string]storage.PlatformRule{"Android": {}}},
		{Kind: storage.PolicyPlatform, Name: "x", Priority: 2, Groups: []string{"staff"}, Platforms: map[string]storage.PlatformRule{"iOS": {MinOS: "17.x"}}},
		{Kind: storage.PolicyPlatform, Name: "x", Priority: 2, Groups: []string{"staff"}, Platforms: map[string]storage.PlatformRule{"iOS": {MinOS: "18", MaxOS: "17"}}},
		{Kind: storage.PolicyPlatform, Name: "", Priority: 2, Groups: []string{"staff"}},
		{Kind: "other", Name: "x", Priority: 2, Groups: []string{"staff"}},
		{Kind: storage.PolicyPlatform, Name: "x", Default: true},
	}
	for i, p := range bad {
		if _, _, err := e.Save(ctx, p); err == nil {
			t.Errorf("case %d saved: %+v", i, p)
		}
	}
	if err := e.Delete(ctx, policy.DefaultLimitID); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("deleting a default: %v", err)
	}
	_, warnings, err := e.Save(ctx, storage.EnrollmentPolicy{ID: policy.DefaultPlatformID, Name: "Default",
		Platforms: map[string]storage.PlatformRule{"iOS": {Block: true}}})
	must(t, err)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Automated Device Enrollment") {
		t.Errorf("blocking iOS in the default must warn about ADE: %v", warnings)
	}
	all, err := e.Policies(ctx)
	must(t, err)
	if len(all) != 5 || !all[0].Default || !all[1].Default {
		t.Errorf("policies, defaults first: %+v", all)
	}
}

func TestParseIdentifierCSV(t *testing.T) {
	rows, problems := policy.ParseIdentifierCSV(storage.IdentifierSerial, []byte("\xef\xbb\xbfc02abc,Lab Mac\nF17XYZ,\n"))
	if len(problems) != 0 || len(rows) != 2 || rows[0].Value != "C02ABC" || rows[0].Details != "Lab Mac" {
		t.Fatalf("rows %+v problems %v", rows, problems)
	}
	for name, in := range map[string]string{
		"one column":     "C02ABC\n",
		"three columns":  "C02ABC,a,b\n",
		"bad serial":     "C02-ABC,x\n",
		"long details":   "C02ABC," + strings.Repeat("é", 129) + "\n",
		"repeated":       "C02ABC,x\nc02abc,y\n",
		"empty":          "",
		"bare quote":     "C02\"ABC,x\n",
		"too many rows":  strings.Repeat("C02ABC,x\n", 1) + manyRows(policy.MaxImportRows),
		"too many bytes": strings.Repeat("A", policy.MaxImportBytes+1),
	} {
		if rows, problems := policy.ParseIdentifierCSV(storage.IdentifierSerial, []byte(in)); len(problems) == 0 || rows != nil {
			t.Errorf("%s: accepted %d rows", name, len(rows))
		}
	}
	if _, problems := policy.ParseIdentifierCSV(storage.IdentifierIMEI, []byte("35-000000-000000-1,x\n")); len(problems) != 0 {
		t.Errorf("IMEI with dashes: %v", problems)
	}
	if _, problems := policy.ParseIdentifierCSV(storage.IdentifierIMEI, []byte("C02ABC,x\n")); len(problems) == 0 {
		t.Errorf("a serial in an IMEI file was accepted")
	}
}

func manyRows(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "S%07d,row\n", i)
	}
	return b.String()
}

// TestAdmissionOwnershipBy: what Authenticate is told of why a device is
// corporate, which the enrollment record keeps.
func TestAdmissionOwnershipBy(t *testing.T) {
	e, _ := fixture(t)
	adm := policy.Admission{Engine: e}
	cases := []struct {
		name string
		r    service.AdmissionRequest
		own  storage.Ownership
		by   string
	}{
		{"ADE", service.AdmissionRequest{Method: storage.KindADE, Platform: "macOS", DeviceID: "OWN-1"}, storage.Corporate, storage.OwnershipByADE},
		{"Configurator", service.AdmissionRequest{Method: storage.KindConfigurator, Platform: "macOS", DeviceID: "OWN-2"}, storage.Corporate, storage.OwnershipByConfigurator},
		{"DEM", service.AdmissionRequest{User: "dem", Method: storage.KindInvitation, Platform: "macOS", OSVersion: "15.0", DeviceID: "OWN-3"}, storage.Corporate, storage.OwnershipByDEM},
		{"corporate serial", service.AdmissionRequest{Method: storage.KindInvitation, Platform: "macOS", Serial: "c02corp", DeviceID: "OWN-4"}, storage.Corporate, storage.OwnershipByCorporateIdentifier},
		{"corporate IMEI", service.AdmissionRequest{Method: storage.KindInvitation, Platform: "iOS", OSVersion: "17.0", IMEI: "350000000000001", DeviceID: "OWN-5"}, storage.Corporate, storage.OwnershipByCorporateIdentifier},
		{"personal", service.AdmissionRequest{User: "cy", Method: storage.KindPortal, Platform: "iOS", OSVersion: "17.0", DeviceID: "OWN-6"}, storage.Personal, ""},
	}
	for _, c := range cases {
		res, err := adm.Admit(context.Background(), c.r)
		must(t, err)
		if !res.Allowed || res.Ownership != c.own || res.OwnershipBy != c.by {
			t.Errorf("%s: %+v, want allowed, %s by %q", c.name, res, c.own, c.by)
		}
	}
}

// TestDecideOwnershipBy: Decide (and so POST /v1/enrollment/decide) says
// why a device would be corporate in the device view's words, and Admit
// still marks the matching corporate identifier enrolled.
func TestDecideOwnershipBy(t *testing.T) {
	e, s := fixture(t)
	ctx := context.Background()
	cases := []struct {
		name string
		a    policy.Attempt
		by   string
	}{
		{"ADE", policy.Attempt{Method: storage.KindADE, Platform: "macOS", OSVersion: "15.1"}, storage.OwnershipByADE},
		{"Configurator", policy.Attempt{Method: storage.KindConfigurator, Platform: "macOS"}, storage.OwnershipByConfigurator},
		{"DEM", policy.Attempt{User: "dem", Platform: "macOS", OSVersion: "15.0"}, storage.OwnershipByDEM},
		{"corporate serial", policy.Attempt{Platform: "macOS", Serial: "c02corp"}, storage.OwnershipByCorporateIdentifier},
		{"corporate IMEI", policy.Attempt{Platform: "iOS", OSVersion: "17.0", IMEI: "350000000000001"}, storage.OwnershipByCorporateIdentifier},
		{"personal", policy.Attempt{User: "cy", Platform: "iOS", OSVersion: "17.0"}, ""},
	}
	for _, c := range cases {
		d, err := e.Decide(ctx, c.a)
		must(t, err)
		if !d.Allowed || d.OwnershipBy != c.by {
			t.Errorf("%s: %+v, want allowed, ownership_by %q", c.name, d, c.by)
		}
	}
	d, err := e.Admit(ctx, policy.Attempt{Platform: "macOS", Serial: "c02corp", DeviceID: "CORP-MAC"})
	must(t, err)
	id, err := s.CorporateIdentifier(ctx, storage.IdentifierSerial, "C02CORP")
	must(t, err)
	if !d.Allowed || id.EnrolledDevice != "CORP-MAC" {
		t.Fatalf("admit of a corporate serial: %+v, identifier %+v", d, id)
	}
}
