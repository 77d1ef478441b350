package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm/ddm"
)

// syncs counts the DeclarativeManagement commands a channel's queue held
// (draining it).
func syncs(t *testing.T, drain func() ([]*simdevice.Command, error)) int {
	t.Helper()
	cmds, err := drain()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cmds {
		if c.RequestType == "DeclarativeManagement" {
			n++
		}
	}
	return n
}

func manifestIDs(t *testing.T, fetch func() ([]byte, error)) []string {
	t.Helper()
	raw, err := fetch()
	if err != nil {
		t.Fatal(err)
	}
	var m ddm.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range m.Declarations.Configurations {
		ids = append(ids, it.Identifier)
	}
	return ids
}

// testDeclarationSetScope: declaration sets are scoped with the shared
// model (PUT /v1/declaration-sets/{name}/scope): only channels whose
// declarations token changes are told to sync, exclusions remove the
// declarations, user-channel scopes reach macOS users and not their device
// channel, and a device that enrolls later is told at enrollment.
func testDeclarationSetScope(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	p1, p2 := s.NewDevice(t), s.NewDevice(t) // iPhones
	mac := s.NewDevice(t)
	mac.ProductName, mac.Model, mac.ModelName, mac.OSVersion = "Mac14,2", "Mac14,2", "MacBook Air", "15.1"
	for _, d := range []*simdevice.Device{p1, p2, mac} {
		s.Enroll(t, d)
		if _, err := d.Settle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	u := simdevice.User{UserID: "2DC6C8B4-9A4F-4B9E-8E5C-1D2F3A4B5C6D", ShortName: "jappleseed", Token: []byte("usertoken"), PushMagic: "UM"}
	if err := mac.UserTokenUpdate(ctx, u, false); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.UserDrain(ctx, u); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{"pc", "upc"} {
		if code := s.API(t, "POST", "/v1/declarations", map[string]any{
			"type": "com.apple.configuration.passcode.settings", "identifier": id, "payload": map[string]any{"MinimumLength": 6},
		}, nil); code != http.StatusOK {
			t.Fatalf("declaration %s = %d", id, code)
		}
	}
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "phones", "declarations": []string{"pc"}}, nil); code != http.StatusOK {
		t.Fatalf("set = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/declaration-sets/phones/scope", map[string]any{"scope": map[string]any{"platforms": []string{"Android"}}}, nil); code != http.StatusBadRequest {
		t.Fatalf("unknown platform = %d, want 400", code)
	}
	if code := s.API(t, "PUT", "/v1/declaration-sets/nope/scope", map[string]any{"scope": map[string]any{"all": true}}, nil); code != http.StatusNotFound {
		t.Fatalf("unknown set = %d, want 404", code)
	}

	scopeSet := func(name string, sc map[string]any) {
		t.Helper()
		var set struct {
			Scope map[string]any `json:"scope"`
		}
		if code := s.API(t, "PUT", "/v1/declaration-sets/"+name+"/scope", map[string]any{"scope": sc}, &set); code != http.StatusOK || set.Scope == nil {
			t.Fatalf("scope %s = %d %+v", name, code, set)
		}
	}
	scopeSet("phones", map[string]any{"platforms": []string{"iOS"}})
	for _, d := range []*simdevice.Device{p1, p2} {
		if n := syncs(t, func() ([]*simdevice.Command, error) { return d.Settle(ctx) }); n != 1 {
			t.Fatalf("%s got %d syncs, want 1", d.UDID, n)
		}
		if _, err := d.SyncDeclarations(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := d.DDM.Declarations["pc"]; !ok {
			t.Fatalf("%s lacks pc: %v", d.UDID, d.DDM.Declarations)
		}
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return mac.Settle(ctx) }); n != 0 {
		t.Fatalf("the Mac out of scope got %d syncs", n)
	}

	// The same scope again changes no token: nobody is told to sync.
	scopeSet("phones", map[string]any{"platforms": []string{"iOS"}})
	if n := syncs(t, func() ([]*simdevice.Command, error) { return p1.Settle(ctx) }); n != 0 {
		t.Fatalf("unchanged scope sent %d syncs", n)
	}
	// A set replaced without a scope keeps it.
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "phones", "declarations": []string{"pc"}}, nil); code != http.StatusOK {
		t.Fatal("replace set")
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return p1.Settle(ctx) }); n != 0 {
		t.Fatalf("replacing the set unchanged sent %d syncs", n)
	}

	// Excluding p2 removes pc there, and only there.
	scopeSet("phones", map[string]any{"platforms": []string{"iOS"}, "exclude": []string{p2.UDID}})
	if n := syncs(t, func() ([]*simdevice.Command, error) { return p1.Settle(ctx) }); n != 0 {
		t.Fatalf("p1 still in scope got %d syncs", n)
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return p2.Settle(ctx) }); n != 1 {
		t.Fatalf("excluded p2 got %d syncs, want 1", n)
	}
	if _, err := p2.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := p2.DDM.Declarations["pc"]; ok || !slices.Contains(p2.DDM.Removed, "pc") {
		t.Fatalf("excluded p2 still holds pc: %v removed %v", p2.DDM.Declarations, p2.DDM.Removed)
	}

	// A user-channel scope reaches the Mac's user, not its device channel.
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "mac-users", "declarations": []string{"upc"},
		"scope": map[string]any{"platforms": []string{"macOS"}, "channel": "user"}}, nil); code != http.StatusOK {
		t.Fatal("user set")
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return mac.UserDrain(ctx, u) }); n != 1 {
		t.Fatalf("the Mac's user got %d syncs, want 1", n)
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return mac.Settle(ctx) }); n != 0 {
		t.Fatalf("the Mac's device channel got %d syncs", n)
	}
	if ids := manifestIDs(t, func() ([]byte, error) { return mac.UserDeclarative(ctx, u, "declaration-items", nil) }); !slices.Contains(ids, "upc") {
		t.Fatalf("user manifest %v lacks upc", ids)
	}
	if ids := manifestIDs(t, func() ([]byte, error) { return mac.Declarative(ctx, "declaration-items", nil) }); slices.Contains(ids, "upc") {
		t.Fatalf("device manifest %v holds the user's upc", ids)
	}
	if raw, err := mac.UserDeclarative(ctx, u, "declaration/configuration/upc", nil); err != nil || !json.Valid(raw) {
		t.Fatalf("user fetch of upc: %s %v", raw, err)
	}

	// An iPhone that enrolls now is told to sync at enrollment.
	late := s.NewDevice(t)
	if err := late.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := syncs(t, func() ([]*simdevice.Command, error) { return late.Settle(ctx) }); n != 1 {
		t.Fatalf("late iPhone got %d syncs, want 1", n)
	}
}
