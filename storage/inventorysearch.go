package storage

import (
	"context"
	"strings"
)

// InventorySearch finds devices by a part of what people call them.
type InventorySearch interface {
	// SearchInventory returns up to limit inventories, ordered by DeviceID
	// after the given ID, for which MatchesText(text) holds. Its cost is a
	// scan, but one that decodes only the records that can match.
	SearchInventory(ctx context.Context, text, after string, limit int) ([]DeviceInventory, error)
}

// MatchesText tells whether text is a case-insensitive part of the device
// name, serial number, UDID or device ID.
func (inv *DeviceInventory) MatchesText(text string) bool {
	return ContainsFold(inv.DeviceName, text) || ContainsFold(inv.SerialNumber, text) ||
		ContainsFold(inv.UDID, text) || ContainsFold(inv.DeviceID, text)
}

// ContainsFold is strings.Contains under Unicode simple case folding (as
// strings.EqualFold, comparing equal byte lengths).
func ContainsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	for i := range s { // rune starts only
		if i+len(sub) > len(s) {
			return false
		}
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
