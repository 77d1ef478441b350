package mdm_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

// commandSamples are payloads whose plist types survive a round trip
// unchanged (strings, data, bools, arrays, dictionaries).
func commandSamples() []struct {
	uuid string
	cmd  mdm.CommandPayload
} {
	return []struct {
		uuid string
		cmd  mdm.CommandPayload
	}{
		{"6F1C2B4A-9D3E-4A57-8B21-0C6E5D4F3A29", mdm.CommandPayload{
			"RequestType": "DeviceInformation",
			"Queries":     []any{"UDID", "SerialNumber", "OSVersion", "DeviceName"},
		}},
		{"0E2D4C6B-8A19-4F3E-9D7C-1B5A3E7F9C02", mdm.CommandPayload{"RequestType": "ProfileList"}},
		{"install-1", mdm.CommandPayload{
			"RequestType": "InstallProfile",
			"Payload":     []byte("<?xml version=\"1.0\"?>\x00\x01\xff binary-safe"),
		}},
		{"settings-1", mdm.CommandPayload{
			"RequestType": "Settings",
			"Settings": []any{
				map[string]any{"Item": "DeviceName", "DeviceName": "Front Desk <iPhone> & \"co\""},
				map[string]any{"Item": "Bluetooth", "Enabled": true},
			},
		}},
		{strings.Repeat("u", mdm.MaxCommandUUIDLen), mdm.CommandPayload{"RequestType": "RestartDevice", "NotifyUser": false}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, s := range commandSamples() {
		t.Run(s.cmd["RequestType"].(string), func(t *testing.T) {
			raw, err := mdm.EncodeCommand(s.uuid, s.cmd)
			if err != nil {
				t.Fatalf("EncodeCommand: %v", err)
			}
			uuid, rt, cmd, err := mdm.DecodeCommand(raw)
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if uuid != s.uuid || rt != s.cmd["RequestType"] {
				t.Errorf("DecodeCommand = %q, %q; want %q, %q", uuid, rt, s.uuid, s.cmd["RequestType"])
			}
			if !reflect.DeepEqual(cmd, s.cmd) {
				t.Errorf("payload changed in the round trip:\n got %#v\nwant %#v", cmd, s.cmd)
			}
			// The wire form is what a device sees: the Apple envelope keys.
			m := generic(t, raw)
			if m["CommandUUID"] != s.uuid {
				t.Errorf("envelope CommandUUID = %#v", m["CommandUUID"])
			}
			if inner, _ := m["Command"].(map[string]any); inner["RequestType"] != s.cmd["RequestType"] {
				t.Errorf("envelope Command = %#v", m["Command"])
			}
		})
	}
}

func TestEncodeCommandRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		uuid string
		cmd  mdm.CommandPayload
	}{
		{"no uuid", "", mdm.CommandPayload{"RequestType": "ProfileList"}},
		{"uuid too long", strings.Repeat("u", mdm.MaxCommandUUIDLen+1), mdm.CommandPayload{"RequestType": "ProfileList"}},
		{"no RequestType", "u1", mdm.CommandPayload{"Queries": []any{"UDID"}}},
		{"empty RequestType", "u1", mdm.CommandPayload{"RequestType": ""}},
		{"RequestType not a string", "u1", mdm.CommandPayload{"RequestType": 7}},
		{"nil payload", "u1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := mdm.EncodeCommand(tc.uuid, tc.cmd)
			if !errors.Is(err, mdm.ErrBadCommand) {
				t.Fatalf("EncodeCommand = %q, %v; want an error wrapping ErrBadCommand", raw, err)
			}
		})
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"empty", ""},
		{"garbage", "not a plist"},
		{"array", `<plist version="1.0"><array><string>x</string></array></plist>`},
		{"no Command", `<plist version="1.0"><dict><key>CommandUUID</key><string>u1</string></dict></plist>`},
		{"no RequestType", `<plist version="1.0"><dict><key>CommandUUID</key><string>u1</string><key>Command</key><dict/></dict></plist>`},
		{"RequestType integer", `<plist version="1.0"><dict><key>CommandUUID</key><string>u1</string><key>Command</key><dict><key>RequestType</key><integer>1</integer></dict></dict></plist>`},
		{"Command not a dict", `<plist version="1.0"><dict><key>CommandUUID</key><string>u1</string><key>Command</key><string>ProfileList</string></dict></plist>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := mdm.DecodeCommand([]byte(tc.raw))
			if !errors.Is(err, mdm.ErrBadCommand) {
				t.Fatalf("DecodeCommand error = %v, want one wrapping ErrBadCommand", err)
			}
		})
	}
}
