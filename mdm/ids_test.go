package mdm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

const (
	iosUDID   = "00008030-001A35E02E38802E"
	macUDID   = "564D4A1E-12AB-4C0E-9E2B-6F2D9C7A1B3F"
	macUser   = "A1B2C3D4-E5F6-4789-ABCD-EF0123456789"
	ueDevice  = "0B3F29E4D1A87C65"
	ueUser    = "9C1D4E7F2A5B8036"
	legacyUDI = "2b6f0cc904d137be2e1730235f5664094b831186" // 40-hex pre-2018 UDID
)

func TestEnrollmentChannel(t *testing.T) {
	max := strings.Repeat("A", mdm.MaxIDLen)
	over := max + "A"
	for _, tc := range []struct {
		name string
		in   mdm.Enrollment
		want mdm.Channel // zero means an error is expected
	}{
		{"iOS UDID", mdm.Enrollment{UDID: iosUDID}, mdm.Channel{DeviceID: iosUDID}},
		{"macOS UDID", mdm.Enrollment{UDID: macUDID}, mdm.Channel{DeviceID: macUDID}},
		{"legacy UDID", mdm.Enrollment{UDID: legacyUDI}, mdm.Channel{DeviceID: legacyUDI}},
		{"UDID at max length", mdm.Enrollment{UDID: max}, mdm.Channel{DeviceID: max}},
		{"macOS user", mdm.Enrollment{UDID: macUDID, UserID: macUser}, mdm.Channel{DeviceID: macUDID, UserID: macUser}},
		{"user ID with . _ @", mdm.Enrollment{UDID: macUDID, UserID: "a.b_c@d-e"}, mdm.Channel{DeviceID: macUDID, UserID: "a.b_c@d-e"}},
		{"user ID at max length", mdm.Enrollment{UDID: macUDID, UserID: max}, mdm.Channel{DeviceID: macUDID, UserID: max}},
		{"user enrollment device", mdm.Enrollment{EnrollmentID: ueDevice}, mdm.Channel{DeviceID: ueDevice, UserEnrollment: true}},
		{"user enrollment user", mdm.Enrollment{EnrollmentID: ueDevice, EnrollmentUserID: ueUser}, mdm.Channel{DeviceID: ueDevice, UserID: ueUser, UserEnrollment: true}},
		{"Shared iPad user", mdm.Enrollment{UDID: iosUDID, UserID: mdm.SharedIPadUserID, UserShortName: "ann@school.example"}, mdm.Channel{DeviceID: iosUDID, UserID: "ann@school.example", SharedIPad: true}},
		{"Shared iPad UserID in lower case", mdm.Enrollment{UDID: iosUDID, UserID: strings.ToLower(mdm.SharedIPadUserID), UserShortName: "bob"}, mdm.Channel{DeviceID: iosUDID, UserID: "bob", SharedIPad: true}},
		{"Shared iPad user without a short name", mdm.Enrollment{UDID: iosUDID, UserID: mdm.SharedIPadUserID}, mdm.Channel{}},
		{"Shared iPad short name with separator", mdm.Enrollment{UDID: iosUDID, UserID: mdm.SharedIPadUserID, UserShortName: "a:b"}, mdm.Channel{}},
		{"Shared iPad short name that is the Shared iPad UserID", mdm.Enrollment{UDID: iosUDID, UserID: mdm.SharedIPadUserID, UserShortName: mdm.SharedIPadUserID}, mdm.Channel{}},
		{"macOS user keyed by UserID, not short name", mdm.Enrollment{UDID: macUDID, UserID: macUser, UserShortName: "ann"}, mdm.Channel{DeviceID: macUDID, UserID: macUser}},
		{"names do not matter", mdm.Enrollment{UDID: macUDID, UserShortName: "a:b", UserLongName: "x\ny"}, mdm.Channel{DeviceID: macUDID}},

		{"empty", mdm.Enrollment{}, mdm.Channel{}},
		{"only a user", mdm.Enrollment{UserID: macUser}, mdm.Channel{}},
		{"only an enrollment user", mdm.Enrollment{EnrollmentUserID: ueUser}, mdm.Channel{}},
		{"UDID too long", mdm.Enrollment{UDID: over}, mdm.Channel{}},
		{"EnrollmentID too long", mdm.Enrollment{EnrollmentID: over}, mdm.Channel{}},
		{"UserID too long", mdm.Enrollment{UDID: macUDID, UserID: over}, mdm.Channel{}},
		{"EnrollmentUserID too long", mdm.Enrollment{EnrollmentID: ueDevice, EnrollmentUserID: over}, mdm.Channel{}},
		{"UDID with separator", mdm.Enrollment{UDID: macUDID + ":" + macUser}, mdm.Channel{}},
		{"EnrollmentID with separator", mdm.Enrollment{EnrollmentID: ueDevice + ":x"}, mdm.Channel{}},
		{"UserID with separator", mdm.Enrollment{UDID: macUDID, UserID: "a:b"}, mdm.Channel{}},
		{"EnrollmentUserID with separator", mdm.Enrollment{EnrollmentID: ueDevice, EnrollmentUserID: "a:b"}, mdm.Channel{}},
		{"UDID with slash", mdm.Enrollment{UDID: "../../etc"}, mdm.Channel{}},
		{"UDID with NUL", mdm.Enrollment{UDID: "abc\x00def"}, mdm.Channel{}},
		{"UDID with space", mdm.Enrollment{UDID: "abc def"}, mdm.Channel{}},
		{"UDID with dot", mdm.Enrollment{UDID: "abc.def"}, mdm.Channel{}},
		{"UDID non-ASCII", mdm.Enrollment{UDID: "ÄBC"}, mdm.Channel{}},
		{"UserID with NUL", mdm.Enrollment{UDID: macUDID, UserID: "a\x00"}, mdm.Channel{}},
		{"UserID with slash", mdm.Enrollment{UDID: macUDID, UserID: "a/b"}, mdm.Channel{}},
		{"both UDID and EnrollmentID", mdm.Enrollment{UDID: iosUDID, EnrollmentID: ueDevice}, mdm.Channel{}},
		{"EnrollmentUserID with UDID", mdm.Enrollment{UDID: iosUDID, EnrollmentUserID: ueUser}, mdm.Channel{}},
		{"UserID with EnrollmentID", mdm.Enrollment{EnrollmentID: ueDevice, UserID: macUser}, mdm.Channel{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Channel()
			if tc.want == (mdm.Channel{}) {
				if !errors.Is(err, mdm.ErrBadID) {
					t.Fatalf("Channel() = %+v, %v; want an error wrapping ErrBadID", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Channel(): %v", err)
			}
			if got != tc.want {
				t.Fatalf("Channel() = %+v, want %+v", got, tc.want)
			}
			// The key must parse back to the same device and user.
			back, err := mdm.ParseChannelID(got.ID())
			if err != nil {
				t.Fatalf("ParseChannelID(%q): %v", got.ID(), err)
			}
			if back.DeviceID != got.DeviceID || back.UserID != got.UserID {
				t.Errorf("ParseChannelID(%q) = %+v, want device %q user %q", got.ID(), back, got.DeviceID, got.UserID)
			}
		})
	}
}

func TestParseChannelID(t *testing.T) {
	max := strings.Repeat("f", mdm.MaxIDLen)
	for _, tc := range []struct {
		id         string
		ok         bool
		dev, user  string
		wantIsUser bool
	}{
		{id: iosUDID, ok: true, dev: iosUDID},
		{id: macUDID + ":" + macUser, ok: true, dev: macUDID, user: macUser, wantIsUser: true},
		{id: ueDevice + ":" + ueUser, ok: true, dev: ueDevice, user: ueUser, wantIsUser: true},
		{id: max, ok: true, dev: max},
		{id: max + ":" + max, ok: true, dev: max, user: max, wantIsUser: true},
		{id: ""},
		{id: ":"},
		{id: ":" + macUser},
		{id: macUDID + ":"},
		{id: macUDID + ":" + macUser + ":x"},
		{id: max + "f"},
		{id: macUDID + ":" + max + "f"},
		{id: "abc\x00"},
		{id: "abc/def"},
		{id: "abc def"},
		{id: "abc:d/e"},
		{id: "abc:d e"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			c, err := mdm.ParseChannelID(tc.id)
			if !tc.ok {
				if !errors.Is(err, mdm.ErrBadID) {
					t.Fatalf("ParseChannelID = %+v, %v; want an error wrapping ErrBadID", c, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChannelID: %v", err)
			}
			if c.DeviceID != tc.dev || c.UserID != tc.user || c.IsUser() != tc.wantIsUser {
				t.Errorf("ParseChannelID = %+v (IsUser %v), want device %q user %q", c, c.IsUser(), tc.dev, tc.user)
			}
			if c.ID() != tc.id {
				t.Errorf("ID() = %q, want %q", c.ID(), tc.id)
			}
		})
	}
}

// A user channel's key can never be taken for a device key: neither by the
// device decoder (UDID/EnrollmentID) nor as the key of another device.
func TestUserKeyNeverADeviceKey(t *testing.T) {
	users := []mdm.Enrollment{
		{UDID: macUDID, UserID: macUser},
		{UDID: iosUDID, UserID: "student42@appleid.school.example"},
		{EnrollmentID: ueDevice, EnrollmentUserID: ueUser},
		{UDID: "A", UserID: "B"},
	}
	for _, e := range users {
		c, err := e.Channel()
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		key := c.ID()
		if !c.IsUser() || !strings.Contains(key, mdm.ChannelSeparator) {
			t.Fatalf("user channel %+v has key %q without the separator", c, key)
		}
		for _, dev := range []mdm.Enrollment{{UDID: key}, {EnrollmentID: key}} {
			if got, err := dev.Channel(); err == nil {
				t.Errorf("user key %q accepted as a device ID: %+v", key, got)
			}
		}
		if p, err := mdm.ParseChannelID(key); err != nil || !p.IsUser() {
			t.Errorf("ParseChannelID(%q) = %+v, %v; want a user channel", key, p, err)
		}
		dev, _ := mdm.Enrollment{UDID: c.DeviceID}.Channel()
		if c.UserEnrollment {
			dev, _ = mdm.Enrollment{EnrollmentID: c.DeviceID}.Channel()
		}
		if dev.ID() == key || dev.IsUser() {
			t.Errorf("device %q and its user share the key %q", c.DeviceID, key)
		}
	}
}

func TestFoldDeviceID(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"00008030-001A35E11E88802E", "00008030-001a35e11e88802e"},
		{"0123456789abcdef0123456789ABCDEF01234567", "0123456789ABCDEF0123456789abcdef01234567"},
		{"6f1c2b4a-9d3e-4a57-8b21-0c6e5d4f3a29", "6F1C2B4A-9D3E-4A57-8B21-0C6E5D4F3A29"},
	} {
		if !mdm.SameDeviceID(tc.a, tc.b) {
			t.Errorf("%s and %s are the same hex device ID", tc.a, tc.b)
		}
	}
	// Not Apple's hex shapes: compared exactly.
	for _, tc := range []struct{ a, b string }{
		{"DEV-A", "dev-a"},
		{"abcdef", "ABCDEF"},
		{"00008030-001A35E11E88802G", "00008030-001a35e11e88802g"},
		{"00008030-001A35E11E88802E-", "00008030-001a35e11e88802e-"},
	} {
		if mdm.SameDeviceID(tc.a, tc.b) {
			t.Errorf("%s and %s compared case-insensitively", tc.a, tc.b)
		}
	}
	if got := mdm.FoldDeviceID("00008030-001a35e11e88802e"); got != "00008030-001A35E11E88802E" {
		t.Errorf("FoldDeviceID = %q", got)
	}
}
