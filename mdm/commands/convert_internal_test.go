package commands

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// No request payload in Apple's schema uses <date> or range bounds today,
// so these rules are checked on hand-made keys.
func TestConvertValueSyntheticKeys(t *testing.T) {
	ratio := &Key{Name: "Ratio", Type: TypeReal, Min: f(0), Max: f(1)}
	count := &Key{Name: "Count", Type: TypeInteger, Min: f(1), Max: f(10)}
	when := &Key{Name: "When", Type: TypeDate}
	tests := []struct {
		name    string
		key     *Key
		in      any
		src     source
		want    any
		wantErr string
	}{
		{"real in range", ratio, json.Number("0.25"), fromJSON, 0.25, ""},
		{"integer is a valid real", ratio, json.Number("1"), fromJSON, 1.0, ""},
		{"real below min", ratio, json.Number("-0.1"), fromJSON, nil, "X: must be at least 0"},
		{"real above max", ratio, json.Number("1.5"), fromJSON, nil, "X: must be at most 1"},
		{"real from string", ratio, "0.5", fromJSON, nil, "X: must be a number"},
		{"real from plist float32", ratio, float32(0.5), fromPlist, 0.5, ""},
		{"integer in range", count, json.Number("10"), fromJSON, int64(10), ""},
		{"integer above max", count, json.Number("11"), fromJSON, nil, "X: must be at most 10"},
		{"integer below min from plist", count, uint64(0), fromPlist, nil, "X: must be at least 1"},
		{"integer from plist uint64", count, uint64(3), fromPlist, int64(3), ""},
		{"integer from plist too big", count, uint64(1 << 63), fromPlist, nil, "X: must be an integer"},
		{"integral float64", count, 4.0, fromJSON, int64(4), ""},
		{"date RFC 3339", when, "2026-01-02T10:04:05-05:00", fromJSON, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"date not RFC 3339", when, "02/01/2026", fromJSON, nil, "X: must be an RFC 3339 date string, e.g. 2026-01-02T15:04:05Z"},
		{"date from plist", when, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), fromPlist, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"string date in plist", when, "2026-01-02T15:04:05Z", fromPlist, nil, "X: must be a date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convertValue("X", tt.key, tt.in, tt.src)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"17.0", "17", 0},
		{"10.15.4", "10.15", 1},
		{"9.3.2", "10.0", -1},
		{"18.1", "18.0.1", 1},
		{"beta", "1.0", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestStringsNeverPanic(t *testing.T) {
	for _, ty := range []Type{TypeInvalid, TypeAny, Type(200)} {
		if ty.String() == "" {
			t.Errorf("Type(%d).String() is empty", ty)
		}
	}
	if got := Type(200).String(); got != "Type(200)" {
		t.Errorf("Type(200).String() = %q", got)
	}
	if got := Fact(9).String(); got != "Fact(9)" {
		t.Errorf("Fact(9).String() = %q", got)
	}
	if got := (&Error{Reason: "r"}).Error(); got != "r" {
		t.Errorf("Error without path = %q", got)
	}
}
