package inventory

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/simdevice"
)

// fleet enrolls a supervised iPhone, an unsupervised iPad and a Mac that
// needs Find My PINs, and answers their inventory queries.
func fleet(t *testing.T, h *harness) map[string]*simdevice.Device {
	phone := h.enroll(simIPhone, "ade")
	drain(t, phone, newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist").answer)
	pad := h.enroll(simIPad, "invitation")
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	a.info["ProductName"], a.info["ModelName"], a.info["IsSupervised"], a.info["SerialNumber"] = "iPad13,16", "iPad Air", false, "DMPXK2ABCDEF"
	drain(t, pad, a.answer)
	m := h.enroll(simMac, "configurator")
	drain(t, m, newAnswers(t, "deviceinformation_mac.plist", "securityinfo_mac.plist").answer)
	return map[string]*simdevice.Device{"iphone": phone, "ipad": pad, "mac": m}
}

func TestActions(t *testing.T) {
	h := newHarness(t)
	devs := fleet(t, h)
	for _, c := range []struct {
		device, action string
		body           any
		code           int
		rt             string
		payload        map[string]any // keys the device must receive
	}{
		{"iphone", "lock", map[string]any{"message": "Return to IT", "phone_number": "+351210000000"}, 201, "DeviceLock", map[string]any{"Message": "Return to IT", "PhoneNumber": "+351210000000"}},
		{"iphone", "lock", nil, 201, "DeviceLock", map[string]any{}},
		{"iphone", "lock", map[string]any{"pin": "123456"}, 422, "", nil},
		{"mac", "lock", nil, 422, "", nil},
		{"mac", "lock", map[string]any{"pin": "123456", "message": "Locked by IT"}, 201, "DeviceLock", map[string]any{"PIN": "123456", "Message": "Locked by IT"}},
		{"mac", "lock", map[string]any{"pin": "12ab56"}, 400, "", nil},
		{"iphone", "lock", map[string]any{"name": "x"}, 400, "", nil},
		{"iphone", "lock", `{"message": `, 400, "", nil},
		{"iphone", "lock", map[string]any{"message": 7}, 400, "", nil},
		{"iphone", "erase", nil, 400, "", nil},
		{"iphone", "erase", map[string]any{"confirm": false}, 400, "", nil},
		{"iphone", "erase", map[string]any{"serial": "C02ZK3MLMD6T"}, 400, "", nil},
		{"iphone", "erase", map[string]any{"serial": "f2lzk0qjn70q", "preserve_data_plan": true, "disallow_proximity_setup": true}, 201, "EraseDevice", map[string]any{"PreserveDataPlan": true, "DisallowProximitySetup": true}},
		{"iphone", "erase", map[string]any{"confirm": true, "pin": "123456"}, 422, "", nil},
		{"mac", "erase", map[string]any{"confirm": true}, 422, "", nil},
		{"mac", "erase", map[string]any{"confirm": true, "pin": "654321", "obliteration_behavior": "DoNotObliterate"}, 201, "EraseDevice", map[string]any{"PIN": "654321", "ObliterationBehavior": "DoNotObliterate"}},
		{"mac", "erase", map[string]any{"confirm": true, "pin": "654321", "preserve_data_plan": true}, 422, "", nil},
		{"mac", "erase", map[string]any{"confirm": true, "pin": "654321", "obliteration_behavior": "Sometimes"}, 400, "", nil},
		{"mac", "clear-passcode", nil, 422, "", nil},
		{"iphone", "clear-passcode", nil, 409, "", nil},
		{"iphone", "restart", nil, 201, "RestartDevice", map[string]any{}},
		{"ipad", "restart", nil, 422, "", nil},
		{"mac", "restart", map[string]any{"notify_user": true}, 201, "RestartDevice", map[string]any{"NotifyUser": true}},
		{"iphone", "restart", map[string]any{"notify_user": true}, 422, "", nil},
		{"iphone", "shutdown", nil, 201, "ShutDownDevice", map[string]any{}},
		{"ipad", "shutdown", nil, 422, "", nil},
		{"iphone", "rename", map[string]any{"name": " Front desk "}, 201, "Settings", map[string]any{"Settings": []any{map[string]any{"Item": "DeviceName", "DeviceName": "Front desk"}}}},
		{"mac", "rename", map[string]any{"name": "Design Mac"}, 201, "Settings", map[string]any{"Settings": []any{map[string]any{"Item": "DeviceName", "DeviceName": "Design Mac"}}}},
		{"iphone", "rename", map[string]any{"name": "  "}, 400, "", nil},
		{"iphone", "rename", nil, 400, "", nil},
		{"iphone", "lost-mode-enable", map[string]any{"message": "This iPhone is lost", "phone_number": "+351210000000", "footnote": "Reward"}, 201, "EnableLostMode", map[string]any{"Message": "This iPhone is lost", "PhoneNumber": "+351210000000", "Footnote": "Reward"}},
		{"iphone", "lost-mode-enable", nil, 400, "", nil},
		{"ipad", "lost-mode-enable", map[string]any{"message": "Lost"}, 422, "", nil},
		{"mac", "lost-mode-enable", map[string]any{"message": "Lost"}, 422, "", nil},
		{"iphone", "lost-mode-location", nil, 201, "DeviceLocation", map[string]any{}},
		{"iphone", "lost-mode-disable", nil, 201, "DisableLostMode", map[string]any{}},
		{"iphone", "retire", nil, 400, "", nil},
		{"iphone", "explode", nil, 404, "", nil},
	} {
		name := fmt.Sprintf("%s/%s/%v", c.device, c.action, c.body)
		t.Run(name, func(t *testing.T) {
			d := devs[c.device]
			pushes := h.pushed.count(d.UDID)
			var res ActionResult
			var errBody map[string]string
			var out any = &res
			if c.code >= 400 {
				out = &errBody
			}
			if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/"+c.action, c.body, out); code != c.code {
				t.Fatalf("status %d, want %d (%v)", code, c.code, errBody)
			}
			got := drain(t, d, nil)
			if c.code >= 400 {
				if errBody["error"] == "" {
					t.Errorf("refusal without a reason")
				}
				if len(got) != 0 || h.pushed.count(d.UDID) != pushes {
					t.Errorf("refused action queued %v / pushed", typesOf(got))
				}
				return
			}
			if len(got) != 1 || got[0].UUID != res.CommandUUID || got[0].RequestType != c.rt || res.RequestType != c.rt {
				t.Fatalf("device received %v, answer %+v", got, res)
			}
			if !res.Pushed || h.pushed.count(d.UDID) != pushes+1 {
				t.Errorf("device not pushed")
			}
			p := got[0].Payload
			if len(p) != len(c.payload)+1 {
				t.Errorf("payload %v, want %v", p, c.payload)
			}
			for k, want := range c.payload {
				if fmt.Sprint(p[k]) != fmt.Sprint(want) {
					t.Errorf("payload %s = %v, want %v", k, p[k], want)
				}
			}
		})
	}
}

func TestActionTargets(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	var e map[string]string
	for _, c := range []struct {
		path string
		code int
	}{
		{"/v1/devices/" + d.UDID + ":user1/actions/lock", 400},
		{"/v1/devices/NOPE0000/actions/lock", 404},
		{"/v1/devices/bad%20id/actions/lock", 400},
	} {
		if code := h.api("POST", c.path, nil, &e); code != c.code || e["error"] == "" {
			t.Errorf("%s: %d %v, want %d", c.path, code, e, c.code)
		}
	}
	// A checked-out device gets nothing.
	if _, err := d.Checkin(context.Background(), map[string]any{"MessageType": "CheckOut", "UDID": d.UDID}); err != nil {
		t.Fatal(err)
	}
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/lock", nil, &e); code != 409 {
		t.Errorf("lock of a checked-out device: %d %v", code, e)
	}
}

func TestSync(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	before := h.pushed.count(d.UDID)
	var res ActionResult
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/sync", nil, &res); code != 202 || !res.Pushed || res.CommandUUID != "" {
		t.Fatalf("sync: %d %+v", code, res)
	}
	if h.pushed.count(d.UDID) != before+1 {
		t.Fatal("sync did not push")
	}
	h.inv.pusher = nil
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/sync", nil, nil); code != 409 {
		t.Fatalf("sync without push: %d", code)
	}
}

func TestClearPasscodeSendsUnlockToken(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	drain(t, d, newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist").answer)
	token := bytes.Repeat([]byte{0xC3, 0x7E}, 40)
	_, err := d.Checkin(context.Background(), map[string]any{
		"MessageType": "TokenUpdate", "UDID": d.UDID, "Topic": d.Topic, "Token": d.Token, "PushMagic": d.PushMagic, "UnlockToken": token,
	})
	if err != nil {
		t.Fatal(err)
	}
	var res ActionResult
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/clear-passcode", nil, &res); code != 201 {
		t.Fatalf("clear-passcode: %d", code)
	}
	got := drain(t, d, nil)
	if len(got) != 1 || got[0].RequestType != "ClearPasscode" || !bytes.Equal(asBytes(got[0].Payload["UnlockToken"]), token) {
		t.Fatalf("device received %+v", got)
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

func TestRetire(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	drain(t, d, a.answer)
	var res ActionResult
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/retire", map[string]any{"confirm": true}, &res); code != 201 {
		t.Fatalf("retire: %d", code)
	}
	got := drain(t, d, nil)
	if len(got) != 1 || got[0].RequestType != "RemoveProfile" || got[0].Payload["Identifier"] != EnrollmentProfileIdentifier {
		t.Fatalf("device received %+v", got)
	}
	var v View
	h.api("GET", "/v1/devices/"+d.UDID+"/inventory", nil, &v)
	if !v.Retired || v.RetireCommand != res.CommandUUID || v.RetiredAt.IsZero() || v.SerialNumber != "F2LZK0QJN70Q" {
		t.Fatalf("after retire: %+v", v.DeviceInventory)
	}
	// A retired device that still connects is not queried again...
	h.clock.Advance(2 * DefaultInterval)
	if more := drain(t, d, a.answer); len(more) != 0 {
		t.Fatalf("retired device re-queried: %v", typesOf(more))
	}
	// ...until it enrolls afresh.
	if err := d.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var after View
	h.api("GET", "/v1/devices/"+d.UDID+"/inventory", nil, &after)
	if after.Retired || len(after.Pending) != 2 {
		t.Fatalf("after re-enrollment: retired %v pending %v", after.Retired, after.Pending)
	}
}

func TestRefreshStoresLists(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	drain(t, d, a.answer)
	der := d.Cert.Raw
	a.extra["InstalledApplicationList"] = map[string]any{"InstalledApplicationList": []any{
		map[string]any{"Identifier": "com.example.field", "Name": "Field", "ShortVersion": "3.2", "Version": "320", "BundleSize": int64(48213504), "Installing": false},
		map[string]any{"Identifier": "com.apple.Pages", "Name": "Pages", "ShortVersion": "14.2", "Version": "7032", "AppStoreVendable": true},
	}}
	a.extra["ProfileList"] = map[string]any{"ProfileList": []any{
		map[string]any{"PayloadIdentifier": EnrollmentProfileIdentifier, "PayloadUUID": "8E1F1F3A-3B0C-4C5B-8F5E-6A1B2C3D4E5F", "PayloadDisplayName": "Orchard MDM enrollment", "PayloadRemovalDisallowed": false, "IsManaged": true},
	}}
	a.extra["CertificateList"] = map[string]any{"CertificateList": []any{
		map[string]any{"CommonName": d.Cert.Subject.CommonName, "IsIdentity": true, "Data": der},
	}}
	// Before any answer the lists are 404.
	if code := h.api("GET", "/v1/devices/"+d.UDID+"/apps", nil, nil); code != 404 {
		t.Fatalf("apps before an answer: %d", code)
	}
	var res ActionResult
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/refresh", nil, &res); code != 201 || len(res.CommandUUIDs) != 5 {
		t.Fatalf("refresh: %d %+v", code, res)
	}
	if code := h.api("POST", "/v1/devices/"+d.UDID+"/actions/refresh", nil, nil); code != 409 {
		t.Fatalf("second refresh while outstanding: %d", code)
	}
	a.reset()
	drain(t, d, a.answer)
	want := []string{"CertificateList", "DeviceInformation", "InstalledApplicationList", "ProfileList", "SecurityInfo"}
	if got := a.types(); !slices.Equal(sorted(got), want) {
		t.Fatalf("refresh sent %v", got)
	}
	var apps struct {
		Apps        []map[string]any `json:"apps"`
		CommandUUID string           `json:"command_uuid"`
		At          time.Time        `json:"at"`
	}
	if code := h.api("GET", "/v1/devices/"+d.UDID+"/apps", nil, &apps); code != 200 || len(apps.Apps) != 2 || apps.Apps[0]["Identifier"] != "com.example.field" || !slices.Contains(res.CommandUUIDs, apps.CommandUUID) {
		t.Fatalf("apps: %d %+v", code, apps)
	}
	var profiles struct{ Profiles []map[string]any }
	if h.api("GET", "/v1/devices/"+d.UDID+"/profiles", nil, &profiles); len(profiles.Profiles) != 1 || profiles.Profiles[0]["PayloadIdentifier"] != EnrollmentProfileIdentifier {
		t.Fatalf("profiles: %+v", profiles)
	}
	var certs struct{ Certificates []map[string]any }
	h.api("GET", "/v1/devices/"+d.UDID+"/certificates", nil, &certs)
	if len(certs.Certificates) != 1 {
		t.Fatalf("certificates: %+v", certs)
	}
	raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(certs.Certificates[0]["Data"]))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := x509.ParseCertificate(raw); err != nil || !c.Equal(d.Cert) {
		t.Fatalf("certificate data does not round-trip: %v", err)
	}
	rec, _ := h.store.Inventory(context.Background(), d.UDID)
	if len(rec.Pending) != 0 {
		t.Fatalf("answered refresh left pending %v", rec.Pending)
	}
}

func TestLocationStored(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "ade")
	a := newAnswers(t, "deviceinformation_iphone.plist", "securityinfo_iphone.plist")
	drain(t, d, a.answer)
	a.extra["DeviceLocation"] = map[string]any{"Latitude": 38.7223, "Longitude": -9.1393, "HorizontalAccuracy": 12.5,
		"VerticalAccuracy": 3.0, "Altitude": 45.0, "Speed": -1.0, "Course": -1.0, "Timestamp": "2026-11-27T10:15:00Z"}
	h.api("POST", "/v1/devices/"+d.UDID+"/actions/lost-mode-location", nil, nil)
	drain(t, d, a.answer)
	var loc struct{ Location map[string]any }
	if code := h.api("GET", "/v1/devices/"+d.UDID+"/location", nil, &loc); code != 200 || loc.Location["Latitude"] != 38.7223 || loc.Location["Timestamp"] != "2026-11-27T10:15:00Z" {
		t.Fatalf("location: %d %+v", code, loc)
	}
}

func TestUnanswerableAnswerKeepsRecord(t *testing.T) {
	h := newHarness(t)
	d := h.enroll(simIPhone, "invitation")
	// The device errors on DeviceInformation and sends garbage for SecurityInfo.
	drain(t, d, func(c *simdevice.Command) (string, map[string]any) {
		if c.RequestType == "DeviceInformation" {
			return "Error", map[string]any{"ErrorChain": []any{map[string]any{"ErrorCode": int64(12021), "ErrorDomain": "MCMDMErrorDomain"}}}
		}
		return "Acknowledged", map[string]any{"SecurityInfo": "not a dictionary"}
	})
	rec, err := h.store.Inventory(context.Background(), d.UDID)
	if err != nil || len(rec.Pending) != 0 || !rec.DeviceInformationAt.IsZero() || !rec.SecurityInfoAt.IsZero() || rec.SerialNumber != d.SerialNumber {
		t.Fatalf("record: %+v %v", rec, err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
