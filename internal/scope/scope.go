// Package scope is Orchard's one targeting model: which channels (device
// channels, or user channels of macOS users and Shared iPad users) a piece
// of configuration applies to. Configuration profiles and declaration sets
// are both scoped with a Scope and resolved by a Resolver, so an admin
// reasons about one set of rules.
//
// Groups and categories are owned by other parts of Orchard; they plug in
// through GroupResolver and CategoryResolver. A Resolver without them
// treats every device as a member of no group and no category, so a scope
// naming a group or a category matches nothing through it (never everything).
package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ChannelKind says which channels of a device a scope selects.
type ChannelKind string

const (
	// DeviceChannel selects the device channel (the default).
	DeviceChannel ChannelKind = "device"
	// UserChannel selects the user channels of the devices in scope
	// (macOS users, Shared iPad users).
	UserChannel ChannelKind = "user"
)

// Scope selects channels. A device is in scope when it is included, passes
// the filters and is not excluded:
//   - included: All, or listed in Devices, or a member of one of Groups or
//     Categories; a scope that names only filters includes every device;
//   - filters: Platforms and Ownership, each ignored when empty, each
//     applied to every included device but the explicitly listed ones;
//   - excluded: listed in Exclude, or in one of ExcludeGroups or
//     ExcludeCategories; exclusion always wins.
//
// Channel then picks the device channel or the device's user channels.
// The zero Scope selects nothing.
type Scope struct {
	All        bool     `json:"all,omitempty"`
	Platforms  []string `json:"platforms,omitempty"` // mdm.Platform names: iOS, iPadOS, macOS, tvOS, visionOS, watchOS
	Ownership  []string `json:"ownership,omitempty"` // storage.Ownership values: corporate, personal
	Groups     []string `json:"groups,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Devices    []string `json:"devices,omitempty"` // device IDs (UDID or EnrollmentID)

	Exclude           []string `json:"exclude,omitempty"` // device IDs
	ExcludeGroups     []string `json:"exclude_groups,omitempty"`
	ExcludeCategories []string `json:"exclude_categories,omitempty"`

	Channel ChannelKind `json:"channel,omitempty"` // "" means device
}

// Limits of a scope, so one stored scope cannot grow without bound.
const (
	MaxEntries = 10000 // per list
	maxName    = 256
)

var knownPlatforms = []string{"iOS", "iPadOS", "macOS", "tvOS", "visionOS", "watchOS"}
var knownOwnership = []string{"corporate", "personal"}

// ErrInvalid wraps every reason Validate refuses a scope.
var ErrInvalid = errors.New("invalid scope")

// Validate checks a scope an admin sent: known platforms, ownership and
// channel kind, bounded lists of non-empty names.
func (s Scope) Validate() error {
	switch s.Channel {
	case "", DeviceChannel, UserChannel:
	default:
		return fmt.Errorf("%w: channel %q is not device or user", ErrInvalid, s.Channel)
	}
	for _, p := range s.Platforms {
		if !slices.Contains(knownPlatforms, p) {
			return fmt.Errorf("%w: unknown platform %q (one of %s)", ErrInvalid, p, strings.Join(knownPlatforms, ", "))
		}
	}
	for _, o := range s.Ownership {
		if !slices.Contains(knownOwnership, o) {
			return fmt.Errorf("%w: unknown ownership %q (corporate or personal)", ErrInvalid, o)
		}
	}
	lists := []struct {
		name string
		v    []string
	}{
		{"platforms", s.Platforms}, {"ownership", s.Ownership}, {"groups", s.Groups}, {"categories", s.Categories},
		{"devices", s.Devices}, {"exclude", s.Exclude}, {"exclude_groups", s.ExcludeGroups},
		{"exclude_categories", s.ExcludeCategories},
	}
	for _, l := range lists {
		if len(l.v) > MaxEntries {
			return fmt.Errorf("%w: %s has %d entries (at most %d)", ErrInvalid, l.name, len(l.v), MaxEntries)
		}
		for _, n := range l.v {
			if n == "" || len(n) > maxName {
				return fmt.Errorf("%w: %s holds an empty or over-long name", ErrInvalid, l.name)
			}
		}
	}
	return nil
}

// Kind is the channel kind the scope selects, DeviceChannel when unset.
func (s Scope) Kind() ChannelKind {
	if s.Channel == UserChannel {
		return UserChannel
	}
	return DeviceChannel
}

// UsesGroups says whether a change of group membership can change what the
// scope selects; UsesCategories the same for categories. A reconciler uses
// them to requeue only the scopes a change touches.
func (s Scope) UsesGroups() bool { return len(s.Groups) > 0 || len(s.ExcludeGroups) > 0 }

// UsesCategories: see UsesGroups.
func (s Scope) UsesCategories() bool {
	return len(s.Categories) > 0 || len(s.ExcludeCategories) > 0
}

func (s Scope) includesAll() bool {
	return s.All || (len(s.Devices) == 0 && len(s.Groups) == 0 && len(s.Categories) == 0 &&
		(len(s.Platforms) > 0 || len(s.Ownership) > 0))
}
