package commands_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands"
)

// seeds returns the testdata fixtures with the given extension and a sample
// request for every command.
func seeds(f *testing.F, ext string) [][]byte {
	f.Helper()
	paths, err := filepath.Glob("testdata/*" + ext)
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func sampleRequests(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	for _, c := range commands.All() {
		payload, _ := samplePayload(&c, true)
		b, err := json.Marshal(commands.Request{RequestType: c.RequestType, Payload: payload})
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzFromJSON(f *testing.F) {
	for _, s := range append(seeds(f, ".json"), sampleRequests(f)...) {
		f.Add(s)
	}
	f.Add([]byte(`{"request_type":"InstallApplication","payload":{"iTunesStoreID":1,"Configuration":{"a\nb":null}}}`))
	f.Add([]byte(`{"request_type":"Settings","payload":{"Settings":[{"Item":"Wallpaper","Where":1e3}]}}`))
	f.Add([]byte(`{"request_type":"DeviceLock","payload":{"PIN":"1"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := commands.FromJSON(testUUID, body)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		raw, err := commands.ValidatePlist(out)
		if err != nil {
			t.Fatalf("own output refused: %v\n%s", err, out)
		}
		if raw.CommandUUID != testUUID {
			t.Fatalf("CommandUUID = %q", raw.CommandUUID)
		}
	})
}

func FuzzValidatePlist(f *testing.F) {
	for _, s := range seeds(f, ".plist") {
		f.Add(s)
	}
	f.Add([]byte("<plist><dict><key>RequestType</key><string>Settings</string><key>Settings</key>" + strings.Repeat("<array>", 100) + "</dict></plist>"))
	for _, body := range sampleRequests(f) {
		out, err := commands.FromJSON(testUUID, body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
	}
	f.Add([]byte("bplist00\xd1\x01\x02"))
	f.Add([]byte("<plist><dict><key>RequestType</key><integer>1</integer></dict></plist>"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := commands.ValidatePlist(raw)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		// What passes must encode, and re-encoding must be stable: the
		// first pass may only drop what XML cannot carry (sub-second dates).
		once := revalidate(t, r)
		twice := revalidate(t, once)
		if !reflect.DeepEqual(once.Command, twice.Command) {
			t.Fatalf("unstable round trip:\n%#v\n%#v", once.Command, twice.Command)
		}
	})
}

func revalidate(t *testing.T, r commands.Raw) commands.Raw {
	t.Helper()
	out, err := commands.Marshal(testUUID, r.Command)
	if err != nil {
		t.Fatalf("Marshal of a validated command: %v", err)
	}
	again, err := commands.ValidatePlist(out)
	if err != nil {
		t.Fatalf("re-validate: %v\n%s", err, out)
	}
	if again.RequestType != r.RequestType {
		t.Fatalf("RequestType %q became %q", r.RequestType, again.RequestType)
	}
	return again
}
