package mdm

import (
	"crypto/rand"
	"fmt"
)

// NewUUID returns a random (version 4) UUID in upper case, the form Apple
// uses for CommandUUID and PayloadUUID. It is Orchard's one generator, for
// command, payload and notification IDs alike.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // crypto/rand.Read never returns an error
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
