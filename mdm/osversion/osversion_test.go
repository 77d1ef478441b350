package osversion_test

import (
	"errors"
	"testing"

	"github.com/orchardmdm/orchard/mdm/osversion"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]osversion.Version{
		"26":     {Major: 26},
		"26.1":   {Major: 26, Minor: 1},
		"26.1.2": {Major: 26, Minor: 1, Patch: 2},
		"10.15":  {Major: 10, Minor: 15},
	} {
		v, err := osversion.Parse(in)
		if err != nil || v.Major != want.Major || v.Minor != want.Minor || v.Patch != want.Patch || v.String() != in {
			t.Errorf("Parse(%q) = %+v %q, %v", in, v, v.String(), err)
		}
	}
	for _, in := range []string{"", "latest", "26.", ".1", "26.1.2.3", "26..1", "-1", "26.1b", "12345", " 26", "26.1 "} {
		if _, err := osversion.Parse(in); !errors.Is(err, osversion.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestCompare(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"17.0", "17", 0},
		{"10.15.4", "10.15", 1},
		{"9.3.2", "10.0", -1},
		{"18.1", "18.0.1", 1},
		{"26.1", "26.10", -1},
		{"26.10", "26.9", 1},
		{"beta", "1.0", -1},
		{"26.1.2.9", "26.1.2", 0}, // parts past the patch level are ignored
	} {
		if got := osversion.Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := osversion.Compare(tt.b, tt.a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
	v, _ := osversion.Parse("26.1.2")
	if mm := v.MajorMinor(); mm.String() != "26.1" {
		t.Errorf("MajorMinor = %s", mm)
	}
}

func TestAtLeast(t *testing.T) {
	for _, tt := range []struct {
		have, min string
		want      bool
		err       bool
	}{
		{"26.1", "26.1", true, false},
		{"26.1.1", "26.1", true, false},
		{"26.0.1", "26.1", false, false},
		{"18.7", "26", false, false},
		{"26.10", "26.9", true, false},
		{"", "26.1", false, true},
		{"26.1", "latest", false, true},
	} {
		got, err := osversion.AtLeast(tt.have, tt.min)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("AtLeast(%q, %q) = %v, %v", tt.have, tt.min, got, err)
		}
	}
}

func TestBuild(t *testing.T) {
	order := []string{"20A242", "20A242a", "20A243", "20B1", "21A5", "123Z99999zz"}
	for i := range order {
		b, err := osversion.ParseBuild(order[i])
		if err != nil || b.String() != order[i] {
			t.Fatalf("ParseBuild(%q) = %+v, %v", order[i], b, err)
		}
		if i > 0 {
			a, _ := osversion.ParseBuild(order[i-1])
			if a.Compare(b) != -1 || b.Compare(a) != 1 || b.Compare(b) != 0 {
				t.Errorf("%s vs %s: %d", order[i-1], order[i], a.Compare(b))
			}
		}
	}
	for _, in := range []string{"", "23", "B85", "23b85", "23B", "23B85A", "23B85abc", "1234A1", "23B123456", "23B85 "} {
		if _, err := osversion.ParseBuild(in); !errors.Is(err, osversion.ErrInvalid) {
			t.Errorf("ParseBuild(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"26.1.2", "23B85", "", "9999.9999.9999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := osversion.Parse(s); err == nil {
			w, err := osversion.Parse(v.String())
			if err != nil || w.Compare(v) != 0 || osversion.Compare(s, v.String()) != 0 {
				t.Fatalf("%q -> %s does not round-trip", s, v)
			}
		}
		if b, err := osversion.ParseBuild(s); err == nil && b.String() != s && len(s) == len(b.String()) {
			t.Fatalf("build %q -> %s", s, b)
		}
		_ = osversion.Compare(s, "26.1")
	})
}
