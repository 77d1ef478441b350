package storage

import (
	"context"
	"time"
)

// FleetCounts is the dashboard's view of the fleet at one moment.
type FleetCounts struct {
	// Platforms counts the inventories not retired by platform ("" when
	// unknown), OSVersions those that told their OS version by platform
	// and version.
	Platforms  map[string]int
	OSVersions map[PlatformVersion]int
	// Enrolled counts the enrolled devices (device channels); Seen[i] those
	// of them last heard from within Within[i] of now but not within
	// Within[i-1], Seen[len(Within)] those heard from longer ago, and Never
	// those never heard from since they enrolled.
	Enrolled int
	Seen     []int
	Never    int
}

// PlatformVersion is an OS version of one platform.
type PlatformVersion struct{ Platform, OSVersion string }

// FleetCounter counts the fleet in one read.
type FleetCounter interface {
	// CountFleet counts the inventories and the enrolled devices as of
	// now, splitting the devices' last check-ins by within (shortest first).
	// Its cost is a pass over both, so callers keep the answer a while.
	CountFleet(ctx context.Context, now time.Time, within []time.Duration) (*FleetCounts, error)
}

// Add counts one enrolled device last heard from at seen (zero: never).
func (c *FleetCounts) Add(now, seen time.Time, within []time.Duration) {
	c.Enrolled++
	if seen.IsZero() {
		c.Never++
		return
	}
	for i, w := range within {
		if now.Sub(seen) < w {
			c.Seen[i]++
			return
		}
	}
	c.Seen[len(within)]++
}

// NewFleetCounts is an empty count for within.
func NewFleetCounts(within []time.Duration) *FleetCounts {
	return &FleetCounts{Platforms: map[string]int{}, OSVersions: map[PlatformVersion]int{}, Seen: make([]int, len(within)+1)}
}
