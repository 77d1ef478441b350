package mdm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// checkFlatReport fails when decodeFlatReport reads raw to another Report
// than Unmarshal does, or reads what Unmarshal refuses.
func checkFlatReport(t *testing.T, raw []byte) (read bool) {
	t.Helper()
	var fast Report
	if !decodeFlatReport(raw, &fast) {
		return false
	}
	var slow Report
	if err := Unmarshal(raw, &slow); err != nil {
		t.Fatalf("fast path read %q, Unmarshal refuses it: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast path read %q as %+v, Unmarshal as %+v", raw, fast, slow)
	}
	return true
}

func reportFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"report", "bad"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.plist"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures in %s: %v", dir, err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[dir+"/"+filepath.Base(f)] = raw
		}
	}
	return out
}

func TestFlatReport(t *testing.T) {
	// The shapes devices send most: these must take the fast path.
	for _, name := range []string{"report/Idle.plist", "report/Idle.user-enrollment.plist",
		"report/Acknowledged.user-channel.plist", "report/NotNow.plist"} {
		if !checkFlatReport(t, reportFixtures(t)[name]) {
			t.Errorf("%s: declined by the fast path", name)
		}
	}
	for name, raw := range reportFixtures(t) {
		t.Run(name, func(t *testing.T) { checkFlatReport(t, raw) })
	}
	idle := `<plist version="1.0"><dict><key>UDID</key><string>X</string><key>Status</key><string>Idle</string></dict></plist>`
	for _, tc := range []struct {
		name, doc string
		read      bool
	}{
		{"minimal", idle, true},
		{"empty string", strings.Replace(idle, "<string>X</string>", "<string/>", 1), true},
		{"unknown key, ignored value", strings.Replace(idle, "<dict>", "<dict><key>Extra</key><true/>", 1), true},
		{"entity", strings.Replace(idle, ">X<", ">X&amp;Y<", 1), false},
		{"comment", strings.Replace(idle, "<dict>", "<dict><!-- x -->", 1), false},
		{"carriage return", strings.Replace(idle, "<dict>", "<dict>\r\n", 1), false},
		{"repeated key", strings.Replace(idle, "<dict>", "<dict><key>UDID</key><string>Y</string>", 1), false},
		{"known key, other type", strings.Replace(idle, "<string>X</string>", "<true/>", 1), false},
		{"error chain", strings.Replace(idle, "<dict>", "<dict><key>ErrorChain</key><array/>", 1), false},
		{"trailing bytes", idle + "x", false},
		{"non-ASCII", strings.Replace(idle, ">X<", ">\u00e9<", 1), false},
		{"nested", strings.Replace(idle, "<dict>", "<dict><key>A</key><dict><key>B</key><string>c</string></dict>", 1), false},
	} {
		if read := checkFlatReport(t, []byte(tc.doc)); read != tc.read {
			t.Errorf("%s: fast path read it: %v, want %v", tc.name, read, tc.read)
		}
	}
}

// FuzzFlatReportAgainstUnmarshal runs the fast path and the general decoder
// on the same bodies: whatever the fast path reads, the general decoder
// must read to the same Report.
func FuzzFlatReportAgainstUnmarshal(f *testing.F) {
	for _, raw := range reportFixtures(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkFlatReport(t, raw) })
}
