package mdmhttp

import (
	"mime"
	"slices"
	"strings"
	"testing"
)

// contentTypeByParse is contentTypeOK as it was, parsing every header that
// is not an exact match.
func contentTypeByParse(header string, allowed []string) bool {
	if header == "" {
		return slices.Contains(allowed, "")
	}
	for _, a := range allowed {
		if strings.EqualFold(header, a) {
			return true
		}
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(mt, a) {
			return true
		}
	}
	return false
}

// The shortcut for headers without parameters decides as the parse did.
func FuzzContentTypeOK(f *testing.F) {
	for _, h := range []string{"", ContentTypeConnect, ContentTypeCheckin, " application/x-apple-aspen-mdm ",
		"APPLICATION/X-APPLE-ASPEN-MDM", "application/x-apple-aspen-mdm; charset=utf-8", "application/xml",
		"application/x-apple-aspen-mdm\t", "application /x-apple-aspen-mdm", "text/plain;", "application/x-apple-aspen-mdm-chec\u212ain"} {
		f.Add(h)
	}
	lists := [][]string{{ContentTypeConnect, ""}, {ContentTypeCheckin}}
	f.Fuzz(func(t *testing.T, h string) {
		for _, allowed := range lists {
			if got, want := contentTypeOK(h, allowed), contentTypeByParse(h, allowed); got != want {
				t.Fatalf("contentTypeOK(%q, %q) = %v, the parse says %v", h, allowed, got, want)
			}
		}
	})
}

func TestContentTypeNoAllocation(t *testing.T) {
	allowed := []string{ContentTypeCheckin}
	if n := testing.AllocsPerRun(100, func() { contentTypeOK(ContentTypeConnect, allowed) }); n != 0 {
		t.Fatalf("%v allocations to refuse a connect's content type as a check-in's", n)
	}
}
