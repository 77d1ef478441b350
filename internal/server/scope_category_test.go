package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// testCategoryScope is the walk: a profile and a declaration set
// scoped to a device category; devices enrolled and put in it reach
// verified (the profile) and valid (the declaration); a profile the device
// refuses is failed after one retry; a device taken out of the category,
// and an unscoped profile, are removed; deleting the category syncs its
// devices.
func testCategoryScope(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	ok := func(method, path string, body any, want int) {
		t.Helper()
		if code := s.API(t, method, path, body, nil); code != want {
			t.Fatalf("%s %s = %d, want %d", method, path, code, want)
		}
	}
	ok("POST", "/v1/categories", map[string]any{"name": "kiosk"}, http.StatusCreated)
	const wifi, bad, decl = "com.example.kiosk-wifi", "com.example.kiosk-bad", "kiosk-passcode"
	ok("POST", "/v1/profiles", wifiProfile(t, wifi, "55555555-0000-4000-8000-000000000001"), http.StatusCreated)
	ok("POST", "/v1/profiles", wifiProfile(t, bad, "55555555-0000-4000-8000-000000000002"), http.StatusCreated)
	ok("POST", "/v1/declarations", map[string]any{"type": "com.apple.configuration.passcode.settings", "identifier": decl,
		"payload": map[string]any{"MinimumLength": 6, "RequirePasscode": true}}, http.StatusOK)
	ok("POST", "/v1/declaration-sets", map[string]any{"name": "kiosk", "declarations": []string{decl}}, http.StatusOK)
	inKiosk := map[string]any{"scope": map[string]any{"categories": []string{"kiosk"}}}
	ok("PUT", "/v1/profiles/"+wifi+"/scope", inKiosk, http.StatusOK)
	ok("PUT", "/v1/profiles/"+bad+"/scope", inKiosk, http.StatusOK)
	ok("PUT", "/v1/declaration-sets/kiosk/scope", inKiosk, http.StatusOK)

	a, c := s.NewDevice(t), s.NewDevice(t)
	s.Enroll(t, a)
	s.Enroll(t, c)
	a.RefuseProfile(bad)
	for _, d := range []*simdevice.Device{a, c} {
		if slices.Contains(d.InstalledProfiles(), wifi) {
			t.Fatalf("%s has the profile before it is in the category", d.UDID)
		}
		ok("PUT", "/v1/devices/"+d.UDID+"/category", map[string]any{"category": "kiosk"}, http.StatusOK)
	}
	for _, d := range []*simdevice.Device{a, c} {
		waitState(t, s, wifi, d.UDID, "verified", d)
		if _, err := d.SyncDeclarations(ctx); err != nil {
			t.Fatal(err)
		}
		if _, has := d.DDM.Declarations[decl]; !has {
			t.Fatalf("%s lacks %s: %v", d.UDID, decl, d.DDM.Declarations)
		}
	}
	if st := waitState(t, s, bad, a.UDID, "failed", a); st.Attempts != 2 || len(st.Errors) == 0 {
		t.Fatalf("refused profile: %+v, want failed after 2 attempts with the error", st)
	}
	waitState(t, s, bad, c.UDID, "verified", c)
	var status struct {
		Channels []struct {
			Channel string `json:"channel"`
			Valid   string `json:"valid"`
			Current bool   `json:"current"`
		} `json:"channels"`
	}
	if code := s.API(t, "GET", "/v1/declarations/"+decl+"/status", nil, &status); code != http.StatusOK || len(status.Channels) != 2 {
		t.Fatalf("declaration status = %d %+v", code, status)
	}
	for _, ch := range status.Channels {
		if ch.Valid != "valid" || !ch.Current {
			t.Fatalf("declaration on %s: %+v, want valid and current", ch.Channel, ch)
		}
	}

	// c leaves the category: both go.
	ok("PUT", "/v1/devices/"+c.UDID+"/category", map[string]any{"category": ""}, http.StatusOK)
	waitState(t, s, wifi, c.UDID, "removed", c)
	if _, err := c.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, has := c.DDM.Declarations[decl]; has || slices.Contains(c.InstalledProfiles(), wifi) {
		t.Fatalf("c out of the category still holds %v / %v", c.DDM.Declarations, c.InstalledProfiles())
	}
	// Unscoping the profile removes it from a.
	ok("PUT", "/v1/profiles/"+wifi+"/scope", map[string]any{"scope": map[string]any{}}, http.StatusOK)
	waitState(t, s, wifi, a.UDID, "removed", a)
	if slices.Contains(a.InstalledProfiles(), wifi) {
		t.Fatal("unscoped profile still installed on a")
	}
	// Deleting the category takes a out of the set's scope: told to sync.
	ok("DELETE", "/v1/categories/kiosk", nil, http.StatusNoContent)
	cmds, err := a.Settle(ctx)
	if err != nil || !slices.ContainsFunc(cmds, func(c *simdevice.Command) bool { return c.RequestType == "DeclarativeManagement" }) {
		t.Fatalf("after deleting the category a got %v, %v; want DeclarativeManagement", cmds, err)
	}
	if _, err := a.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, has := a.DDM.Declarations[decl]; has {
		t.Fatal("a still holds the set's declaration after its category went")
	}
}
