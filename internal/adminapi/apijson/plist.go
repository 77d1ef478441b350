package apijson

import (
	"encoding/base64"
	"time"

	"github.com/orchardmdm/orchard/mdm"
)

// ResponseJSON decodes a device's result plist (already accepted by the
// MDM decoder) for display as JSON, as GET /v1/commands/{uuid} shows it:
// data as base64, dates as RFC 3339, the routing identifiers left out.
// It returns nil when raw is not a dictionary plist.
func ResponseJSON(raw []byte) map[string]any {
	var m map[string]any
	if err := mdm.Unmarshal(raw, &m); err != nil {
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
