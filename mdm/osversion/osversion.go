// Package osversion is Orchard's one reading of Apple OS versions and
// build numbers: the command eligibility rules (introduced, removed), the
// software-update enforcement (target version and build, the fleet view)
// and the minimum OS at enrollment all compare versions through it, so
// "26.1" < "26.10" and "17" == "17.0" hold everywhere.
//
// It keeps no table of "latest" versions: Apple publishes those, they
// change every few weeks, and a stale copy compiled into the server would
// be wrong in a way no test notices.
package osversion

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid wraps every refusal of a version or build string.
var ErrInvalid = errors.New("invalid OS version")

// MaxParts is how many dotted numbers a version has at most (major,
// minor, patch), and MaxPart the largest number in one.
const (
	MaxParts = 3
	MaxPart  = 9999
)

// Version is a parsed OS version: major, minor, patch (missing ones are 0).
// The zero Version is 0.0.0.
type Version struct {
	Major, Minor, Patch int
	parts               int // how many were written, for String
}

// Parse reads "26", "26.1" or "26.1.2": one to three dot-separated
// decimal numbers, each at most MaxPart, nothing else.
func Parse(s string) (Version, error) {
	if s == "" {
		return Version{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	fields := strings.Split(s, ".")
	if len(fields) > MaxParts {
		return Version{}, fmt.Errorf("%w: %.32q has more than %d parts", ErrInvalid, s, MaxParts)
	}
	var n [MaxParts]int
	for i, f := range fields {
		if f == "" || len(f) > 4 || strings.TrimLeft(f, "0123456789") != "" {
			return Version{}, fmt.Errorf("%w: %.32q is not like 26.1 or 26.1.2", ErrInvalid, s)
		}
		n[i], _ = strconv.Atoi(f) // at most 4 digits: cannot fail or exceed MaxPart
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], parts: len(fields)}, nil
}

// String writes the version as it was given ("26.1" stays "26.1").
func (v Version) String() string {
	p := [MaxParts]int{v.Major, v.Minor, v.Patch}
	k := max(v.parts, 1)
	s := make([]string, k)
	for i := range k {
		s[i] = strconv.Itoa(p[i])
	}
	return strings.Join(s, ".")
}

// Compare returns -1, 0 or 1 as v is below, equal to or above w.
func (v Version) Compare(w Version) int {
	for _, d := range [...]int{v.Major - w.Major, v.Minor - w.Minor, v.Patch - w.Patch} {
		if d < 0 {
			return -1
		}
		if d > 0 {
			return 1
		}
	}
	return 0
}

// MajorMinor drops the patch level ("26.1.2" -> 26.1).
func (v Version) MajorMinor() Version {
	return Version{Major: v.Major, Minor: v.Minor, parts: min(max(v.parts, 1), 2)}
}

// lenient reads what a device or a schema wrote, never failing: each part
// that is not a number counts as 0 ("beta" is 0.0.0).
func lenient(s string) Version {
	var v Version
	p := [MaxParts]*int{&v.Major, &v.Minor, &v.Patch}
	for i, f := range strings.SplitN(s, ".", MaxParts+1) {
		if i == MaxParts {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n >= 0 && n <= MaxPart {
			*p[i] = n
		}
		v.parts = i + 1
	}
	return v
}

// Compare compares two version strings as reported (by a device, or in
// Apple's schema): parts that are not numbers count as 0, so it never
// fails. Use Parse for versions an admin types.
func Compare(a, b string) int { return lenient(a).Compare(lenient(b)) }

// AtLeast says whether a device reporting version have meets the minimum
// min (an admin's setting, parsed strictly). A device whose version cannot
// be read does not meet it: an error says why.
func AtLeast(have, min string) (bool, error) {
	m, err := Parse(min)
	if err != nil {
		return false, fmt.Errorf("minimum: %w", err)
	}
	h, err := Parse(have)
	if err != nil {
		return false, fmt.Errorf("device: %w", err)
	}
	return h.Compare(m) >= 0, nil
}

// Build is an Apple build number such as 23B85 or 20A242a: the major
// release number, a train letter, a build number and an optional
// lower-case supplemental suffix.
type Build struct {
	Major  int
	Train  byte
	Number int
	Suffix string
}

// ParseBuild reads a build number: 1 to 3 digits, one upper-case letter,
// 1 to 5 digits, and at most 2 lower-case letters.
func ParseBuild(s string) (Build, error) {
	bad := fmt.Errorf("%w: build %.32q is not like 23B85 or 20A242a", ErrInvalid, s)
	i := 0
	for i < len(s) && i < 4 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 3 || i >= len(s) || s[i] < 'A' || s[i] > 'Z' {
		return Build{}, bad
	}
	b := Build{Train: s[i]}
	b.Major, _ = strconv.Atoi(s[:i])
	j := i + 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i+1 || j-i-1 > 5 {
		return Build{}, bad
	}
	b.Number, _ = strconv.Atoi(s[i+1 : j])
	b.Suffix = s[j:]
	if len(b.Suffix) > 2 || strings.TrimLeft(b.Suffix, "abcdefghijklmnopqrstuvwxyz") != "" {
		return Build{}, bad
	}
	return b, nil
}

// String writes the build back ("23B85").
func (b Build) String() string {
	return strconv.Itoa(b.Major) + string(b.Train) + strconv.Itoa(b.Number) + b.Suffix
}

// Compare orders builds as Apple issues them: by major release, train,
// number, then suffix (20A242 < 20A242a < 20A243).
func (b Build) Compare(c Build) int {
	switch {
	case b.Major != c.Major:
		return sign(b.Major - c.Major)
	case b.Train != c.Train:
		return sign(int(b.Train) - int(c.Train))
	case b.Number != c.Number:
		return sign(b.Number - c.Number)
	}
	return strings.Compare(b.Suffix, c.Suffix)
}

func sign(d int) int {
	if d < 0 {
		return -1
	}
	return 1
}
