package inventory

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// FuzzParseAnswers feeds device answers (untrusted plists) to the
// DeviceInformation and SecurityInfo readers: they must never panic.
func FuzzParseAnswers(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.plist"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`<plist><dict><key>QueryResponses</key><dict><key>BatteryLevel</key><string>full</string><key>IsSupervised</key><integer>1</integer></dict></dict></plist>`))
	f.Add([]byte(`<plist><dict><key>SecurityInfo</key><dict><key>ManagementStatus</key><string>x</string></dict></dict></plist>`))
	f.Add([]byte("bplist00"))
	f.Add([]byte("<plist><dict><key>QueryResponses</key>" + strings.Repeat("<dict><key>a</key>", 100) + "</dict></plist>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The answers as a report decodes them (mdm.Report's fields).
		var ans struct{ QueryResponses, SecurityInfo any }
		if mdm.Unmarshal(raw, &ans) != nil {
			return
		}
		for _, p := range []struct {
			parse  func(any, time.Time) (func(*storage.DeviceInventory), error)
			answer any
		}{{parseDeviceInformation, ans.QueryResponses}, {parseSecurityInfo, ans.SecurityInfo}} {
			apply, err := p.parse(p.answer, time.Unix(0, 0))
			if (apply == nil) == (err == nil) {
				t.Fatalf("apply %v with error %v", apply != nil, err)
			}
			if apply != nil {
				apply(&storage.DeviceInventory{})
			}
		}
	})
}

// FuzzActionBody feeds action bodies to the decoder of every action.
func FuzzActionBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"confirm": true}`, `{"pin": "123456", "message": "m"}`, `{"preserve_data_plan": "yes"}`, `[1]`, `{"name": null}`, `{"confirm": true} {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for name, spec := range actions {
			r := httptest.NewRequest("POST", "/v1/devices/X/actions/"+name, bytes.NewReader([]byte(body)))
			req, err := decodeAction(httptest.NewRecorder(), r, name, spec)
			if (req == nil) == (err == nil) {
				t.Fatalf("%s: request %v with error %v", name, req, err)
			}
		}
	})
}
