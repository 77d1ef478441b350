package enroll

import "testing"

// Versions compare numerically, part by part; an unreadable device
// version is below any minimum (it never slips through).
func TestVersionBelow(t *testing.T) {
	for _, c := range []struct {
		have, want string
		below      bool
	}{
		{"17.5", "18.0", true},
		{"18.0", "18.0", false},
		{"18", "18.0", false},
		{"18.0.1", "18.0", false},
		{"17.10", "17.9", false},
		{"17.9", "17.10", true},
		{"26.1", "18.0", false},
		{"", "18.0", true},
		{"eighteen", "18.0", true},
		{"18.0 (a)", "18.0", true},
		{"1.2.3.4.5", "1.0", true},
	} {
		if got := versionBelow(c.have, c.want); got != c.below {
			t.Errorf("versionBelow(%q, %q) = %v, want %v", c.have, c.want, got, c.below)
		}
	}
}

func TestPlatformOf(t *testing.T) {
	for product, want := range map[string]string{
		"iPhone14,2": "iOS", "iPad13,16": "iOS", "iPod9,1": "iOS",
		"MacBookPro18,1": "macOS", "Mac14,2": "macOS", "VirtualMac2,1": "macOS",
	} {
		if got := platformOf(product); got != want {
			t.Errorf("platformOf(%q) = %q, want %q", product, got, want)
		}
	}
}
