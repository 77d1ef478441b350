package mdm

import (
	"bytes"
	"strings"
)

// The fast path for reports. Most connects carry a flat dictionary of a
// few short strings (Idle, or an Acknowledged with little in it), and the
// general decoder (encoding/xml and reflection) was a quarter of an idle
// connect's CPU. decodeFlatReport reads exactly that shape, written the way
// Apple devices write it, and declines everything else (entities, CDATA,
// comments, non-ASCII text, carriage returns, nested values, repeated
// keys...), which then goes to Unmarshal. Whatever it reads, Unmarshal
// reads to the same Report; FuzzFlatReportAgainstUnmarshal holds it to that.

const (
	xmlDecl     = `<?xml version="1.0" encoding="UTF-8"?>`
	plistDoc    = `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`
	plistOpen   = `<plist version="1.0">`
	maxFlatKeys = 32
)

// flatScanner walks a document byte by byte; it never allocates.
type flatScanner struct {
	b []byte
	i int
}

func (s *flatScanner) lit(x string) bool {
	if len(s.b)-s.i >= len(x) && string(s.b[s.i:s.i+len(x)]) == x {
		s.i += len(x)
		return true
	}
	return false
}

// space skips the whitespace XML and the plist decoder both ignore
// between elements (no carriage return: XML rewrites it).
func (s *flatScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n') {
		s.i++
	}
}

// text reads character data up to the next '<', from a conservative set
// of printable ASCII that XML passes through unchanged.
func (s *flatScanner) text() ([]byte, bool) {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] != '<' {
		if !flatTextByte(s.b[s.i]) {
			return nil, false
		}
		s.i++
	}
	return s.b[start:s.i], true
}

func flatTextByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte(" -_.,:;@+=/()#", c) >= 0
}

// reportField returns where a string key of a Report goes, or nil for a
// key the Report does not have.
func reportField(r *Report, key []byte) *string {
	switch string(key) {
	case "UDID":
		return &r.UDID
	case "EnrollmentID":
		return &r.EnrollmentID
	case "UserID":
		return &r.UserID
	case "EnrollmentUserID":
		return &r.EnrollmentUserID
	case "UserShortName":
		return &r.UserShortName
	case "UserLongName":
		return &r.UserLongName
	case "Status":
		return (*string)(&r.Status)
	case "CommandUUID":
		return &r.CommandUUID
	case "RequestType":
		return &r.RequestType
	}
	return nil
}

// decodeFlatReport fills r from raw and reports true, or reports false
// (r then undefined) for anything but the flat shape it reads.
func decodeFlatReport(raw []byte, r *Report) bool {
	s := &flatScanner{b: raw}
	if s.lit(xmlDecl) {
		s.space()
	}
	if s.lit(plistDoc) {
		s.space()
	}
	if !s.lit(plistOpen) {
		return false
	}
	s.space()
	if !s.lit("<dict>") {
		return false
	}
	var seen [maxFlatKeys][]byte
	n := 0
	for {
		s.space()
		if s.lit("</dict>") {
			break
		}
		if n == maxFlatKeys || !s.lit("<key>") {
			return false
		}
		key, ok := s.text()
		if !ok || !s.lit("</key>") {
			return false
		}
		for _, k := range seen[:n] {
			if bytes.Equal(k, key) {
				return false // the general decoder keeps the last; keep it simple
			}
		}
		seen[n] = key
		n++
		s.space()
		if string(key) == "ErrorChain" {
			return false // an array of dictionaries
		}
		field := reportField(r, key)
		switch {
		case s.lit("<string/>"):
			if field != nil {
				*field = ""
			}
		case s.lit("<string>"):
			v, ok := s.text()
			if !ok || !s.lit("</string>") {
				return false
			}
			if field != nil {
				*field = string(v)
			}
		case field != nil:
			return false // a known key with another type
		case s.lit("<true/>"), s.lit("<false/>"), s.lit("<array/>"), s.lit("<dict/>"):
			// Ignored, as the general decoder ignores unknown keys.
		default:
			return false
		}
	}
	s.space()
	if !s.lit("</plist>") {
		return false
	}
	s.space()
	return s.i == len(raw)
}
