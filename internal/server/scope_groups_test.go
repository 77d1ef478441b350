package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// testGroupScope: a scope naming a group selects the devices whose primary
// user is in it (internal/directory). Joining the group, leaving it, a new
// primary user and a deleted group each reconcile the devices they touch
// at once: profiles are installed or removed, declaration sets synced.
func testGroupScope(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	ann, other := s.NewDevice(t), s.NewDevice(t)
	s.Enroll(t, ann)
	s.Enroll(t, other)
	ok := func(method, path string, body any, want int) {
		t.Helper()
		if code := s.API(t, method, path, body, nil); code != want {
			t.Fatalf("%s %s = %d, want %d", method, path, code, want)
		}
	}
	ok("POST", "/v1/users", map[string]any{"username": "ann"}, http.StatusCreated)
	ok("POST", "/v1/users", map[string]any{"username": "bob"}, http.StatusCreated)
	ok("POST", "/v1/groups", map[string]any{"name": "sales"}, http.StatusCreated)
	ok("PUT", "/v1/devices/"+ann.UDID+"/user", map[string]any{"username": "ann"}, http.StatusOK)
	ok("PUT", "/v1/devices/"+other.UDID+"/user", map[string]any{"username": "bob"}, http.StatusOK)

	const id = "com.example.sales-wifi"
	ok("POST", "/v1/profiles", wifiProfile(t, id, "44444444-0000-4000-8000-000000000001"), http.StatusCreated)
	ok("PUT", "/v1/profiles/"+id+"/scope", map[string]any{"scope": map[string]any{"groups": []string{"sales"}}}, http.StatusOK)
	ok("POST", "/v1/declarations", map[string]any{"type": "com.apple.configuration.passcode.settings", "identifier": "sales-pc",
		"payload": map[string]any{"MinimumLength": 8}}, http.StatusOK)
	ok("POST", "/v1/declaration-sets", map[string]any{"name": "sales", "declarations": []string{"sales-pc"},
		"scope": map[string]any{"groups": []string{"sales"}}}, http.StatusOK)
	// Nobody is in the group yet: nothing installed, nothing to sync.
	if cmds, err := ann.Settle(ctx); err != nil || len(cmds) != 0 {
		t.Fatalf("before joining: %v %v", cmds, err)
	}

	// Ann joins: her device gets the profile and is told to sync.
	ok("POST", "/v1/groups/sales/members", map[string]any{"usernames": []string{"ann"}}, http.StatusOK)
	var gotSync bool
	waitStateBy(t, s, id, ann.UDID, "verified", func() error {
		cmds, err := ann.Settle(ctx)
		gotSync = gotSync || slices.ContainsFunc(cmds, func(c *simdevice.Command) bool { return c.RequestType == "DeclarativeManagement" })
		return err
	})
	if !gotSync {
		t.Fatal("joining the group did not sync the declaration set")
	}
	if _, err := ann.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, has := ann.DDM.Declarations["sales-pc"]; !has {
		t.Fatalf("ann's device lacks sales-pc: %v", ann.DDM.Declarations)
	}
	if cmds, err := other.Settle(ctx); err != nil || len(cmds) != 0 || slices.Contains(other.InstalledProfiles(), id) {
		t.Fatalf("bob's device got %v %v", cmds, err)
	}

	// Ann leaves: removed.
	ok("DELETE", "/v1/groups/sales/members/ann", nil, http.StatusNoContent)
	waitStateBy(t, s, id, ann.UDID, "removed", func() error { _, err := ann.Settle(ctx); return err })

	// Bob joins, then his device changes hands to Ann (not in the group).
	ok("POST", "/v1/groups/sales/members", map[string]any{"usernames": []string{"bob"}}, http.StatusOK)
	waitStateBy(t, s, id, other.UDID, "verified", func() error { _, err := other.Settle(ctx); return err })
	ok("PUT", "/v1/devices/"+other.UDID+"/user", map[string]any{"username": "ann"}, http.StatusOK)
	waitStateBy(t, s, id, other.UDID, "removed", func() error { _, err := other.Settle(ctx); return err })

	// Back to Bob, then the group is deleted: removed again.
	ok("PUT", "/v1/devices/"+other.UDID+"/user", map[string]any{"username": "bob"}, http.StatusOK)
	waitStateBy(t, s, id, other.UDID, "verified", func() error { _, err := other.Settle(ctx); return err })
	ok("DELETE", "/v1/groups/sales", nil, http.StatusNoContent)
	waitStateBy(t, s, id, other.UDID, "removed", func() error { _, err := other.Settle(ctx); return err })
}
