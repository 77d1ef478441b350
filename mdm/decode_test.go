package mdm_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

// wantChannel derives the channel a fixture names from its generic decoding.
func wantChannel(m map[string]any) mdm.Channel {
	if id := str(m, "EnrollmentID"); id != "" {
		return mdm.Channel{DeviceID: id, UserID: str(m, "EnrollmentUserID"), UserEnrollment: true}
	}
	if str(m, "UserID") == "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" {
		// Apple's Shared iPad UserID, the same for every user: the short
		// name (Managed Apple Account) tells them apart.
		return mdm.Channel{DeviceID: str(m, "UDID"), UserID: str(m, "UserShortName"), SharedIPad: true}
	}
	return mdm.Channel{DeviceID: str(m, "UDID"), UserID: str(m, "UserID")}
}

func checkChannel(t *testing.T, got mdm.Channel, m map[string]any) {
	t.Helper()
	want := wantChannel(m)
	if got != want {
		t.Errorf("Channel = %+v, fixture says %+v", got, want)
	}
	wantID := want.DeviceID
	if want.UserID != "" {
		wantID += ":" + want.UserID
	}
	if got.ID() != wantID {
		t.Errorf("Channel.ID() = %q, want %q", got.ID(), wantID)
	}
	if got.IsUser() != (want.UserID != "") {
		t.Errorf("IsUser() = %v, want %v", got.IsUser(), want.UserID != "")
	}
}

func TestDecodeCheckinFixtures(t *testing.T) {
	seen := map[mdm.MessageType]bool{}
	for _, f := range fixtures(t, "checkin", "") {
		t.Run(f.name, func(t *testing.T) {
			m := generic(t, f.raw)
			c, err := mdm.DecodeCheckin(f.raw)
			if err != nil {
				t.Fatalf("DecodeCheckin: %v", err)
			}
			seen[c.Type] = true
			if string(c.Type) != str(m, "MessageType") {
				t.Errorf("Type = %q, fixture says %q", c.Type, str(m, "MessageType"))
			}
			if prefix, _, _ := strings.Cut(f.name, "."); prefix != string(c.Type) {
				t.Errorf("fixture named %s holds a %s", f.name, c.Type)
			}
			if !bytes.Equal(c.Raw, f.raw) {
				t.Error("Raw is not the body as received")
			}
			checkChannel(t, c.Channel, m)
			if c.Message == nil || reflect.TypeOf(c.Message).Kind() != reflect.Pointer {
				t.Fatalf("Message = %T, want a pointer to the message struct", c.Message)
			}
			if name := reflect.TypeOf(c.Message).Elem().Name(); name != string(c.Type) {
				t.Errorf("Message is a %s for a %s", name, c.Type)
			}
			compareFields(t, c.Message, m)
		})
	}
	for _, mt := range []mdm.MessageType{
		mdm.TypeAuthenticate, mdm.TypeTokenUpdate, mdm.TypeCheckOut, mdm.TypeUserAuthenticate,
		mdm.TypeSetBootstrapToken, mdm.TypeGetBootstrapToken, mdm.TypeGetToken, mdm.TypeDeclarativeManagement,
	} {
		if !seen[mt] {
			t.Errorf("no fixture decodes as %s", mt)
		}
	}
}

func TestDecodeReportFixtures(t *testing.T) {
	seen := map[mdm.Status]bool{}
	for _, f := range fixtures(t, "report", "") {
		t.Run(f.name, func(t *testing.T) {
			m := generic(t, f.raw)
			r, err := mdm.DecodeReport(f.raw)
			if err != nil {
				t.Fatalf("DecodeReport: %v", err)
			}
			seen[r.Status] = true
			if prefix, _, _ := strings.Cut(f.name, "."); prefix != string(r.Status) {
				t.Errorf("fixture named %s holds a %s report", f.name, r.Status)
			}
			if !bytes.Equal(r.Raw, f.raw) {
				t.Error("Raw is not the body as received")
			}
			checkChannel(t, r.Channel, m)
			compareFields(t, r, m)
			checkErrorChain(t, r.ErrorChain, m["ErrorChain"])
		})
	}
	for _, st := range []mdm.Status{mdm.StatusIdle, mdm.StatusAcknowledged, mdm.StatusError, mdm.StatusCommandFormatError, mdm.StatusNotNow} {
		if !seen[st] {
			t.Errorf("no fixture decodes as %s", st)
		}
	}
}

func checkErrorChain(t *testing.T, got []mdm.ErrorChainItem, generic any) {
	t.Helper()
	items, _ := generic.([]any)
	if len(got) != len(items) {
		t.Fatalf("ErrorChain has %d entries, fixture has %d", len(got), len(items))
	}
	for i, it := range items {
		d, _ := it.(map[string]any)
		compareFields(t, &got[i], d)
		code, _ := d["ErrorCode"].(uint64)
		if uint64(got[i].ErrorCode) != code {
			t.Errorf("ErrorChain[%d].ErrorCode = %d, fixture says %v", i, got[i].ErrorCode, d["ErrorCode"])
		}
	}
}

func TestDecodeBadFixtures(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		decode func([]byte) error
	}{
		{"checkin.", func(b []byte) error { _, err := mdm.DecodeCheckin(b); return err }},
		{"report.", func(b []byte) error { _, err := mdm.DecodeReport(b); return err }},
	} {
		for _, f := range fixtures(t, "bad", tc.prefix) {
			t.Run(f.name, func(t *testing.T) {
				err := tc.decode(f.raw)
				if !errors.Is(err, mdm.ErrParse) {
					t.Fatalf("error = %v, want one wrapping mdm.ErrParse", err)
				}
				// One line, bounded: it goes back to the device as the 4xx reason.
				if msg := err.Error(); strings.Contains(msg, "\n") || len(msg) > 300 {
					t.Errorf("reason is not one short line: %q", msg)
				}
			})
		}
	}
}

// Each check-in type refuses the channel shapes Apple never sends it.
func TestDecodeCheckinChannelRules(t *testing.T) {
	const udid, user = "564D4A1E-12AB-4C0E-9E2B-6F2D9C7A1B3F", "A1B2C3D4-E5F6-4789-ABCD-EF0123456789"
	body := func(kv ...string) []byte {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>`)
		for i := 0; i < len(kv); i += 2 {
			b.WriteString("<key>" + kv[i] + "</key>")
			if strings.HasPrefix(kv[i+1], "data:") {
				b.WriteString("<data>" + strings.TrimPrefix(kv[i+1], "data:") + "</data>")
			} else {
				b.WriteString("<string>" + kv[i+1] + "</string>")
			}
		}
		b.WriteString("</dict></plist>")
		return []byte(b.String())
	}
	const topic = "com.apple.mgmt.External.x"
	for _, tc := range []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"Authenticate device", body("MessageType", "Authenticate", "UDID", udid, "Topic", topic), true},
		{"Authenticate no Topic", body("MessageType", "Authenticate", "UDID", udid), false},
		{"Authenticate user", body("MessageType", "Authenticate", "UDID", udid, "UserID", user, "Topic", topic), false},
		{"UserAuthenticate device", body("MessageType", "UserAuthenticate", "UDID", udid), false},
		{"UserAuthenticate user", body("MessageType", "UserAuthenticate", "UDID", udid, "UserID", user), true},
		{"SetBootstrapToken user", body("MessageType", "SetBootstrapToken", "UDID", udid, "UserID", user), false},
		{"GetBootstrapToken user", body("MessageType", "GetBootstrapToken", "UDID", udid, "UserID", user), false},
		{"TokenUpdate no PushMagic", body("MessageType", "TokenUpdate", "UDID", udid, "Topic", topic, "Token", "data:AAEC"), false},
		{"TokenUpdate no Topic", body("MessageType", "TokenUpdate", "UDID", udid, "PushMagic", "x", "Token", "data:AAEC"), false},
		{"TokenUpdate minimal", body("MessageType", "TokenUpdate", "UDID", udid, "Topic", topic, "PushMagic", "x", "Token", "data:AAEC"), true},
		{"TokenUpdate PushMagic 257 bytes", body("MessageType", "TokenUpdate", "UDID", udid, "Topic", topic, "PushMagic", strings.Repeat("x", 257), "Token", "data:AAEC"), false},
		{"CheckOut no id", body("MessageType", "CheckOut"), false},
		{"EnrollmentUserID with UDID", body("MessageType", "CheckOut", "UDID", udid, "EnrollmentUserID", user), false},
		{"UserID with EnrollmentID", body("MessageType", "CheckOut", "EnrollmentID", "0B3F29E4D1A87C65", "UserID", user), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mdm.DecodeCheckin(tc.raw)
			if tc.ok && err != nil {
				t.Fatalf("DecodeCheckin: %v", err)
			}
			if !tc.ok && !errors.Is(err, mdm.ErrParse) {
				t.Fatalf("error = %v, want one wrapping mdm.ErrParse", err)
			}
		})
	}
}

// The answers the inventory reads come decoded with the report, whatever
// their type: an unexpected one is the reader's to refuse, not a 400.
func TestDecodeReportAnswers(t *testing.T) {
	const head = `<plist><dict><key>UDID</key><string>U1</string><key>Status</key><string>Acknowledged</string><key>CommandUUID</key><string>c1</string>`
	for _, tt := range []struct {
		name, body string
		query      any
	}{
		{"dict", `<key>QueryResponses</key><dict><key>OSVersion</key><string>18.1</string></dict>`, map[string]any{"OSVersion": "18.1"}},
		{"string", `<key>QueryResponses</key><string>nope</string>`, "nope"},
		{"none", ``, nil},
	} {
		r, err := mdm.DecodeReport([]byte(head + tt.body + `</dict></plist>`))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(r.QueryResponses, tt.query) || r.SecurityInfo != nil {
			t.Errorf("%s: QueryResponses %#v, SecurityInfo %#v; want %#v, nil", tt.name, r.QueryResponses, r.SecurityInfo, tt.query)
		}
	}
}
