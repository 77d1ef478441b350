package commands

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/mdm/osversion"
)

// Fact is a yes/no fact about a target that Orchard may not know yet.
// The zero value is Unknown, and an unknown fact never refuses a command.
type Fact uint8

// The states of a Fact.
const (
	Unknown Fact = iota
	Yes
	No
)

// String returns "unknown", "yes" or "no".
func (f Fact) String() string {
	switch f {
	case Unknown:
		return "unknown"
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "Fact(" + strconv.Itoa(int(f)) + ")"
}

// Known turns a bool Orchard has learned into a Fact.
func Known(b bool) Fact {
	if b {
		return Yes
	}
	return No
}

// Channel is the MDM channel a command is queued on.
type Channel string

// The two MDM channels. The empty Channel means device.
const (
	DeviceChannel Channel = "device"
	UserChannel   Channel = "user"
)

// Target is what Orchard knows about where a command would run.
type Target struct {
	// Platform is iOS, iPadOS, macOS, tvOS, visionOS or watchOS (any case);
	// empty when unknown.
	Platform string
	// OSVersion is the dotted version the device reported; empty when unknown.
	OSVersion      string
	Channel        Channel
	Supervised     Fact
	UserEnrollment Fact
	SharedIPad     Fact
	// ADE is whether the device enrolled through Automated Device
	// Enrollment (the schema's requiresdep).
	ADE Fact
}

// IneligibleError lists every reason a target cannot run a command.
type IneligibleError struct {
	RequestType string
	Reasons     []string
}

func (e *IneligibleError) Error() string {
	return fmt.Sprintf("%s cannot run on this target: %s", e.RequestType, strings.Join(e.Reasons, "; "))
}

// schemaOS maps a platform name to the schema's platform; iPadOS shares
// iOS's entries.
func schemaOS(platform string) (string, bool) {
	switch strings.ToLower(platform) {
	case "ios", "ipados":
		return "iOS", true
	case "macos":
		return "macOS", true
	case "tvos":
		return "tvOS", true
	case "visionos":
		return "visionOS", true
	case "watchos":
		return "watchOS", true
	}
	return "", false
}

// Eligible reports whether c can run on t: nil if it can (or if what is
// unknown about t might allow it), otherwise an *IneligibleError.
func (c *Command) Eligible(t Target) error {
	var reasons []string
	add := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }
	ch := t.Channel
	if ch == "" {
		ch = DeviceChannel
	}
	if ch != DeviceChannel && ch != UserChannel {
		add("unknown channel %q", string(t.Channel))
	}
	if t.Platform == "" {
		return c.result(reasons)
	}
	osName, ok := schemaOS(t.Platform)
	if !ok {
		add("unknown platform %q", t.Platform)
		return c.result(reasons)
	}
	s, ok := c.Platform(osName)
	if !ok {
		add("not supported on %s", t.Platform)
		return c.result(reasons)
	}
	if t.OSVersion != "" {
		if last, ok := lastOS[c.RequestType]; ok && compareVersions(majorMinor(t.OSVersion), last) > 0 {
			add("available through OS %s only, removed after it (device has %s %s); use Declarative Device Management software update configurations", last, t.Platform, t.OSVersion)
		}
		if s.Introduced != "" && compareVersions(t.OSVersion, s.Introduced) < 0 {
			add("needs %s %s or later (device has %s)", t.Platform, s.Introduced, t.OSVersion)
		}
		if s.Removed != "" && compareVersions(t.OSVersion, s.Removed) >= 0 {
			add("removed in %s %s (device has %s)", t.Platform, s.Removed, t.OSVersion)
		}
	}
	if s.Supervised && t.Supervised == No {
		add("needs a supervised device")
	}
	if s.RequiresDEP && t.ADE == No {
		add("needs a device enrolled through Automated Device Enrollment")
	}
	switch Mode(s.UserEnrollment) {
	case ModeForbidden:
		if t.UserEnrollment == Yes {
			add("not available with User Enrollment")
		}
	case ModeRequired:
		if t.UserEnrollment == No {
			add("needs User Enrollment")
		}
	}
	// On iOS the user channel exists only on Shared iPad.
	shared := t.SharedIPad
	if osName == "iOS" && ch == UserChannel && shared == Unknown {
		shared = Yes
	}
	if sp := s.SharedIPad; sp != nil {
		switch sp.Mode {
		case ModeForbidden:
			if shared == Yes {
				add("not available on Shared iPad")
			}
		case ModeRequired:
			if shared == No {
				add("needs Shared iPad")
			}
		}
	}
	if r := channelReason(osName, s, ch, shared); r != "" {
		add("%s", r)
	}
	return c.result(reasons)
}

// lastOS is the last OS release (on every platform) of commands Apple
// lists as removed after it, which the bundled schema does not mark yet.
// Patch releases of that OS still run them.
var lastOS = map[string]string{
	"ScheduleOSUpdate":     "26.0",
	"AvailableOSUpdates":   "26.0",
	"OSUpdateStatus":       "26.0",
	"ScheduleOSUpdateScan": "26.0",
}

// majorMinor keeps "26.1" of "26.1.2".
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	return strings.Join(parts[:min(len(parts), 2)], ".")
}

func channelReason(osName string, s Support, ch Channel, shared Fact) string {
	if sp := s.SharedIPad; osName == "iOS" && shared == Yes && sp != nil && sp.Mode != ModeForbidden {
		if ch == UserChannel && !sp.UserChannel {
			return "not available on the Shared iPad user channel"
		}
		if ch == DeviceChannel && !sp.DeviceChannel {
			return "not available on the Shared iPad device channel"
		}
		return ""
	}
	if ch == UserChannel && !s.UserChannel {
		return "not available on the user channel"
	}
	if ch == DeviceChannel && !s.DeviceChannel {
		return "not available on the device channel"
	}
	return ""
}

func (c *Command) result(reasons []string) error {
	if len(reasons) == 0 {
		return nil
	}
	return &IneligibleError{RequestType: c.RequestType, Reasons: reasons}
}

// compareVersions compares versions as reported, through Orchard's one
// OS version reading.
func compareVersions(a, b string) int { return osversion.Compare(a, b) }

// Unsupported returns the paths of keys in command (a Command dictionary
// from BuildCommand or ValidatePlist) that platform does not support, such
// as DeviceLock's PIN on iOS. Devices ignore or refuse such keys, so the
// admin API can warn; it is not a reason to refuse the command.
func (c *Command) Unsupported(platform string, command map[string]any) []string {
	osName, ok := schemaOS(platform)
	if !ok {
		return nil
	}
	var paths []string
	walkUnsupported(osName, "", c.Keys, command, &paths)
	return paths
}

func walkUnsupported(osName, path string, keys []Key, dict map[string]any, paths *[]string) {
	for _, name := range sortedKeys(dict) {
		k := findKey(keys, name)
		if k == nil {
			continue
		}
		p := name
		if path != "" {
			p = joinPath(path, name)
		}
		walkKey(osName, p, k, dict[name], paths)
	}
}

func walkKey(osName, path string, k *Key, v any, paths *[]string) {
	for _, os := range k.NotOn {
		if os == osName {
			*paths = append(*paths, path)
			return
		}
	}
	switch x := v.(type) {
	case map[string]any:
		if k.Type == TypeDictionary {
			walkUnsupported(osName, path, k.Subkeys, x, paths)
		}
	case []any:
		if k.Type != TypeArray || len(k.Subkeys) == 0 {
			return
		}
		for i, elem := range x {
			ek := &k.Subkeys[0]
			if len(k.Subkeys) > 1 {
				var err error
				if ek, err = pickVariant(path, k.Subkeys, elem, fromPlist); err != nil {
					continue
				}
			}
			walkKey(osName, indexPath(path, i), ek, elem, paths)
		}
	}
}
