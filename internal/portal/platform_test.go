package portal

import (
	"strings"
	"testing"
)

// The platform comes from the User-Agent; a Mac User-Agent says an iPad
// showing desktop sites looks the same, so the page can tell the person.
func TestPlatformFromUA(t *testing.T) {
	for _, c := range []struct{ ua, want, why string }{
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", iOS, "iPhone"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", iPadOS, "iPad"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15", macOS, "an iPad"},
		{"curl/8.5.0", iOS, "did not say"},
		{"", iOS, "did not say"},
	} {
		got, why := platformFromUA(c.ua)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("platformFromUA(%q) = %q (%s), want %q mentioning %q", c.ua, got, why, c.want, c.why)
		}
	}
}
