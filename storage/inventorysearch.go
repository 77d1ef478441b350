package storage

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InventorySearch finds devices by a part of what people call them.
type InventorySearch interface {
	// SearchInventory returns up to limit inventories, ordered by DeviceID
	// after the given ID, for which MatchesText(text) holds. The backends
	// keep each record's SearchKey indexed, so a search reads the small
	// keys and decodes only the records whose key holds the text.
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

// SearchKey is what the backends index for SearchInventory: the searched
// fields (the device ID only when it is not the UDID), each FoldText-ed,
// one a line. Whenever MatchesText(text) holds, the key holds
// SearchNeedle(text), so a record whose key does not cannot match.
func (inv *DeviceInventory) SearchKey() string {
	udid := FoldText(inv.UDID)
	parts := []string{FoldText(inv.DeviceName), FoldText(inv.SerialNumber), udid}
	if id := FoldText(inv.DeviceID); id != udid {
		parts = append(parts, id)
	}
	return strings.Join(parts, "\n")
}

// SearchNeedle is what a SearchKey must hold for MatchesText(text) to be
// possible. ok is false for text that is not valid UTF-8 or holds U+FFFD:
// a match could then start or end inside a rune, which the key cannot
// tell, and every record must be checked.
func SearchNeedle(text string) (needle string, ok bool) {
	if !utf8.ValidString(text) || strings.ContainsRune(text, utf8.RuneError) {
		return "", false
	}
	return FoldText(text), true
}

// FoldText maps every rune to one representative of its simple case
// folding orbit (the one strings.EqualFold compares by): ASCII letters to
// lower case ('K', 'k' and the Kelvin sign all become 'k'), other runes to
// the smallest rune of their orbit. Two strings are EqualFold exactly when
// their FoldText is equal rune for rune.
func FoldText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if least < utf8.RuneSelf { // the orbit of an ASCII letter
		return unicode.ToLower(least)
	}
	return least
}
