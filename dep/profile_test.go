package dep_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/storage"
)

func TestProfileValidation(t *testing.T) {
	certB64 := base64.StdEncoding.EncodeToString(sharedKeys(t).Cert.Raw)
	ok := func(mod func(*dep.ProfileSpec)) dep.ProfileSpec {
		p := dep.ProfileSpec{Name: "Staff"}
		mod(&p)
		return p
	}
	shared := func(p *dep.ProfileSpec) { p.SharedIPad, p.Supervised = true, true }
	tests := []struct {
		name string
		spec dep.ProfileSpec
		rule string // "" = valid
	}{
		{"minimal", ok(func(*dep.ProfileSpec) {}), ""},
		{"no name", dep.ProfileSpec{}, "name is required"},
		{"bad affinity", ok(func(p *dep.ProfileSpec) { p.UserAffinity = "maybe" }), "user_affinity"},
		{"locked needs supervised", ok(func(p *dep.ProfileSpec) { p.LockedEnrollment = true }), "locked_enrollment requires supervised"},
		{"locked and supervised", ok(func(p *dep.ProfileSpec) { p.LockedEnrollment, p.Supervised = true, true }), ""},
		{"shared iPad", ok(func(p *dep.ProfileSpec) {
			shared(p)
			p.MaxCachedUsers, p.PasscodeLockGraceSecs, p.UserSessionTimeout = 10, 14400, 30
		}), ""},
		{"shared needs supervised", ok(func(p *dep.ProfileSpec) { p.SharedIPad = true }), "shared_ipad requires supervised"},
		{"shared needs no affinity", ok(func(p *dep.ProfileSpec) { shared(p); p.UserAffinity = storage.AffinityModernAuth }), "shared_ipad requires user_affinity none"},
		{"shared settings need shared", ok(func(p *dep.ProfileSpec) { p.MaxCachedUsers = 3 }), "require shared_ipad"},
		{"grace too long", ok(func(p *dep.ProfileSpec) { shared(p); p.PasscodeLockGraceSecs = 14401 }), "between 0 and 14400"},
		{"grace negative", ok(func(p *dep.ProfileSpec) { shared(p); p.PasscodeLockGraceSecs = -1 }), "between 0 and 14400"},
		{"session timeout 29", ok(func(p *dep.ProfileSpec) { shared(p); p.UserSessionTimeout = 29 }), "0 (never) or at least 30"},
		{"temporary only", ok(func(p *dep.ProfileSpec) { shared(p); p.TemporarySessionOnly, p.TemporarySessionTime = true, 60 }), ""},
		{"temporary timeout 10", ok(func(p *dep.ProfileSpec) { shared(p); p.TemporarySessionOnly, p.TemporarySessionTime = true, 10 }), "temporary_session_timeout_seconds must be 0"},
		{"temporary timeout without temporary", ok(func(p *dep.ProfileSpec) { shared(p); p.TemporarySessionTime = 60 }), "requires temporary_session_only"},
		{"temporary cancels cached users", ok(func(p *dep.ProfileSpec) { shared(p); p.TemporarySessionOnly, p.MaxCachedUsers = true, 5 }), "temporary_session_only cancels"},
		{"sync bad", ok(func(p *dep.ProfileSpec) { p.SyncWithComputers = "some" }), "sync_with_computers must be"},
		{"configurator needs certs", ok(func(p *dep.ProfileSpec) { p.SyncWithComputers = storage.SyncConfiguratorByCert }), "needs at least one certificate"},
		{"configurator with cert", ok(func(p *dep.ProfileSpec) {
			p.SyncWithComputers, p.ConfiguratorCerts = storage.SyncConfiguratorByCert, []string{certB64}
		}), ""},
		{"configurator with PEM", ok(func(p *dep.ProfileSpec) {
			p.SyncWithComputers, p.ConfiguratorCerts = storage.SyncConfiguratorByCert, []string{string(sharedKeys(t).CertPEM())}
		}), ""},
		{"certs without configurator", ok(func(p *dep.ProfileSpec) { p.ConfiguratorCerts = []string{certB64} }), "require sync_with_computers configurator_cert"},
		{"bad cert", ok(func(p *dep.ProfileSpec) {
			p.SyncWithComputers, p.ConfiguratorCerts = storage.SyncConfiguratorByCert, []string{"aGVsbG8="}
		}), "does not parse"},
		{"name template", ok(func(p *dep.ProfileSpec) { p.DeviceNameTemplate = "{{DEVICETYPE}}-{{SERIAL}}" }), ""},
		{"name template 64", ok(func(p *dep.ProfileSpec) { p.DeviceNameTemplate = strings.Repeat("x", 64) }), "63 characters"},
		{"name template unknown var", ok(func(p *dep.ProfileSpec) { p.DeviceNameTemplate = "{{USER}}" }), "only {{SERIAL}} and {{DEVICETYPE}}"},
		{"cellular http", ok(func(p *dep.ProfileSpec) { p.CellularPlanURL = "http://carrier.example" }), "https URL"},
		{"cellular https", ok(func(p *dep.ProfileSpec) { p.CellularPlanURL = "https://carrier.example/activate" }), ""},
		{"phone", ok(func(p *dep.ProfileSpec) { p.SupportPhone = "call me" }), "support_phone"},
		{"language", ok(func(p *dep.ProfileSpec) { p.Language = "English" }), "language"},
		{"region", ok(func(p *dep.ProfileSpec) { p.Region = "usa" }), "region"},
		{"unknown screen", ok(func(p *dep.ProfileSpec) { p.Screens = map[string]string{"tetris": "hide"} }), "unknown Setup Assistant screen"},
		{"screen value", ok(func(p *dep.ProfileSpec) { p.Screens = map[string]string{"siri": "maybe"} }), "show or hide"},
		{"screen without skip key", ok(func(p *dep.ProfileSpec) { p.Screens = map[string]string{"registration": "hide"} }), "no skip key"},
		{"screen without skip key shown", ok(func(p *dep.ProfileSpec) { p.Screens = map[string]string{"registration": "show"} }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, dep.ErrInvalid) || !strings.Contains(err.Error(), tc.rule) {
				t.Fatalf("err = %v, want rule %q", err, tc.rule)
			}
		})
	}
}

func TestEveryScreenMapsToASkipKeyOrSaysWhyNot(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range dep.Screens {
		if seen[s.ID] {
			t.Errorf("duplicate screen %s", s.ID)
		}
		seen[s.ID] = true
		if !s.IOS && !s.MacOS {
			t.Errorf("screen %s on no platform", s.ID)
		}
	}
	spec := dep.ProfileSpec{Name: "x", Screens: map[string]string{}}
	for _, s := range dep.Screens {
		if s.SkipKey != "" {
			spec.Screens[s.ID] = "hide"
		}
	}
	rec := spec.Record()
	back := dep.SpecOf(rec, false)
	for id, v := range spec.Screens {
		if back.Screens[id] != v {
			t.Errorf("screen %s round-trips as %s", id, back.Screens[id])
		}
	}
}

func TestProfileLifecycleAtApple(t *testing.T) {
	e := newEnv(t, 2500, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	spec := dep.ProfileSpec{Name: "Kiosk", Supervised: true, LockedEnrollment: true, AwaitDeviceConfigured: true,
		SyncWithComputers: storage.SyncDenyAll, Department: "IT", SupportPhone: "+1 555 0100", Language: "en", Region: "US",
		UserAffinity: storage.AffinityModernAuth,
		Screens:      map[string]string{"siri": "hide", "passcode": "hide", "filevault": "show"}}
	v, err := e.svc.CreateProfile(e.ctx, e.tokenID, spec)
	if err != nil {
		t.Fatal(err)
	}
	got := e.fake.Profile(v.AppleUUID)
	want := map[string]any{"profile_name": "Kiosk", "is_supervised": true, "is_mdm_removable": false, "is_mandatory": true,
		"await_device_configured": true, "allow_pairing": false, "department": "IT", "support_phone_number": "+1 555 0100",
		"language": "en", "region": "US", "url": "https://mdm.example.com/mdm/enroll/ade?profile=" + v.ID,
		"configuration_web_url": "https://mdm.example.com/mdm/enroll/ade?profile=" + v.ID + "&auth=modern"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Apple profile %s = %v, want %v", k, got[k], w)
		}
	}
	if skip, _ := got["skip_setup_items"].([]any); len(skip) != 2 || skip[0] != "Passcode" || skip[1] != "Siri" {
		t.Errorf("skip_setup_items = %v", got["skip_setup_items"])
	}

	serials := make([]string, 0, 1500)
	for i := range 1500 {
		serials = append(serials, deptest.Serial(i))
	}
	serials = append(serials, deptest.Serial(0)) // duplicates are sent once
	ar, err := e.svc.AssignProfile(e.ctx, e.tokenID, v.ID, serials)
	if err != nil || len(ar.Assigned) != 1500 {
		t.Fatalf("assign: %d %v", len(ar.Assigned), err)
	}
	if e.fake.MaxBatch() != 1000 || e.fake.Calls("PUT /profile/devices") != 2 {
		t.Fatalf("batches: max %d calls %d", e.fake.MaxBatch(), e.fake.Calls("PUT /profile/devices"))
	}
	if d := e.device(deptest.Serial(7)); d.Status != storage.DEPReady || d.ProfileID != v.ID || d.ProfileUUID != v.AppleUUID {
		t.Fatalf("assigned device: %+v", d)
	}
	if _, err := e.svc.AssignProfile(e.ctx, e.tokenID, v.ID, []string{"NOT-MINE"}); !errors.Is(err, dep.ErrInvalid) {
		t.Fatalf("unknown serial: %v", err)
	}

	spec.Name = "Kiosk v2"
	spec.Screens["apple_pay"] = "hide"
	v2, err := e.svc.UpdateProfile(e.ctx, e.tokenID, v.ID, spec)
	if err != nil {
		t.Fatal(err)
	}
	if v2.AppleUUID == v.AppleUUID || v2.Reassigned != 1500 || !strings.Contains(v2.Note, "erased") {
		t.Fatalf("edit: %+v", v2)
	}
	if e.fake.AssignedProfile(deptest.Serial(1499)) != v2.AppleUUID || e.fake.AssignedProfile(deptest.Serial(1500)) != "" {
		t.Fatal("edit did not re-assign exactly the profile's devices")
	}
	if e.fake.Profile(v2.AppleUUID)["profile_name"] != "Kiosk v2" {
		t.Fatal("edit not defined at Apple")
	}

	bad := spec
	bad.LockedEnrollment, bad.Supervised = true, false
	if _, err := e.svc.UpdateProfile(e.ctx, e.tokenID, v.ID, bad); !errors.Is(err, dep.ErrInvalid) {
		t.Fatalf("invalid edit: %v", err)
	}
	if p, _ := e.svc.Profile(e.ctx, e.tokenID, v.ID); p.Name != "Kiosk v2" {
		t.Fatal("invalid edit changed the profile")
	}
	if err := e.svc.DeleteProfile(e.ctx, e.tokenID, v.ID); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultProfileAssignedToNewDevicesWithCooldown(t *testing.T) {
	e := newEnv(t, 2500, nil)
	e.addToken()
	failing := deptest.Serial(7)
	e.fake.FailSerials(failing)
	v, err := e.svc.CreateProfile(e.ctx, e.tokenID, dep.ProfileSpec{Name: "Default", Default: true})
	if err != nil || !v.Default {
		t.Fatalf("create default: %+v %v", v, err)
	}
	res, err := e.svc.SyncNow(e.ctx, e.tokenID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Assigned != 2499 || res.AssignFailed != 1 {
		t.Fatalf("result: %+v", res)
	}
	if e.fake.MaxBatch() > 1000 || e.fake.Calls("PUT /profile/devices") != 3 {
		t.Fatalf("batches: max %d calls %d", e.fake.MaxBatch(), e.fake.Calls("PUT /profile/devices"))
	}
	if n := e.count(storage.DEPDeviceFilter{Status: storage.DEPReady}); n != 2499 {
		t.Fatalf("ready devices = %d", n)
	}
	if d := e.device(failing); d.Status != storage.DEPMissingProfile || !d.AssignRetryAfter.Equal(e.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("failed device: %+v", d)
	}
	added := e.fake.AddDevices(1)
	e.fake.ExpireCursors() // next sync is full: every device is seen again
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	if e.fake.AssignTries(failing) != 1 {
		t.Fatalf("FAILED serial retried within the cooldown: %d tries", e.fake.AssignTries(failing))
	}
	if e.fake.AssignedProfile(added[0]) != v.AppleUUID {
		t.Fatal("new device did not get the default profile")
	}
	e.fake.ExpireCursors()
	e.clock.Advance(13 * time.Hour)
	e.svc.Tick(e.ctx)
	if e.fake.AssignTries(failing) != 2 {
		t.Fatalf("FAILED serial not retried after the cooldown: %d tries", e.fake.AssignTries(failing))
	}
	if err := e.svc.DeleteProfile(e.ctx, e.tokenID, v.ID); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("deleted the default profile: %v", err)
	}
}

func TestProfileLimitPerToken(t *testing.T) {
	e := newEnv(t, 1, nil)
	e.addToken()
	for i := range dep.MaxProfilesPerToken {
		p := storage.DEPProfile{ID: "p" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), TokenID: e.tokenID, Name: "p"}
		if err := e.store.CreateDEPProfile(e.ctx, p, dep.MaxProfilesPerToken); err != nil {
			t.Fatal(err)
		}
	}
	defined := e.fake.Profiles()
	if _, err := e.svc.CreateProfile(e.ctx, e.tokenID, dep.ProfileSpec{Name: "one too many"}); !errors.Is(err, storage.ErrLimit) {
		t.Fatalf("1001st profile: %v", err)
	}
	if e.fake.Profiles() != defined {
		t.Fatal("refused profile was defined at Apple")
	}
}
