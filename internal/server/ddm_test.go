package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm/ddm"
)

// testDeclarativeSoftwareUpdate scopes a software-update enforcement to a
// device through a declaration set: the device is told to sync, fetches
// its manifest and declarations, reports status (full, then partial), the
// fleet view follows, and unscoping removes the declaration.
func testDeclarativeSoftwareUpdate(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	dev := s.NewDevice(t)
	other := s.NewDevice(t)
	late := s.NewDevice(t)
	s.Enroll(t, dev)
	s.Enroll(t, other)

	// Before any set the device syncs Orchard's own declarations.
	if _, err := dev.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"orchard.management.server-capabilities", "orchard.status-subscriptions", "orchard.activation.status-subscriptions"} {
		if _, ok := dev.DDM.Declarations[id]; !ok {
			t.Fatalf("base declaration %s missing: %v", id, dev.DDM.Declarations)
		}
	}

	// A payload Apple's schema refuses is a 400 and nothing is stored.
	var list struct {
		Declarations []json.RawMessage `json:"declarations"`
	}
	if code := s.API(t, "POST", "/v1/declarations", map[string]any{
		"type": ddm.TypeSoftwareUpdateSpecific, "identifier": "ios-18-2",
		"payload": map[string]any{"TargetOSVersion": "18.2", "TargetLocalDateTime": "2026-12-15 20:00"},
	}, nil); code != http.StatusBadRequest {
		t.Fatalf("bad deadline = %d, want 400", code)
	}
	if s.API(t, "GET", "/v1/declarations", nil, &list); len(list.Declarations) != 0 {
		t.Fatalf("refused declaration stored: %s", list.Declarations)
	}

	const id = "ios-18-2"
	var stored struct {
		ServerToken string `json:"server_token"`
	}
	if code := s.API(t, "POST", "/v1/declarations", map[string]any{
		"type": ddm.TypeSoftwareUpdateSpecific, "identifier": id,
		"payload": map[string]any{"TargetOSVersion": "18.2", "TargetBuildVersion": "22C152",
			"TargetLocalDateTime": "2026-12-15T20:00:00", "DetailsURL": "https://it.example.com/ios-18"},
	}, &stored); code != http.StatusOK || stored.ServerToken == "" {
		t.Fatalf("put declaration = %d %+v", code, stored)
	}
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{
		"name": "ios-update", "declarations": []string{id}, "channels": []string{dev.UDID, late.UDID},
	}, nil); code != http.StatusOK {
		t.Fatalf("put set = %d", code)
	}
	// A device scoped before it enrolled is told to sync once it can be.
	if err := late.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	lateCmds, err := late.Settle(ctx)
	if err != nil || !slices.ContainsFunc(lateCmds, func(c *simdevice.Command) bool { return c.RequestType == "DeclarativeManagement" }) {
		t.Fatalf("late device got %v, %v; want DeclarativeManagement", lateCmds, err)
	}
	// A set naming a declaration that does not exist is refused.
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "x", "declarations": []string{"nope"}}, nil); code != http.StatusNotFound {
		t.Fatalf("set of unknown declaration = %d, want 404", code)
	}

	// The token changed: the device gets DeclarativeManagement with it.
	tok := syncCommand(t, dev)
	if _, err := dev.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if dev.DDM.Token != tok.DeclarationsToken {
		t.Fatalf("command token %q, manifest token %q", tok.DeclarationsToken, dev.DDM.Token)
	}
	got, ok := dev.DDM.Declarations[id]
	if !ok || got.ServerToken != stored.ServerToken {
		t.Fatalf("device holds %+v, want %s with token %s", got, id, stored.ServerToken)
	}
	act, ok := dev.DDM.Declarations["orchard.activation.set.ios-update"]
	if !ok || !json.Valid(act.Payload) || !slices.Contains(standardConfigurations(t, act.Payload), id) {
		t.Fatalf("set activation = %+v", act)
	}
	// The other device is not in scope: no command, no declaration.
	if cmds, err := other.Settle(ctx); err != nil || len(cmds) != 0 {
		t.Fatalf("unscoped device got %v, %v", cmds, err)
	}
	if _, err := other.FetchDeclaration(ctx, "configuration", id); !isStatus(err, 404) {
		t.Fatalf("unscoped device fetched the declaration: %v", err)
	}

	// Status per device and per declaration from the full report.
	var st struct {
		Declarations map[string]struct {
			Active bool   `json:"active"`
			Valid  string `json:"valid"`
		} `json:"declarations"`
		Items map[string]json.RawMessage `json:"items"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID+"/declarations", nil, &st)
	if d := st.Declarations[id]; !d.Active || d.Valid != "valid" || string(st.Items["device.operating-system.version"]) != `"17.5"` {
		t.Fatalf("device status = %+v", st)
	}
	var per struct {
		Channels []struct {
			Channel string `json:"channel"`
			Current bool   `json:"current"`
		} `json:"channels"`
	}
	if s.API(t, "GET", "/v1/declarations/"+id+"/status", nil, &per); len(per.Channels) != 1 || per.Channels[0].Channel != dev.UDID || !per.Channels[0].Current {
		t.Fatalf("declaration status = %+v", per)
	}
	fleet := func() (f struct {
		OSVersions map[string]int `json:"os_versions"`
		Pending    int            `json:"pending"`
		Failed     int            `json:"failed"`
		UpToDate   int            `json:"up_to_date"`
		Devices    []struct {
			Channel        string `json:"channel"`
			State          string `json:"state"`
			Target         string `json:"target_os_version"`
			PendingVersion string `json:"pending_version"`
		} `json:"devices"`
	}) {
		s.API(t, "GET", "/v1/software-updates", nil, &f)
		return f
	}
	if f := fleet(); f.OSVersions["17.5"] != 1 || f.Pending != 1 || f.Failed != 0 || len(f.Devices) != 1 ||
		f.Devices[0].Target != "18.2" || f.Devices[0].PendingVersion != "18.2" || f.Devices[0].State != "pending" {
		t.Fatalf("fleet after sync = %+v", f)
	}

	// A partial report (only what changed) merges into what is kept.
	if err := dev.SendStatus(ctx, map[string]any{"softwareupdate": map[string]any{
		"install-state": "failed", "failure-reason": map[string]any{"count": 1, "reason": "not enough space"}}}); err != nil {
		t.Fatal(err)
	}
	if f := fleet(); f.Failed != 1 || f.Pending != 0 {
		t.Fatalf("fleet after failure = %+v", f)
	}
	dev.OSVersion, dev.BuildVersion = "18.2", "22C152"
	if err := dev.SendStatus(ctx, map[string]any{
		"device": map[string]any{"operating-system": map[string]any{"version": "18.2", "build-version": "22C152"}},
		"softwareupdate": map[string]any{"install-state": "none", "failure-reason": map[string]any{"count": 0},
			"pending-version": map[string]any{}},
	}); err != nil {
		t.Fatal(err)
	}
	// The emptied pending-version replaces the version reported under it.
	if f := fleet(); f.UpToDate != 1 || f.Failed != 0 || f.OSVersions["18.2"] != 1 || f.OSVersions["17.5"] != 0 || f.Devices[0].PendingVersion != "" {
		t.Fatalf("fleet after update = %+v", f)
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID+"/declarations", nil, &st)
	if !st.Declarations[id].Active {
		t.Fatalf("partial report lost the declaration status: %+v", st)
	}

	// A big report is merged, but only its size is kept as raw report.
	big := map[string]any{"test": map[string]any{"string-value": strings.Repeat("x", 20<<10)}}
	if err := dev.SendStatus(ctx, big); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Reports []struct {
			Body json.RawMessage `json:"body"`
		} `json:"reports"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID+"/declarations", nil, &raw)
	if n := len(raw.Reports); n == 0 || !strings.Contains(string(raw.Reports[n-1].Body), `"omitted_bytes"`) || strings.Contains(string(raw.Reports[n-1].Body), "xxxx") {
		t.Fatalf("raw reports = %s", raw.Reports)
	}

	// Hostile bodies: 400 with a reason, nothing kept.
	if _, err := dev.Declarative(ctx, "status", []byte(`{"StatusItems": [`)); !isStatus(err, 400) {
		t.Fatalf("broken status = %v", err)
	}
	if _, err := dev.Declarative(ctx, "../../etc", nil); !isStatus(err, 400) {
		t.Fatalf("unknown endpoint = %v", err)
	}

	// A declaration a set names cannot be deleted.
	if code := s.API(t, "DELETE", "/v1/declarations/"+url.PathEscape(id), nil, nil); code != http.StatusConflict {
		t.Fatalf("delete while in a set = %d, want 409", code)
	}
	// Unscoping: the device is told, its manifest drops the declaration
	// and fetching it answers 404.
	if code := s.API(t, "POST", "/v1/declaration-sets", map[string]any{"name": "ios-update", "declarations": []string{id}, "channels": []string{}}, nil); code != http.StatusOK {
		t.Fatalf("unscope = %d", code)
	}
	syncCommand(t, dev)
	if _, err := dev.SyncDeclarations(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dev.DDM.Removed, id) || !slices.Contains(dev.DDM.Removed, "orchard.activation.set.ios-update") {
		t.Fatalf("removed = %v", dev.DDM.Removed)
	}
	if _, err := dev.FetchDeclaration(ctx, "configuration", id); !isStatus(err, 404) {
		t.Fatalf("unscoped declaration fetched: %v", err)
	}
	if code := s.API(t, "DELETE", "/v1/declaration-sets/ios-update", nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete set = %d", code)
	}
	if code := s.API(t, "DELETE", "/v1/declarations/"+url.PathEscape(id), nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete declaration = %d", code)
	}
}

// syncCommand connects and expects exactly the DeclarativeManagement
// command; it returns the tokens it carried.
func syncCommand(t *testing.T, dev *simdevice.Device) ddm.SyncTokens {
	t.Helper()
	cmds, err := dev.Settle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || cmds[0].RequestType != "DeclarativeManagement" {
		t.Fatalf("commands = %+v, want one DeclarativeManagement", cmds)
	}
	data, _ := cmds[0].Payload["Data"].([]byte)
	var tr ddm.TokensResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.SyncTokens.DeclarationsToken == "" {
		t.Fatalf("command Data %q: %v", data, err)
	}
	return tr.SyncTokens
}

func standardConfigurations(t *testing.T, payload []byte) []string {
	var p struct{ StandardConfigurations []string }
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.StandardConfigurations
}

func isStatus(err error, code int) bool {
	var se *simdevice.StatusError
	return errors.As(err, &se) && se.Code == code
}

// TestDeclarativeAnswersMatchOpenAPI checks the DDM routes' real requests
// and answers, failures included, against openapi.json.
func TestDeclarativeAnswersMatchOpenAPI(t *testing.T) {
	srv := servertest.Start(t)
	dev := srv.NewDevice(t)
	srv.Enroll(t, dev)
	do := func(method, path, body string) {
		t.Helper()
		ctype := ""
		if body != "" {
			ctype = "application/json"
		}
		conformingCall(t, srv, method, path, ctype, body)
	}
	do("POST", "/v1/declarations", `{"type": "`+ddm.TypeSoftwareUpdateSpecific+`", "identifier": "u", "payload": {"TargetOSVersion": "26.1", "TargetLocalDateTime": "2026-12-15T20:00:00"}}`)
	do("POST", "/v1/declarations", `{"type": "com.example.x", "identifier": "u", "payload": {}}`)
	do("POST", "/v1/declarations", `{"type": "com.apple.configuration.passcode.settings", "identifier": "p", "payload": {"MinimumLength": 99}}`)
	do("GET", "/v1/schema/declarations", "")
	do("GET", "/v1/declarations", "")
	do("GET", "/v1/declarations/u", "")
	do("GET", "/v1/declarations/nope", "")
	do("POST", "/v1/declaration-sets", `{"name": "s", "declarations": ["u"], "channels": ["`+dev.UDID+`"]}`)
	do("POST", "/v1/declaration-sets", `{"name": "t", "declarations": ["nope"]}`)
	if _, err := dev.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.SyncDeclarations(context.Background()); err != nil {
		t.Fatal(err)
	}
	do("GET", "/v1/declaration-sets", "")
	do("GET", "/v1/declaration-sets/s", "")
	do("GET", "/v1/declarations/u/status", "")
	do("GET", "/v1/devices/"+dev.UDID+"/declarations", "")
	do("GET", "/v1/devices/NOPE/declarations", "")
	do("GET", "/v1/software-updates", "")
	do("DELETE", "/v1/declarations/u", "")
	do("DELETE", "/v1/declaration-sets/s", "")
	do("DELETE", "/v1/declaration-sets/s", "")
	do("DELETE", "/v1/declarations/u", "")
}
