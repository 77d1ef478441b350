package storage

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSearchKeyHoldsEveryMatch: whenever MatchesText holds, the record's
// SearchKey holds the text's needle, over random names built from runes
// whose case variants differ in byte length (Kelvin sign, long s, final
// sigma, dotted I), so the backends' narrowing never loses a match.
func TestSearchKeyHoldsEveryMatch(t *testing.T) {
	alphabet := []rune("aAkKsSiI\u212A\u017FσςΣİıäÄ0-\x00 ")
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	matches := 0
	for range 20000 {
		inv := DeviceInventory{DeviceID: word(3), DeviceName: word(6), SerialNumber: word(4), UDID: word(3)}
		text := word(1 + rng.IntN(3))
		if !inv.MatchesText(text) {
			continue
		}
		matches++
		needle, ok := SearchNeedle(text)
		if !ok || !strings.Contains(inv.SearchKey(), needle) {
			t.Fatalf("%+v matches %q but its key %q lacks %q (ok %v)", inv, text, inv.SearchKey(), needle, ok)
		}
	}
	if matches < 1000 {
		t.Fatalf("only %d matches drawn", matches)
	}
	if _, ok := SearchNeedle("\xff"); ok {
		t.Error("SearchNeedle accepted text that is not UTF-8")
	}
}
