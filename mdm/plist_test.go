package mdm_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

// nested returns a plist whose root holds n levels of open, tag.
func nested(n int, open, close string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n" +
		`<plist version="1.0">`)
	b.WriteString(strings.Repeat(open, n))
	b.WriteString(strings.Repeat(close, n))
	b.WriteString(`</plist>`)
	return b.Bytes()
}

// The attack of issue #10: 3 million nested arrays (about 20 MiB) used to
// overflow the decoder's stack, a fatal error that kills the process.
func TestUnmarshalRefusesDeepNesting(t *testing.T) {
	raw := nested(3_000_000, "<array>", "</array>")
	var v any
	if err := mdm.Unmarshal(raw, &v); !errors.Is(err, mdm.ErrPlistShape) {
		t.Fatalf("Unmarshal of %d MiB of nested arrays: %v, want ErrPlistShape", len(raw)>>20, err)
	}
	if _, err := mdm.DecodeReport(raw); !errors.Is(err, mdm.ErrParse) {
		t.Fatalf("DecodeReport: %v, want ErrParse", err)
	}
}

func TestCheckShape(t *testing.T) {
	elems := func(n int) []byte {
		return []byte(`<plist><array>` + strings.Repeat("<true/>", n) + `</array></plist>`)
	}
	cases := []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"depth at the limit", nested(mdm.MaxPlistDepth-1, "<array>", "</array>"), true},
		{"one level over", nested(mdm.MaxPlistDepth, "<array>", "</array>"), false},
		{"dicts count like arrays", nested(mdm.MaxPlistDepth, "<dict><key>k</key>", "</dict>"), false},
		{"self-closing tags add no depth", nested(mdm.MaxPlistDepth-1, "<array><array/><dict/>", "</array>"), true},
		{"elements at the limit", elems(mdm.MaxPlistElements - 2), true},
		{"one element over", elems(mdm.MaxPlistElements - 1), false},
		{"tags inside comments and CDATA are text", []byte(`<plist><!-- ` + strings.Repeat("<array>", 100) + ` --><string><![CDATA[` + strings.Repeat("<dict>", 100) + `]]></string></plist>`), true},
		{"quoted > in an attribute", []byte(`<plist version="1>0"><array a='>'></array></plist>`), true},
		{"processing instruction", []byte(`<?xml version="1.0"?><?x <array><array>?><plist/>`), true},
		{"declaration inside the document", []byte(`<plist><array><!DOCTYPE x "></array>"></array></plist>`), false},
		{"closing tag first", []byte(`</array>` + string(nested(mdm.MaxPlistDepth, "<array>", "</array>"))), false},
		{"unterminated comment", []byte(`<plist><!-- <array>`), true},
		{"empty", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := mdm.CheckShape(c.raw)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, mdm.ErrPlistShape) {
				t.Fatalf("got %v, want ErrPlistShape", err)
			}
		})
	}
}

// FuzzCheckShape: whatever CheckShape accepts, the XML parser the plist
// library runs on never goes deeper or sees more elements than the limits
// allow, so the scan cannot be talked into undercounting.
func FuzzCheckShape(f *testing.F) {
	f.Add(nested(mdm.MaxPlistDepth, "<array>", "</array>"))
	f.Add(nested(mdm.MaxPlistDepth-1, "<array>", "</array>"))
	f.Add([]byte(`<plist><array><!DOCTYPE x "></array>"><array></array></plist>`))
	f.Add([]byte(`<plist><a b=">"><!-- > --><![CDATA[<a>]]><?p <a>?></a></plist>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if mdm.CheckShape(raw) != nil {
			return
		}
		d := xml.NewDecoder(bytes.NewReader(raw))
		depth, elems := 0, 0
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			switch tok.(type) {
			case xml.StartElement:
				depth++
				elems++
				if depth > mdm.MaxPlistDepth || elems > mdm.MaxPlistElements {
					t.Fatalf("CheckShape accepted a document the parser sees %d deep with %d elements", depth, elems)
				}
			case xml.EndElement:
				depth--
			}
		}
	})
}
