package mdm

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/micromdm/plist"
)

// ErrBinaryPlist: Orchard accepts XML property lists only. Apple devices
// send XML, and the binary decoder has no cycle check: a self-referencing
// binary plist overflows the stack, which no recover can catch.
var ErrBinaryPlist = errors.New("binary property lists are not accepted")

// Unmarshal decodes an XML property list from an untrusted source. Its
// errors never echo more than a short, quoted excerpt of the input.
func Unmarshal(raw []byte, v any) error {
	if bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("bplist")) {
		return ErrBinaryPlist
	}
	if err := plist.Unmarshal(raw, v); err != nil {
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		return errors.New(strconv.Quote(msg))
	}
	return nil
}
