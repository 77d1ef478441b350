package inventory

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

// ActionRequest is the optional JSON body of
// POST /v1/devices/{id}/actions/{action}; each action accepts only the
// fields it uses.
type ActionRequest struct {
	Message                string `json:"message,omitempty"`
	PhoneNumber            string `json:"phone_number,omitempty"`
	Footnote               string `json:"footnote,omitempty"`
	PIN                    string `json:"pin,omitempty"`
	Name                   string `json:"name,omitempty"`
	PreserveDataPlan       *bool  `json:"preserve_data_plan,omitempty"`
	DisallowProximitySetup *bool  `json:"disallow_proximity_setup,omitempty"`
	ObliterationBehavior   string `json:"obliteration_behavior,omitempty"`
	NotifyUser             *bool  `json:"notify_user,omitempty"`
	// Destructive actions need Confirm, or Serial equal to the device's.
	Confirm bool   `json:"confirm,omitempty"`
	Serial  string `json:"serial,omitempty"`
}

// ActionResult answers an action.
type ActionResult struct {
	DeviceID     string   `json:"device_id"`
	Action       string   `json:"action"`
	CommandUUID  string   `json:"command_uuid,omitempty"`
	RequestType  string   `json:"request_type,omitempty"`
	CommandUUIDs []string `json:"command_uuids,omitempty"` // refresh queues several
	Pushed       bool     `json:"pushed"`
}

// device is what an action knows of its target.
type device struct {
	e   *storage.Enrollment
	inv *storage.DeviceInventory
}

type actionSpec struct {
	requestType string   // "" for sync and refresh
	fields      []string // body fields accepted
	destructive bool
	payload     func(ctx context.Context, i *Inventory, d device, req *ActionRequest) (map[string]any, error)
}

var confirmFields = []string{"confirm", "serial"}

var actions = map[string]actionSpec{
	"sync":               {},
	"refresh":            {},
	"lock":               {requestType: "DeviceLock", fields: []string{"message", "phone_number", "pin"}, payload: lockPayload},
	"erase":              {requestType: "EraseDevice", fields: append([]string{"pin", "preserve_data_plan", "disallow_proximity_setup", "obliteration_behavior"}, confirmFields...), destructive: true, payload: erasePayload},
	"clear-passcode":     {requestType: "ClearPasscode", payload: clearPasscodePayload},
	"restart":            {requestType: "RestartDevice", fields: []string{"notify_user"}, payload: restartPayload},
	"shutdown":           {requestType: "ShutDownDevice"},
	"rename":             {requestType: "Settings", fields: []string{"name"}, payload: renamePayload},
	"lost-mode-enable":   {requestType: "EnableLostMode", fields: []string{"message", "phone_number", "footnote"}, payload: lostModePayload},
	"lost-mode-disable":  {requestType: "DisableLostMode"},
	"lost-mode-location": {requestType: "DeviceLocation"},
	"retire":             {requestType: "RemoveProfile", fields: confirmFields, destructive: true, payload: retirePayload},
}

func actionNames() string {
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// maxActionBody bounds an action's body; the longest field is a message.
const maxActionBody = 64 << 10

func decodeAction(w http.ResponseWriter, r *http.Request, name string, spec actionSpec) (*ActionRequest, error) {
	req := &ActionRequest{}
	body, err := apijson.ReadBody(w, r, maxActionBody)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fail(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	for k := range fields {
		if !slices.Contains(spec.fields, k) {
			if len(spec.fields) == 0 {
				return nil, fail(http.StatusBadRequest, "%s takes no body fields (got %q)", name, k)
			}
			return nil, fail(http.StatusBadRequest, "%s does not take %q (it takes %s)", name, k, strings.Join(spec.fields, ", "))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, fail(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	return req, nil
}

// Action serves POST /v1/devices/{id}/actions/{action}.
func (i *Inventory) Action(w http.ResponseWriter, r *http.Request) {
	res, err := i.runAction(w, r)
	if err != nil {
		apijson.Fail(w, r, i.log, err)
		return
	}
	code := http.StatusCreated
	if res.CommandUUID == "" && len(res.CommandUUIDs) == 0 {
		code = http.StatusAccepted // sync: a push, nothing stored
	}
	apijson.WriteJSON(w, code, res)
}

func (i *Inventory) runAction(w http.ResponseWriter, r *http.Request) (*ActionResult, error) {
	id, err := deviceID(r)
	if err != nil {
		return nil, err
	}
	name := r.PathValue("action")
	spec, ok := actions[name]
	if !ok {
		return nil, fail(http.StatusNotFound, "unknown action %q (%s)", name, actionNames())
	}
	req, err := decodeAction(w, r, name, spec)
	if err != nil {
		return nil, err
	}
	e, rec, err := i.device(r, id)
	if err != nil {
		return nil, err
	}
	if e == nil || !e.Enrolled {
		return nil, fail(http.StatusConflict, "device %s is not enrolled", id)
	}
	d := device{e: e, inv: rec}
	if spec.destructive {
		if err := confirmed(name, d, req); err != nil {
			return nil, err
		}
	}
	ctx := context.WithoutCancel(r.Context())
	res := &ActionResult{DeviceID: id, Action: name, RequestType: spec.requestType}
	switch name {
	case "sync":
		if ok, err := i.push(ctx, id); !ok {
			return nil, fail(http.StatusConflict, "nothing was pushed: %v", err)
		}
		res.Pushed = true
		return res, nil
	case "refresh":
		uuids, err := i.refresh(ctx, e, false, true)
		switch {
		case errors.Is(err, ErrOutstanding):
			return nil, fail(http.StatusConflict, "inventory queries sent earlier are not answered yet")
		case errors.Is(err, errRetired):
			return nil, fail(http.StatusConflict, "device %s is retired", id)
		case err != nil:
			return nil, err
		}
		i.setNext(id, i.now().Add(i.interval))
		res.CommandUUIDs = uuids
		res.Pushed, _ = i.push(ctx, id)
		return res, nil
	}
	c, ok := commands.Lookup(spec.requestType)
	if !ok {
		return nil, errors.New("inventory: action " + name + " names an unknown request type")
	}
	if err := c.Eligible(targetOf(d)); err != nil {
		return nil, fail(http.StatusUnprocessableEntity, "%v", err)
	}
	var payload map[string]any
	if spec.payload != nil {
		if payload, err = spec.payload(ctx, i, d, req); err != nil {
			return nil, err
		}
	}
	if err := supportedKeys(c, d.inv.Platform, payload); err != nil {
		return nil, err
	}
	cmd, err := i.cmds.Build(spec.requestType, payload)
	var bad *commands.Error
	if errors.As(err, &bad) {
		return nil, fail(http.StatusBadRequest, "%v", err)
	} else if err != nil {
		return nil, err
	}
	// Pushed below, once the retire mark is written.
	if _, err := i.cmds.Queue(ctx, []string{id}, command.NoPush, cmd); errors.Is(err, storage.ErrNotFound) {
		return nil, fail(http.StatusConflict, "device %s is not enrolled", id)
	} else if err != nil {
		return nil, err
	}
	if name == "retire" {
		now := i.now()
		_, err := i.store.UpdateInventory(ctx, id, func(inv *storage.DeviceInventory) error {
			seed(inv, e, now, false)
			inv.Retired, inv.RetiredAt, inv.RetireCommand = true, now, cmd.UUID
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	i.log.Info("device action queued", "device", id, "action", name, "command", cmd.UUID)
	res.CommandUUID = cmd.UUID
	res.Pushed, _ = i.push(ctx, id)
	return res, nil
}

// confirmed checks a destructive action was meant: confirm, or the
// device's serial number repeated.
func confirmed(name string, d device, req *ActionRequest) error {
	serial := d.inv.SerialNumber
	if serial == "" && d.e.Facts != nil {
		serial = d.e.Facts.SerialNumber
	}
	switch {
	case req.Serial != "" && (serial == "" || !strings.EqualFold(req.Serial, serial)):
		return fail(http.StatusBadRequest, "%s: serial %q is not this device's serial number", name, req.Serial)
	case req.Serial != "", req.Confirm:
		return nil
	}
	return fail(http.StatusBadRequest, `%s is destructive: send {"confirm": true} or the device's serial number as "serial"`, name)
}

// targetOf is what the schema's eligibility rules can know of a device.
func targetOf(d device) commands.Target {
	t := commands.Target{Platform: d.inv.Platform, OSVersion: d.inv.OSVersion, Channel: commands.DeviceChannel}
	if d.inv.Supervised != nil {
		t.Supervised = commands.Known(*d.inv.Supervised)
	}
	t.UserEnrollment = commands.Known(d.e.Type == storage.UserEnrollmentDevice)
	switch {
	case d.inv.MultiUser != nil:
		t.SharedIPad = commands.Known(*d.inv.MultiUser)
	case d.inv.Platform != "" && d.inv.Platform != IPadOS:
		t.SharedIPad = commands.No
	}
	switch {
	case d.inv.EnrolledViaDEP != nil:
		t.ADE = commands.Known(*d.inv.EnrolledViaDEP)
	case d.e.EnrollmentMethod == storage.KindADE:
		t.ADE = commands.Yes
	}
	return t
}

// supportedKeys refuses payload keys Apple's schema says the device's
// platform does not support.
func supportedKeys(c *commands.Command, platform string, payload map[string]any) error {
	os := schemaOS(platform)
	if os == "" {
		return nil
	}
	for _, k := range c.Keys {
		if _, set := payload[k.Name]; set && slices.Contains(k.NotOn, os) {
			return fail(http.StatusUnprocessableEntity, "%s: %s is not supported on %s", c.RequestType, k.Name, platform)
		}
	}
	return nil
}

func setString(p map[string]any, key, v string) {
	if v != "" {
		p[key] = v
	}
}

func setBool(p map[string]any, key string, v *bool) {
	if v != nil {
		p[key] = *v
	}
}

// findMyPIN checks a macOS Find My PIN, required when the Mac said so.
func findMyPIN(p map[string]any, pin string, required *bool, d device, what string) error {
	if pin == "" {
		if d.inv.Platform == MacOS && required != nil && *required {
			return fail(http.StatusUnprocessableEntity, "this Mac needs a six-digit pin to %s", what)
		}
		return nil
	}
	if len(pin) != 6 || strings.Trim(pin, "0123456789") != "" {
		return fail(http.StatusBadRequest, "pin must be six digits")
	}
	p["PIN"] = pin
	return nil
}

func lockPayload(_ context.Context, _ *Inventory, d device, req *ActionRequest) (map[string]any, error) {
	p := map[string]any{}
	setString(p, "Message", req.Message)
	setString(p, "PhoneNumber", req.PhoneNumber)
	return p, findMyPIN(p, req.PIN, d.inv.PINRequiredForDeviceLock, d, "lock")
}

func erasePayload(_ context.Context, _ *Inventory, d device, req *ActionRequest) (map[string]any, error) {
	p := map[string]any{}
	setBool(p, "PreserveDataPlan", req.PreserveDataPlan)
	setBool(p, "DisallowProximitySetup", req.DisallowProximitySetup)
	setString(p, "ObliterationBehavior", req.ObliterationBehavior)
	return p, findMyPIN(p, req.PIN, d.inv.PINRequiredForEraseDevice, d, "erase")
}

func clearPasscodePayload(ctx context.Context, i *Inventory, d device, _ *ActionRequest) (map[string]any, error) {
	tok, err := i.unlock.UnlockToken(ctx, d.e.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(http.StatusConflict, "no unlock token is escrowed for %s: the passcode cannot be cleared", d.e.ID)
	}
	if err != nil {
		return nil, err
	}
	// BuildCommand takes data as base64, as the JSON API does.
	return map[string]any{"UnlockToken": base64.StdEncoding.EncodeToString(tok)}, nil
}

func restartPayload(_ context.Context, _ *Inventory, _ device, req *ActionRequest) (map[string]any, error) {
	p := map[string]any{}
	setBool(p, "NotifyUser", req.NotifyUser)
	return p, nil
}

// maxDeviceName bounds a new device name (iOS allows far less in practice).
const maxDeviceName = 255

func renamePayload(_ context.Context, _ *Inventory, _ device, req *ActionRequest) (map[string]any, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > maxDeviceName || strings.ContainsAny(name, "\r\n\x00") {
		return nil, fail(http.StatusBadRequest, "name must be 1..%d bytes on one line", maxDeviceName)
	}
	return map[string]any{"Settings": []any{map[string]any{"Item": "DeviceName", "DeviceName": name}}}, nil
}

func lostModePayload(_ context.Context, _ *Inventory, _ device, req *ActionRequest) (map[string]any, error) {
	if req.Message == "" && req.PhoneNumber == "" {
		return nil, fail(http.StatusBadRequest, "lost mode needs a message or a phone_number to show on the Lock screen")
	}
	p := map[string]any{}
	setString(p, "Message", req.Message)
	setString(p, "PhoneNumber", req.PhoneNumber)
	setString(p, "Footnote", req.Footnote)
	return p, nil
}

func retirePayload(_ context.Context, i *Inventory, _ device, _ *ActionRequest) (map[string]any, error) {
	return map[string]any{"Identifier": i.profile}, nil
}

// Target is what Apple's eligibility rules can know of a device channel
// from its inventory (platform, OS version, supervision, Shared iPad, ADE),
// seeded from what the device said at enrollment when it has answered
// nothing yet. The admin API checks every command against it.
func (i *Inventory) Target(ctx context.Context, e *storage.Enrollment) commands.Target {
	dev := e
	if e.DeviceID != e.ID {
		if d, err := i.store.Enrollment(ctx, e.DeviceID); err == nil {
			dev = d
		}
	}
	rec, err := i.store.Inventory(ctx, dev.ID)
	if err != nil {
		rec = &storage.DeviceInventory{DeviceID: dev.ID}
		seed(rec, dev, dev.EnrolledAt, false)
	}
	t := targetOf(device{e: dev, inv: rec})
	if e.ID != e.DeviceID {
		t.Channel = commands.UserChannel
	}
	return t
}
