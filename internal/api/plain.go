package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm"
)

// PlainBuilder converts JSON to a command without schema knowledge:
// integers stay integers, other numbers become reals. It is the fallback
// when no schema-aware builder is wired.
type PlainBuilder struct{}

// FromJSON implements CommandBuilder.
func (PlainBuilder) FromJSON(requestType string, payload map[string]any) (mdm.CommandPayload, error) {
	cmd := mdm.CommandPayload{"RequestType": requestType}
	for k, v := range payload {
		if k == "RequestType" {
			return nil, fmt.Errorf("payload must not repeat RequestType")
		}
		cmd[k] = plainValue(v)
	}
	return cmd, nil
}

// Check implements CommandBuilder.
func (PlainBuilder) Check(mdm.CommandPayload) error { return nil }

func plainValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = plainValue(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k := range x {
			out[k] = plainValue(x[k])
		}
		return out
	}
	return v
}

// responseOf decodes a device's result plist for display as JSON: data
// becomes base64, dates RFC 3339.
func responseOf(raw []byte) map[string]any {
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		return nil
	}
	for _, k := range []string{"UDID", "Status", "CommandUUID", "ErrorChain", "EnrollmentID", "UserID", "EnrollmentUserID"} {
		delete(m, k)
	}
	return jsonSafe(m).(map[string]any)
}

func jsonSafe(v any) any {
	switch x := v.(type) {
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []any:
		for i := range x {
			x[i] = jsonSafe(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = jsonSafe(x[k])
		}
	}
	return v
}
