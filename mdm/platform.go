package mdm

import "strings"

// Platform names the OS family a device runs, from its ProductName
// (iPhone15,2, Mac14,9) or, failing that, its Model or ModelName (iPhone,
// MacBook Pro, Apple TV): iOS, iPadOS, macOS, tvOS, visionOS, watchOS, or
// "" when neither tells.
func Platform(productName, model string) string {
	if p := platformPrefix(productName); p != "" {
		return p
	}
	return platformPrefix(model)
}

var platformPrefixes = []struct{ prefix, platform string }{
	{"iPhone", "iOS"}, {"iPod", "iOS"}, {"iPad", "iPadOS"}, {"AppleTV", "tvOS"}, {"Apple TV", "tvOS"},
	{"Watch", "watchOS"}, {"Apple Watch", "watchOS"}, {"RealityDevice", "visionOS"}, {"Apple Vision", "visionOS"},
	{"Mac", "macOS"}, {"iMac", "macOS"}, {"VirtualMac", "macOS"},
}

func platformPrefix(name string) string {
	for _, p := range platformPrefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.platform
		}
	}
	return ""
}
