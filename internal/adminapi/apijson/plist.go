package apijson

import (
	"encoding/base64"
	"fmt"
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
	hideSecrets(m, false)
	return jsonSafe(m).(map[string]any)
}

// Hidden replaces a secret's value wherever a command or result is shown.
const Hidden = "(hidden)"

// secretKeys are the command and result keys whose values are secrets
// (passcodes, passwords, tokens, bypass codes), at any depth.
var secretKeys = map[string]bool{
	"PIN": true, "UnlockToken": true, "NewPassword": true, "CurrentPassword": true, "Password": true,
	"ActivationLockBypassCode": true, "BootstrapToken": true, "AuthToken": true, "Passcode": true,
}

// hideSecrets replaces the values of secretKeys in v, and with data too
// every data value by its size (profiles and tokens travel as data).
func hideSecrets(v any, data bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch b, isData := e.([]byte); {
			case secretKeys[k]:
				x[k] = Hidden
			case isData && data:
				x[k] = fmt.Sprintf("(%d bytes)", len(b))
			default:
				hideSecrets(e, data)
			}
		}
	case []any:
		for i, e := range x {
			if b, isData := e.([]byte); isData && data {
				x[i] = fmt.Sprintf("(%d bytes)", len(b))
			} else {
				hideSecrets(e, data)
			}
		}
	}
}

// CommandJSON decodes a queued command's plist ({CommandUUID, Command})
// for display: its Command dictionary with secrets hidden and data shown
// only by its size. It returns nil when raw is not such a plist.
func CommandJSON(raw []byte) map[string]any {
	var env struct {
		Command map[string]any
	}
	if err := mdm.Unmarshal(raw, &env); err != nil || env.Command == nil {
		return nil
	}
	hideSecrets(env.Command, true)
	return jsonSafe(env.Command).(map[string]any)
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
