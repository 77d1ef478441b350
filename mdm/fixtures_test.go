package mdm_test

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/micromdm/plist"
)

// fixtureDir is the repo-root testdata, shared with other packages.
const fixtureDir = "../testdata"

type fixture struct {
	name string
	raw  []byte
}

// fixtures reads testdata/<dir>/<prefix>*.plist, sorted by name.
func fixtures(tb testing.TB, dir, prefix string) []fixture {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, dir, prefix+"*.plist"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no fixtures in %s/%s*.plist", dir, prefix)
	}
	sort.Strings(paths)
	out := make([]fixture, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, fixture{name: filepath.Base(p), raw: raw})
	}
	return out
}

// generic decodes a fixture independently of Orchard's typed decoders.
func generic(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// plistFields flattens a decoded struct (following embedded structs) into
// its plist key names and values, skipping fields tagged "-".
func plistFields(v any) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		for rv.Kind() == reflect.Pointer {
			rv = rv.Elem()
		}
		rt := rv.Type()
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(rv.Field(i))
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("plist"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = rv.Field(i)
		}
	}
	walk(reflect.ValueOf(v))
	return out
}

// payloadKeys are fixture keys Orchard keeps only in Raw: command
// response bodies and GetToken parameters.
var payloadKeys = map[string]bool{
	"QueryResponses": true, "ProfileList": true, "InstalledApplicationList": true,
	"SecurityInfo": true, "TokenParameters": true,
}

// compareFields checks that every typed field agrees with the generic
// decoding: keys present in the fixture have the same value, fields whose
// key is absent are zero, and no fixture key goes unread.
func compareFields(t *testing.T, typed any, m map[string]any) {
	t.Helper()
	fields := plistFields(typed)
	if len(fields) == 0 {
		t.Fatalf("%T has no plist fields", typed)
	}
	for k := range m {
		if _, ok := fields[k]; !ok && !payloadKeys[k] {
			t.Errorf("fixture key %s is not decoded into %T", k, typed)
		}
	}
	for name, fv := range fields {
		want, present := m[name]
		if !present {
			if !fv.IsZero() {
				t.Errorf("%s = %v, but the fixture has no such key", name, fv.Interface())
			}
			continue
		}
		switch {
		case fv.Kind() == reflect.String:
			if w, ok := want.(string); !ok || fv.String() != w {
				t.Errorf("%s = %q, fixture says %#v", name, fv.String(), want)
			}
		case fv.Kind() == reflect.Bool, fv.Type() == reflect.TypeFor[[]byte]():
			if !reflect.DeepEqual(fv.Interface(), want) {
				t.Errorf("%s = %#v, fixture says %#v", name, fv.Interface(), want)
			}
		}
		// Nested values (ErrorChain) are checked by the callers that know them.
	}
}
