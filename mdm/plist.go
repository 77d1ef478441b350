package mdm

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/micromdm/plist"
)

// ErrBinaryPlist: Orchard accepts XML property lists only. Apple devices
// send XML, and the binary decoder has no cycle check: a self-referencing
// binary plist overflows the stack, which no recover can catch.
var ErrBinaryPlist = errors.New("binary property lists are not accepted")

// Shape limits for every property list Orchard decodes. The plist library
// recurses once per nesting level and builds a node per element, so an
// unbounded document can overflow the stack (a fatal error, not a panic) or
// take hundreds of megabytes. Apple's messages nest fewer than 15 levels.
// The element bound is sized for the largest result Apple sends, a Mac's
// InstalledApplicationList: some 30 elements per app (15 keys and their
// values), so 2^18 covers over 8,000 apps, while a 20 MiB body of empty
// elements would hold 3 million.
const (
	MaxPlistDepth    = 64
	MaxPlistElements = 1 << 18
)

// ErrPlistShape is returned for a property list over MaxPlistDepth or
// MaxPlistElements, before any decoding.
var ErrPlistShape = errors.New("property list is too deep or too large")

// Unmarshal decodes an XML property list from an untrusted source. Its
// errors never echo more than a short, quoted excerpt of the input.
func Unmarshal(raw []byte, v any) error {
	if bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("bplist")) {
		return ErrBinaryPlist
	}
	if err := CheckShape(raw); err != nil {
		return err
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

// CheckShape refuses an XML document nested deeper than MaxPlistDepth or
// with more than MaxPlistElements elements. It is one linear pass with no
// allocation, meant to run in front of a decoder; it does not check that
// the XML is well formed (the decoder does). The scan may see more
// elements or depth than the XML parser would, never fewer: comments,
// CDATA and processing instructions end where XML ends them, quoted
// attribute values are skipped, and a declaration (<!DOCTYPE...>), whose
// end is harder to find, is only accepted before the root element.
func CheckShape(raw []byte) error {
	depth, elems, rooted := 0, 0, false
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '<')
		if j < 0 {
			return nil
		}
		i += j
		rest := raw[i:]
		var skip int
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			skip = endAfter(rest, 4, "-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			skip = endAfter(rest, 9, "]]>")
		case bytes.HasPrefix(rest, []byte("<?")):
			skip = endAfter(rest, 2, "?>")
		case bytes.HasPrefix(rest, []byte("<!")):
			if rooted {
				return fmt.Errorf("%w: declaration inside the document", ErrPlistShape)
			}
			skip = endAfter(rest, 2, ">")
		case bytes.HasPrefix(rest, []byte("</")):
			if depth--; depth < 0 {
				return fmt.Errorf("%w: closing tag without an opening one", ErrPlistShape)
			}
			skip = endAfter(rest, 2, ">")
		default:
			var selfClosing bool
			skip, selfClosing = tagEnd(rest)
			rooted = true
			if elems++; elems > MaxPlistElements {
				return fmt.Errorf("%w: more than %d elements", ErrPlistShape, MaxPlistElements)
			}
			if !selfClosing {
				if depth++; depth > MaxPlistDepth {
					return fmt.Errorf("%w: nested deeper than %d levels", ErrPlistShape, MaxPlistDepth)
				}
			}
		}
		if skip < 0 {
			return nil // unterminated: nothing after it is markup to the parser either
		}
		i += skip
	}
	return nil
}

// endAfter returns the length of b up to and including the first end at or
// after from, or -1.
func endAfter(b []byte, from int, end string) int {
	if from > len(b) {
		return -1
	}
	k := bytes.Index(b[from:], []byte(end))
	if k < 0 {
		return -1
	}
	return from + k + len(end)
}

// tagEnd finds the '>' closing the start tag at b[0], skipping quoted
// attribute values, and reports whether the tag closes itself (<array/>).
func tagEnd(b []byte) (int, bool) {
	var quote byte
	for k := 1; k < len(b); k++ {
		c := b[k]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return k + 1, b[k-1] == '/'
		}
	}
	return -1, false
}
