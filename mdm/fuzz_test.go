package mdm_test

import (
	"errors"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

// checkChannelKey is the property every decoded message must hold: its
// channel key is a valid storage key naming the same device and user.
func checkChannelKey(t *testing.T, c mdm.Channel) {
	t.Helper()
	back, err := mdm.ParseChannelID(c.ID())
	if err != nil {
		t.Fatalf("decoded channel %+v has key %q that ParseChannelID refuses: %v", c, c.ID(), err)
	}
	if back.DeviceID != c.DeviceID || back.UserID != c.UserID || back.ID() != c.ID() {
		t.Fatalf("channel %+v does not round-trip through its key: %+v", c, back)
	}
}

func seedAll(f *testing.F, dirs ...string) {
	for _, d := range dirs {
		for _, fx := range fixtures(f, d, "") {
			f.Add(fx.raw)
		}
	}
	// Past the nesting limit, with arrays and with dicts.
	f.Add(nested(mdm.MaxPlistDepth+1, "<array>", "</array>"))
	f.Add(nested(mdm.MaxPlistDepth+1, "<dict><key>UDID</key>", "</dict>"))
}

func FuzzDecodeCheckin(f *testing.F) {
	seedAll(f, "checkin", "bad")
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := mdm.DecodeCheckin(raw)
		if err != nil {
			if !errors.Is(err, mdm.ErrParse) {
				t.Fatalf("error %v does not wrap ErrParse", err)
			}
			return
		}
		if c.Type == "" || c.Message == nil {
			t.Fatalf("accepted a check-in without type or message: %+v", c)
		}
		checkChannelKey(t, c.Channel)
	})
}

func FuzzDecodeReport(f *testing.F) {
	seedAll(f, "report", "bad")
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := mdm.DecodeReport(raw)
		if err != nil {
			if !errors.Is(err, mdm.ErrParse) {
				t.Fatalf("error %v does not wrap ErrParse", err)
			}
			return
		}
		switch r.Status {
		case mdm.StatusIdle:
		case mdm.StatusAcknowledged, mdm.StatusError, mdm.StatusCommandFormatError, mdm.StatusNotNow:
			if r.CommandUUID == "" || len(r.CommandUUID) > mdm.MaxCommandUUIDLen {
				t.Fatalf("accepted %s with CommandUUID %q", r.Status, r.CommandUUID)
			}
		default:
			t.Fatalf("accepted Status %q", r.Status)
		}
		checkChannelKey(t, r.Channel)
	})
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range commandSamples() {
		raw, err := mdm.EncodeCommand(s.uuid, s.cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>X</string></dict></dict></plist>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		uuid, rt, cmd, err := mdm.DecodeCommand(raw)
		if err != nil {
			if !errors.Is(err, mdm.ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if rt == "" || cmd["RequestType"] != rt {
			t.Fatalf("accepted RequestType %q with payload %#v", rt, cmd)
		}
		if uuid == "" || len(uuid) > mdm.MaxCommandUUIDLen {
			return // EncodeCommand refuses these; the caller assigns a UUID
		}
		// What decodes must re-encode and decode to the same envelope.
		again, err := mdm.EncodeCommand(uuid, cmd)
		if err != nil {
			t.Fatalf("EncodeCommand of a decoded command: %v", err)
		}
		uuid2, rt2, _, err := mdm.DecodeCommand(again)
		if err != nil || uuid2 != uuid || rt2 != rt {
			t.Fatalf("re-encoded command decodes to %q, %q, %v; want %q, %q", uuid2, rt2, err, uuid, rt)
		}
	})
}

func FuzzParseChannelID(f *testing.F) {
	for _, s := range []string{
		iosUDID, macUDID, macUDID + ":" + macUser, ueDevice + ":" + ueUser, legacyUDI,
		"", ":", "a:", ":b", "a:b:c", "a\x00b", "student42@appleid.school.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		c, err := mdm.ParseChannelID(id)
		if err != nil {
			if !errors.Is(err, mdm.ErrBadID) {
				t.Fatalf("error %v does not wrap ErrBadID", err)
			}
			return
		}
		if c.ID() != id {
			t.Fatalf("ParseChannelID(%q).ID() = %q", id, c.ID())
		}
		if len(c.DeviceID) == 0 || len(c.DeviceID) > mdm.MaxIDLen || len(c.UserID) > mdm.MaxIDLen {
			t.Fatalf("accepted out-of-bounds parts %+v", c)
		}
		// The same IDs sent by a device name the same channel (a key whose
		// user is the Shared iPad UserID predates per-user keys: no device
		// message names it any more).
		if mdm.IsSharedIPadUserID(c.UserID) {
			return
		}
		e := mdm.Enrollment{UDID: c.DeviceID, UserID: c.UserID}
		fromDevice, err := e.Channel()
		if err != nil || fromDevice.ID() != id {
			t.Fatalf("Enrollment%+v.Channel() = %+v, %v; want key %q", e, fromDevice, err, id)
		}
	})
}
