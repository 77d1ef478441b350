package declarative

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/mdm/osversion"
)

// Update states of one device in the fleet view.
const (
	UpdateNone     = "none"       // no enforcement scoped to it
	UpdatePending  = "pending"    // below its enforced version
	UpdateUpToDate = "up-to-date" // at or above it
	UpdateFailed   = "failed"     // the device reports a failed update
	UpdateUnknown  = "unknown"    // enforced, but no OS version reported yet
)

// DeviceUpdate is one channel's software-update state, from its status
// items and the enforcement scoped to it.
type DeviceUpdate struct {
	Channel        string          `json:"channel"`
	OSVersion      string          `json:"os_version,omitempty"`
	BuildVersion   string          `json:"build_version,omitempty"`
	InstallState   string          `json:"install_state,omitempty"`
	PendingVersion string          `json:"pending_version,omitempty"`
	FailureReason  json.RawMessage `json:"failure_reason,omitempty"`
	Enforcement    string          `json:"enforcement,omitempty"`
	TargetVersion  string          `json:"target_os_version,omitempty"`
	TargetBuild    string          `json:"target_build_version,omitempty"`
	Deadline       string          `json:"target_local_date_time,omitempty"`
	State          string          `json:"state"`
}

// Fleet is the software-update view of every channel that reported.
type Fleet struct {
	OSVersions map[string]int `json:"os_versions"`
	Pending    int            `json:"pending"`
	Failed     int            `json:"failed"`
	UpToDate   int            `json:"up_to_date"`
	Devices    []DeviceUpdate `json:"devices"`
}

// SoftwareUpdates builds the fleet view.
func (e *Engine) SoftwareUpdates(ctx context.Context) (*Fleet, error) {
	all, err := e.store.DDMStatuses(ctx)
	if err != nil {
		return nil, err
	}
	f := &Fleet{OSVersions: map[string]int{}, Devices: []DeviceUpdate{}}
	for _, st := range all {
		u := DeviceUpdate{
			Channel:        st.Channel,
			OSVersion:      str(st.Items["device.operating-system.version"]),
			BuildVersion:   str(st.Items["device.operating-system.build-version"]),
			InstallState:   str(st.Items["softwareupdate.install-state"]),
			PendingVersion: str(st.Items["softwareupdate.pending-version.os-version"]),
		}
		var failCount float64
		for k, v := range st.Items {
			if strings.HasPrefix(k, "softwareupdate.failure-reason.") {
				if u.FailureReason == nil {
					u.FailureReason = json.RawMessage("{}")
				}
				m := map[string]json.RawMessage{}
				_ = json.Unmarshal(u.FailureReason, &m)
				m[strings.TrimPrefix(k, "softwareupdate.failure-reason.")] = v
				u.FailureReason, _ = json.Marshal(m)
				if k == "softwareupdate.failure-reason.count" {
					_ = json.Unmarshal(v, &failCount)
				}
			}
		}
		m, err := e.manifest(ctx, st.Channel)
		if err != nil {
			return nil, err
		}
		for _, d := range m.decls {
			if d.Type != ddm.TypeSoftwareUpdateSpecific {
				continue
			}
			var p struct{ TargetOSVersion, TargetBuildVersion, TargetLocalDateTime string }
			if json.Unmarshal(d.Payload, &p) == nil && (u.TargetVersion == "" || compareVersions(p.TargetOSVersion, u.TargetVersion) > 0) {
				u.Enforcement, u.TargetVersion, u.TargetBuild, u.Deadline = d.Identifier, p.TargetOSVersion, p.TargetBuildVersion, p.TargetLocalDateTime
			}
		}
		switch {
		case failCount > 0 || u.InstallState == "failed":
			u.State = UpdateFailed
			f.Failed++
		case u.TargetVersion == "":
			u.State = UpdateNone
		case u.OSVersion == "":
			u.State = UpdateUnknown
		case compareVersions(u.OSVersion, u.TargetVersion) < 0:
			u.State = UpdatePending
			f.Pending++
		default:
			u.State = UpdateUpToDate
			f.UpToDate++
		}
		if u.OSVersion != "" {
			f.OSVersions[u.OSVersion]++
		}
		f.Devices = append(f.Devices, u)
	}
	sort.Slice(f.Devices, func(i, j int) bool { return f.Devices[i].Channel < f.Devices[j].Channel })
	return f, nil
}

func str(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// compareVersions compares reported versions numerically (26.1 < 26.10).
func compareVersions(a, b string) int { return osversion.Compare(a, b) }
