package simdevice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"

	"github.com/orchardmdm/orchard/mdm/ddm"
)

// DDMState is the device's declarative side: the token it synced to and
// the declarations it holds, by identifier.
type DDMState struct {
	Token        string
	Declarations map[string]ddm.Declaration
	// Fetched counts declaration fetches, Removed what the last sync
	// dropped (gone from the manifest, or answered 404).
	Fetched int
	Removed []string
}

// Declarative sends a DeclarativeManagement check-in for endpoint.
func (d *Device) Declarative(ctx context.Context, endpoint string, data []byte) ([]byte, error) {
	msg := map[string]any{"MessageType": "DeclarativeManagement", "UDID": d.UDID, "Endpoint": endpoint}
	if data != nil {
		msg["Data"] = data
	}
	return d.Checkin(ctx, msg)
}

// SyncDeclarations does what a device does on a DeclarativeManagement
// command: fetch the tokens, and when they changed the manifest, then each
// declaration it lacks or holds in an older version; it drops what the
// manifest no longer lists, applies, and sends a full status report. It
// reports whether anything changed.
func (d *Device) SyncDeclarations(ctx context.Context) (bool, error) {
	raw, err := d.Declarative(ctx, "tokens", nil)
	if err != nil {
		return false, fmt.Errorf("tokens: %w", err)
	}
	var tok ddm.TokensResponse
	if err := json.Unmarshal(raw, &tok); err != nil {
		return false, fmt.Errorf("tokens: %w", err)
	}
	if tok.SyncTokens.DeclarationsToken == d.DDM.Token && d.DDM.Declarations != nil {
		return false, nil
	}
	raw, err = d.Declarative(ctx, "declaration-items", nil)
	if err != nil {
		return false, fmt.Errorf("declaration-items: %w", err)
	}
	var m ddm.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, fmt.Errorf("declaration-items: %w", err)
	}
	held := d.DDM.Declarations
	next := map[string]ddm.Declaration{}
	d.DDM.Removed = nil
	lists := []struct {
		kind  string
		items []ddm.ManifestItem
	}{{ddm.KindActivation, m.Declarations.Activations}, {ddm.KindAsset, m.Declarations.Assets},
		{ddm.KindConfiguration, m.Declarations.Configurations}, {ddm.KindManagement, m.Declarations.Management}}
	for _, l := range lists {
		for _, it := range l.items {
			if old, ok := held[it.Identifier]; ok && old.ServerToken == it.ServerToken {
				next[it.Identifier] = old
				continue
			}
			decl, err := d.FetchDeclaration(ctx, l.kind, it.Identifier)
			var se *StatusError
			if asStatus(err, &se) && se.Code == 404 {
				continue // the server no longer has it: drop it
			}
			if err != nil {
				return false, err
			}
			next[it.Identifier] = *decl
		}
	}
	for id := range held {
		if _, ok := next[id]; !ok {
			d.DDM.Removed = append(d.DDM.Removed, id)
		}
	}
	sort.Strings(d.DDM.Removed)
	d.DDM.Declarations = next
	d.DDM.Token = m.DeclarationsToken
	return true, d.SendStatus(ctx, d.FullStatus())
}

func asStatus(err error, se **StatusError) bool {
	e, ok := err.(*StatusError)
	if ok {
		*se = e
	}
	return ok
}

// FetchDeclaration fetches one declaration; a 404 is a *StatusError.
func (d *Device) FetchDeclaration(ctx context.Context, kind, id string) (*ddm.Declaration, error) {
	raw, err := d.Declarative(ctx, "declaration/"+kind+"/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	d.DDM.Fetched++
	var decl ddm.Declaration
	if err := json.Unmarshal(raw, &decl); err != nil {
		return nil, fmt.Errorf("declaration %s: %w", id, err)
	}
	return &decl, nil
}

// SendStatus sends a status report (full, or partial: only what changed).
func (d *Device) SendStatus(ctx context.Context, items map[string]any) error {
	body, err := json.Marshal(map[string]any{"StatusItems": items, "Errors": []any{}})
	if err != nil {
		return err
	}
	_, err = d.Declarative(ctx, "status", body)
	return err
}

// FullStatus is the status the device reports after a sync: its OS, the
// update it has pending from an enforcement above its version, and every
// declaration it holds (all valid and active).
func (d *Device) FullStatus() map[string]any {
	decls := map[string][]map[string]any{"activations": {}, "assets": {}, "configurations": {}, "management": {}}
	ids := make([]string, 0, len(d.DDM.Declarations))
	for id := range d.DDM.Declarations {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	install, pending := "none", map[string]any{}
	for _, id := range ids {
		x := d.DDM.Declarations[id]
		kind := ddm.Kind(x.Type)
		plural := kind + "s"
		if kind == ddm.KindManagement {
			plural = kind
		}
		decls[plural] = append(decls[plural], map[string]any{
			"identifier": id, "server-token": x.ServerToken, "active": true, "valid": "valid",
		})
		if x.Type == ddm.TypeSoftwareUpdateSpecific {
			var p struct{ TargetOSVersion, TargetBuildVersion string }
			if json.Unmarshal(x.Payload, &p) == nil && p.TargetOSVersion != d.OSVersion {
				install = "downloading"
				pending = map[string]any{"os-version": p.TargetOSVersion, "build-version": p.TargetBuildVersion}
			}
		}
	}
	return map[string]any{
		"device": map[string]any{"operating-system": map[string]any{"version": d.OSVersion, "build-version": d.BuildVersion}},
		"softwareupdate": map[string]any{
			"install-state":   install,
			"pending-version": pending,
			"failure-reason":  map[string]any{"count": 0},
		},
		"management": map[string]any{"declarations": decls},
	}
}
