package enroll

// AppleRootDER exposes the embedded root for its fingerprint test.
func AppleRootDER() []byte { return appleRootDER }
