package mdm

import "strings"

// Platform names the OS family a device runs, from the ProductName (or
// Model) it reports: iOS, iPadOS, macOS, tvOS, visionOS, watchOS, or ""
// when it cannot tell.
func Platform(productName, model string) string {
	for _, s := range []string{productName, model} {
		switch {
		case s == "":
			continue
		case strings.HasPrefix(s, "iPhone"), strings.HasPrefix(s, "iPod"):
			return "iOS"
		case strings.HasPrefix(s, "iPad"):
			return "iPadOS"
		case strings.HasPrefix(s, "Mac"), strings.HasPrefix(s, "iMac"), strings.HasPrefix(s, "VirtualMac"):
			return "macOS"
		case strings.HasPrefix(s, "AppleTV"):
			return "tvOS"
		case strings.HasPrefix(s, "RealityDevice"):
			return "visionOS"
		case strings.HasPrefix(s, "Watch"):
			return "watchOS"
		}
	}
	return ""
}
