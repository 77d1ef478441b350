package dep

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/storage"
)

// SetupCommands are the commands an ADE device needs right after it
// enrolls, from the profile Orchard assigned it: its name from the profile's
// template, Shared iPad settings, the cellular plan URL, and, when the
// device waits in Setup Assistant (awaiting), DeviceConfigured last so it
// is released only after the rest. A serial that is not an ADE device
// gives no commands. Every command is checked against Apple's schema.
func (s *Service) SetupCommands(ctx context.Context, serial, modelName string, awaiting bool) ([]map[string]any, error) {
	var cmds []setupCommand
	d, err := s.store.DEPDevice(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d.ProfileID != "" {
		p, err := s.store.DEPProfile(ctx, d.TokenID, d.ProfileID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			cmds = profileCommands(p, d, modelName)
		}
	}
	if awaiting {
		cmds = append(cmds, setupCommand{"DeviceConfigured", nil})
	}
	out := make([]map[string]any, 0, len(cmds))
	for _, c := range cmds {
		built, err := commands.BuildCommand(c.requestType, c.payload)
		if err != nil {
			return nil, fmt.Errorf("dep: setup command %s: %w", c.requestType, err)
		}
		out = append(out, built)
	}
	return out, nil
}

type setupCommand struct {
	requestType string
	payload     map[string]any
}

// passcodeGraceValues are the grace periods (seconds) Apple's Settings
// command accepts; a profile's value is rounded down to one of them.
var passcodeGraceValues = []int64{0, 60, 300, 900, 3600, 14400}

func profileCommands(p storage.DEPProfile, d storage.DEPDevice, modelName string) []setupCommand {
	var settings []any
	if p.DeviceNameTemplate != "" {
		deviceType := d.DeviceFamily
		if deviceType == "" {
			deviceType = modelName
		}
		name := strings.NewReplacer("{{SERIAL}}", d.Serial, "{{DEVICETYPE}}", deviceType).Replace(p.DeviceNameTemplate)
		settings = append(settings, map[string]any{"Item": "DeviceName", "DeviceName": name})
	}
	if p.SharedIPad {
		shared := map[string]any{"Item": "SharedDeviceConfiguration", "TemporarySessionOnly": p.TemporarySessionOnly}
		if p.MaxCachedUsers > 0 {
			shared["ResidentUsers"] = int64(p.MaxCachedUsers)
		}
		if p.UserSessionTimeout > 0 {
			shared["UserSessionTimeout"] = int64(p.UserSessionTimeout / time.Second)
		}
		if p.TemporarySessionTimeout > 0 {
			shared["TemporarySessionTimeout"] = int64(p.TemporarySessionTimeout / time.Second)
		}
		settings = append(settings, shared)
		grace := int64(p.PasscodeLockGracePeriod / time.Second)
		i, _ := slices.BinarySearch(passcodeGraceValues, grace+1)
		settings = append(settings, map[string]any{"Item": "PasscodeLockGracePeriod", "PasscodeLockGracePeriod": passcodeGraceValues[max(i-1, 0)]})
	}
	var out []setupCommand
	if len(settings) > 0 {
		out = append(out, setupCommand{"Settings", map[string]any{"Settings": settings}})
	}
	if p.CellularPlanURL != "" {
		out = append(out, setupCommand{"RefreshCellularPlans", map[string]any{"eSIMServerURL": p.CellularPlanURL}})
	}
	return out
}
