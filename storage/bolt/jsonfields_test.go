package bolt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// TestTopFields: topFields reads the same top-level members as
// json.Unmarshal, whatever nests, escapes or spaces the record holds, and
// refuses what is not an object.
func TestTopFields(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	inv, _ := json.Marshal(&storage.DeviceInventory{DeviceID: "D1", Platform: "iOS", OSVersion: "18\x00beta \"q\" \\",
		DeviceName: `"platform":"fake"`, Pending: []string{"{", "]"}, Retired: true, RetiredAt: at})
	enr, _ := json.Marshal(&storage.Enrollment{ID: "D1", Enrolled: true, LastSeen: at, Facts: &storage.DeviceFacts{DeviceName: "}{"}})
	keys := []string{"platform", "os_version", "retired", "last_seen", "enrolled", "missing"}
	for _, doc := range []string{string(inv), string(enr),
		` { "platform" : "tv\u004fS" , "nested": {"platform": "no", "a": [1, {"b": "]"}]}, "retired" : false , "pl\u0061tform": "escaped" } `,
		`{}`, `{"last_seen": null, "enrolled": true}`} {
		out := make([][]byte, len(keys))
		if err := topFields([]byte(doc), keys, out); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		for n, k := range keys {
			var got, exp any
			if out[n] != nil {
				json.Unmarshal(out[n], &got)
			}
			if want[k] != nil {
				json.Unmarshal(want[k], &exp)
			}
			if got != exp {
				t.Errorf("%s: %s = %#v, want %#v", doc, k, got, exp)
			}
		}
		if s, err := rawString(out[0]); err != nil || (want["platform"] == nil && s != "") {
			t.Errorf("rawString = %q, %v", s, err)
		}
	}
	out := make([][]byte, 1)
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":}`, `{"a":"b"`, `{"a":"b",}`, `{"a":[1,2}`, `{"a":"b\"}`, `"x"`} {
		if err := topFields([]byte(bad), []string{"a"}, out); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, err := rawTime(json.RawMessage(`"` + at.Format(time.RFC3339Nano) + `"`)); err != nil || !got.Equal(at) {
		t.Errorf("rawTime = %v, %v", got, err)
	}
}
