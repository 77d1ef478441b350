package mdm_test

import (
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

func TestPlatform(t *testing.T) {
	for _, tc := range []struct{ product, model, want string }{
		{"iPhone14,2", "", "iOS"},
		{"iPad13,16", "", "iPadOS"},
		{"", "MacBookPro18,3", "macOS"},
		{"Mac14,2", "Mac14,2", "macOS"},
		{"VirtualMac2,1", "", "macOS"},
		{"AppleTV11,1", "", "tvOS"},
		{"RealityDevice14,1", "", "visionOS"},
		{"Watch6,1", "", "watchOS"},
		{"", "", ""},
		{"Toaster1,1", "", ""},
		{"", "Apple TV", "tvOS"},
		{"", "MacBook Pro", "macOS"},
	} {
		if got := mdm.Platform(tc.product, tc.model); got != tc.want {
			t.Errorf("Platform(%q, %q) = %q, want %q", tc.product, tc.model, got, tc.want)
		}
	}
}
