package mdmhttp_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// seedBodies adds the repository's plist fixtures to a fuzz corpus.
func seedBodies(f *testing.F, dirs ...string) {
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", d, "*.plist"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>`))
	f.Add([]byte("bplist00"))
	// Nested past the decoder's depth limit (issue #10).
	f.Add([]byte("<plist>" + strings.Repeat("<array>", 100) + strings.Repeat("</array>", 100) + "</plist>"))
	f.Add([]byte("<plist><dict><key>UDID</key>" + strings.Repeat("<dict><key>a</key>", 100) + "</plist>"))
	f.Add([]byte{})
}

// fuzzHandler signs every fuzzed body with an enrolled device's real key
// and sends it through the real handler: whatever the body, the server
// must not panic, must not answer 401, and must not fail with a 5xx.
func fuzzHandler(f *testing.F, path, ctype string) {
	s := servertest.Start(f)
	dev := s.NewDevice(f)
	s.Enroll(f, dev)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		sig, err := dev.Sign(body)
		if err != nil {
			t.Skip() // pkcs7 cannot sign this input; nothing to send
		}
		check(t, h, dev, path, ctype, body, sig)
	})
}

func check(t *testing.T, h http.Handler, dev *simdevice.Device, path, ctype string, body []byte, sig string) {
	req := httptest.NewRequest("PUT", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Mdm-Signature", sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusUnauthorized || rec.Code >= 500 {
		t.Fatalf("%s answered %d for %q: %s", path, rec.Code, body, rec.Body)
	}
}

func FuzzCheckinHandler(f *testing.F) {
	seedBodies(f, "checkin", "bad")
	fuzzHandler(f, "/mdm/checkin", "application/x-apple-aspen-mdm-checkin")
}

func FuzzConnectHandler(f *testing.F) {
	seedBodies(f, "report", "bad")
	fuzzHandler(f, "/mdm/connect", "application/x-apple-aspen-mdm")
}

// FuzzSignatureHeader: arbitrary Mdm-Signature values never crash or 5xx.
func FuzzSignatureHeader(f *testing.F) {
	s := servertest.Start(f)
	dev := s.NewDevice(f)
	s.Enroll(f, dev)
	body := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>` + dev.UDID + `</string></dict></plist>`)
	good, err := dev.Sign(body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIB")
	f.Add("")
	h := s.Handler()
	f.Fuzz(func(t *testing.T, sig string) {
		check(t, h, dev, "/mdm/connect", "application/x-apple-aspen-mdm", body, sig)
	})
}
