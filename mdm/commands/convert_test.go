package commands_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/mdm/commands"
)

const testUUID = "7A1E2C3D-0000-4000-8000-000000000001"

func TestFromJSONFixtures(t *testing.T) {
	tests := []struct {
		file string
		want map[string]any
	}{
		{"installprofile.json", map[string]any{
			"RequestType": "InstallProfile",
			"Payload":     []byte(`<?xml version="1.0"?>`),
		}},
		{"settings.json", map[string]any{
			"RequestType": "Settings",
			"Settings": []any{
				map[string]any{"Item": "DeviceName", "DeviceName": "Front desk"},
				map[string]any{"Item": "Wallpaper", "Image": []byte("\x89PNG\r\n\x1a\n"), "Where": uint64(3)},
				map[string]any{"Item": "AccessibilitySettings", "TextSize": uint64(4)},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			out, err := commands.FromJSON(testUUID, body)
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			// Decode with the plist library alone: this is what a device sees.
			var got struct {
				CommandUUID string
				Command     map[string]any
			}
			if err := plist.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if got.CommandUUID != testUUID || !reflect.DeepEqual(got.Command, tt.want) {
				t.Errorf("got %q %#v\nwant %#v", got.CommandUUID, got.Command, tt.want)
			}
			if !bytes.Contains(out, []byte("<data>")) {
				t.Errorf("no <data> element in\n%s", out)
			}
		})
	}
}

func TestFromJSONRefuses(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown request type", `{"request_type":"Nope"}`, `RequestType "Nope" is not an MDM command`},
		{"missing request type", `{"payload":{}}`, `request_type: is required`},
		{"unknown top-level field", `{"request_type":"DeviceLock","extra":1}`, `invalid JSON request: json: unknown field "extra"`},
		{"trailing data", `{"request_type":"DeviceLock"} {}`, `invalid JSON request: data after the object`},
		{"not JSON", `request_type=DeviceLock`, `invalid JSON request: invalid character 'r' looking for beginning of value`},
		{"payload not an object", `{"request_type":"DeviceLock","payload":[1]}`, `invalid JSON request: json: cannot unmarshal array into Go struct field Request.payload of type map[string]interface {}`},
		{"unknown key", `{"request_type":"DeviceLock","payload":{"Foo":1}}`, `Payload: unknown key "Foo"`},
		{"RequestType inside payload", `{"request_type":"DeviceLock","payload":{"RequestType":"EraseDevice"}}`, `Payload: unknown key "RequestType"`},
		{"number for string", `{"request_type":"DeviceLock","payload":{"PIN":123456}}`, `Payload.PIN: must be a string`},
		{"null for string", `{"request_type":"DeviceLock","payload":{"Message":null}}`, `Payload.Message: must be a string`},
		{"missing required", `{"request_type":"InstallProfile","payload":{}}`, `Payload.Payload: required key is missing`},
		{"missing required nested", `{"request_type":"EraseDevice","payload":{"ReturnToService":{}}}`, `Payload.ReturnToService.Enabled: required key is missing`},
		{"bad base64", `{"request_type":"InstallProfile","payload":{"Payload":"not base64!"}}`, `Payload.Payload: must be a base64 string: illegal base64 data at input byte 3`},
		{"data as number", `{"request_type":"InstallProfile","payload":{"Payload":12}}`, `Payload.Payload: must be a base64 string`},
		{"string outside rangelist", `{"request_type":"EraseDevice","payload":{"ObliterationBehavior":"Sometimes"}}`, `Payload.ObliterationBehavior: must be one of "Default", "DoNotObliterate", "ObliterateWithWarning", "Always"`},
		{"integer outside rangelist", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"ManagementFlags":2}}`, `Payload.ManagementFlags: must be one of 1, 4, 5`},
		{"fraction for integer", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"ManagementFlags":1.5}}`, `Payload.ManagementFlags: must be an integer`},
		{"integer overflow", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":9223372036854775808}}`, `Payload.iTunesStoreID: must be an integer`},
		{"string for boolean", `{"request_type":"EraseDevice","payload":{"PreserveDataPlan":"true"}}`, `Payload.PreserveDataPlan: must be a boolean`},
		{"string for array", `{"request_type":"DeviceInformation","payload":{"Queries":"UDID"}}`, `Payload.Queries: must be an array`},
		{"wrong array element type", `{"request_type":"DeviceInformation","payload":{"Queries":["UDID",5]}}`, `Payload.Queries[1]: must be a string`},
		{"array element outside values", `{"request_type":"DeviceInformation","payload":{"Queries":["Bogus"]}}`, `Payload.Queries[0]: must be one of "UDID", `},
		{"array for dictionary", `{"request_type":"EraseDevice","payload":{"ReturnToService":[]}}`, `Payload.ReturnToService: must be a dictionary`},
		{"settings item unknown", `{"request_type":"Settings","payload":{"Settings":[{"Item":"Nope"}]}}`, `Payload.Settings[0]: matches none of the allowed items (Item="Wallpaper", Item="DataRoaming", `},
		{"settings item not a dict", `{"request_type":"Settings","payload":{"Settings":["DeviceName"]}}`, `Payload.Settings[0]: must be a dictionary`},
		{"settings variant key wrong", `{"request_type":"Settings","payload":{"Settings":[{"Item":"Wallpaper","Image":"AA==","Where":4}]}}`, `Payload.Settings[0].Where: must be one of 1, 2, 3`},
		{"settings key from other variant", `{"request_type":"Settings","payload":{"Settings":[{"Item":"DeviceName","DeviceName":"x","Where":1}]}}`, `Payload.Settings[0]: unknown key "Where"`},
		{"null inside any", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":{"a":null}}}`, `Payload.Configuration.a: null has no plist equivalent`},
		{"odd key name inside any", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":{"a.b\nc":null}}}`, `Payload.Configuration["a.b\nc"]: null has no plist equivalent`},
		{"null deep inside any", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":{"a":[1,{"b":null}]}}}`, `Payload.Configuration.a[1].b: null has no plist equivalent`},
		{"huge number inside any", `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":{"a":1e999}}}`, `Payload.Configuration.a: has a value (json.Number) with no plist equivalent`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := commands.FromJSON(testUUID, []byte(tt.body))
			if err == nil {
				t.Fatalf("accepted, produced\n%s", out)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q\n  want prefix %q", err, tt.want)
			}
			var ce *commands.Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *commands.Error", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestMarshalRefusesIncompleteInput(t *testing.T) {
	if _, err := commands.Marshal("", map[string]any{"RequestType": "DeviceLock"}); err == nil {
		t.Error("Marshal accepted an empty CommandUUID")
	}
	if _, err := commands.Marshal(testUUID, map[string]any{}); err == nil {
		t.Error("Marshal accepted a command without RequestType")
	}
}

func TestValidatePlistFixtures(t *testing.T) {
	tests := []struct {
		file, uuid, requestType string
		want                    map[string]any
	}{
		{"devicelock.plist", testUUID, "DeviceLock", map[string]any{
			"RequestType": "DeviceLock", "Message": "Call IT", "PIN": "123456",
		}},
		{"settings_bare.plist", "", "Settings", map[string]any{
			"RequestType": "Settings",
			"Settings": []any{
				map[string]any{"Item": "DeviceName", "DeviceName": "Front desk"},
				map[string]any{"Item": "Wallpaper", "Image": []byte("\x89PNG\r\n\x1a\n"), "Where": int64(3)},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, err := commands.ValidatePlist(raw)
			if err != nil {
				t.Fatalf("ValidatePlist: %v", err)
			}
			if got.CommandUUID != tt.uuid || got.RequestType != tt.requestType || !reflect.DeepEqual(got.Command, tt.want) {
				t.Errorf("got %q %q %#v\nwant %q %q %#v", got.CommandUUID, got.RequestType, got.Command, tt.uuid, tt.requestType, tt.want)
			}
		})
	}
}

func mustPlist(t *testing.T, v any) string {
	t.Helper()
	b, err := plist.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidatePlistRefuses(t *testing.T) {
	tests := []struct {
		name string
		doc  any // marshalled to XML plist, unless raw is set
		raw  string
		want string
	}{
		{name: "garbage", raw: "not a plist", want: "invalid plist: "},
		// A self-referencing binary array: decoding it would overflow the stack.
		{name: "binary plist", raw: "bplist00\xa1\x00\x08" + strings.Repeat("\x00", 6) + "\x01\x01" +
			"\x00\x00\x00\x00\x00\x00\x00\x01" + strings.Repeat("\x00", 8) + "\x00\x00\x00\x00\x00\x00\x00\x0a",
			want: "invalid plist: binary plists are not accepted, send XML"},
		// 3 million nested arrays: the decoder used to overflow its stack (issue #10).
		{name: "deep nesting", raw: "<plist><dict><key>RequestType</key><string>Settings</string><key>Settings</key>" +
			strings.Repeat("<array>", 3_000_000) + "</dict></plist>", want: "invalid plist: property list is too deep or too large"},
		{name: "top-level array", raw: mustPlist(t, []any{"a"}), want: "invalid plist: "},
		{name: "unknown envelope key", doc: map[string]any{"CommandUUID": "u", "Command": map[string]any{}, "Extra": true}, want: `unknown key "Extra"`},
		{name: "no CommandUUID", doc: map[string]any{"Command": map[string]any{"RequestType": "DeviceLock"}}, want: `CommandUUID: must be a non-empty string`},
		{name: "Command not a dict", doc: map[string]any{"CommandUUID": "u", "Command": "DeviceLock"}, want: `Command: must be a dictionary`},
		{name: "no RequestType", doc: map[string]any{"CommandUUID": "u", "Command": map[string]any{"PIN": "1"}}, want: `Command.RequestType: must be a string`},
		{name: "unknown request type", doc: map[string]any{"RequestType": "Nope"}, want: `RequestType "Nope" is not an MDM command`},
		{name: "string for data", doc: map[string]any{"RequestType": "InstallProfile", "Payload": "PD94"}, want: `Command.Payload: must be data`},
		{name: "integer for string", doc: map[string]any{"RequestType": "DeviceLock", "PIN": 123456}, want: `Command.PIN: must be a string`},
		{name: "real for integer", doc: map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": 1.5}, want: `Command.iTunesStoreID: must be an integer`},
		{name: "unknown key", doc: map[string]any{"CommandUUID": "u", "Command": map[string]any{"RequestType": "DeviceLock", "Foo": 1}}, want: `Command: unknown key "Foo"`},
		{name: "missing required", doc: map[string]any{"RequestType": "InstallProfile"}, want: `Command.Payload: required key is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if tt.doc != nil {
				raw = mustPlist(t, tt.doc)
			}
			got, err := commands.ValidatePlist([]byte(raw))
			if err == nil {
				t.Fatalf("accepted: %#v", got)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestListingJSON(t *testing.T) {
	b, err := commands.ListingJSON()
	if err != nil {
		t.Fatal(err)
	}
	var listing struct {
		Commands []struct {
			RequestType string `json:"request_type"`
			Platforms   []struct {
				OS            string `json:"os"`
				Introduced    string `json:"introduced"`
				DeviceChannel bool   `json:"device_channel"`
			} `json:"platforms"`
			Keys []struct {
				Key      string `json:"key"`
				Type     string `json:"type"`
				Required bool   `json:"required"`
			} `json:"keys"`
		} `json:"commands"`
	}
	if err := json.Unmarshal(b, &listing); err != nil {
		t.Fatal(err)
	}
	if len(listing.Commands) != len(commands.All()) {
		t.Fatalf("listing has %d commands, All has %d", len(listing.Commands), len(commands.All()))
	}
	found := false
	for i, c := range listing.Commands {
		if i > 0 && listing.Commands[i-1].RequestType >= c.RequestType {
			t.Errorf("listing not sorted/unique at %q", c.RequestType)
		}
		if c.RequestType != "DeviceLock" {
			continue
		}
		found = true
		if len(c.Platforms) == 0 || c.Platforms[0].OS != "iOS" || c.Platforms[0].Introduced != "4.0" || !c.Platforms[0].DeviceChannel {
			t.Errorf("DeviceLock platforms = %+v", c.Platforms)
		}
		keys := map[string]string{}
		for _, k := range c.Keys {
			keys[k.Key] = k.Type
		}
		if keys["PIN"] != "string" || keys["Message"] != "string" {
			t.Errorf("DeviceLock keys = %v", keys)
		}
	}
	if !found {
		t.Error("DeviceLock missing from listing")
	}
}

func TestLookup(t *testing.T) {
	for _, c := range commands.All() {
		got, ok := commands.Lookup(c.RequestType)
		if !ok || got.RequestType != c.RequestType {
			t.Errorf("Lookup(%q) = %v, %v", c.RequestType, got, ok)
		}
		if c.Title == "" {
			t.Errorf("%s has no title", c.RequestType)
		}
	}
	if _, ok := commands.Lookup("devicelock"); ok {
		t.Error("Lookup is case-insensitive; request types are exact")
	}
}

func TestFromJSONRefusesDeepAny(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)
	body := `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":` + deep + `}}`
	_, err := commands.FromJSON(testUUID, []byte(body))
	if err == nil || !strings.HasSuffix(err.Error(), ": nests deeper than 32 levels") {
		t.Fatalf("error = %v", err)
	}
	shallow := strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 20)
	body = `{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":` + shallow + `}}`
	if _, err := commands.FromJSON(testUUID, []byte(body)); err != nil {
		t.Fatalf("20 levels refused: %v", err)
	}
}
