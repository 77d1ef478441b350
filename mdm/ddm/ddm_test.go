package ddm_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm/ddm"
)

func TestValidateSoftwareUpdate(t *testing.T) {
	good := `{"TargetOSVersion":"26.1","TargetBuildVersion":"23B85","TargetLocalDateTime":"2026-12-15T20:00:00","DetailsURL":"https://it.example.com/x"}`
	if err := ddm.Validate(ddm.TypeSoftwareUpdateSpecific, "u", []byte(good)); err != nil {
		t.Fatalf("good payload refused: %v", err)
	}
	for name, p := range map[string]string{
		"no version":        `{"TargetLocalDateTime":"2026-12-15T20:00:00"}`,
		"no deadline":       `{"TargetOSVersion":"26.1"}`,
		"zoned deadline":    `{"TargetOSVersion":"26.1","TargetLocalDateTime":"2026-12-15T20:00:00Z"}`,
		"impossible date":   `{"TargetOSVersion":"26.1","TargetLocalDateTime":"2026-02-30T20:00:00"}`,
		"bad version":       `{"TargetOSVersion":"latest","TargetLocalDateTime":"2026-12-15T20:00:00"}`,
		"unknown key":       `{"TargetOSVersion":"26.1","TargetLocalDateTime":"2026-12-15T20:00:00","Force":true}`,
		"number version":    `{"TargetOSVersion":26,"TargetLocalDateTime":"2026-12-15T20:00:00"}`,
		"bad url":           `{"TargetOSVersion":"26.1","TargetLocalDateTime":"2026-12-15T20:00:00","DetailsURL":"javascript:x"}`,
		"bad build":         `{"TargetOSVersion":"26.1","TargetBuildVersion":"latest","TargetLocalDateTime":"2026-12-15T20:00:00"}`,
		"four-part version": `{"TargetOSVersion":"26.1.2.3","TargetLocalDateTime":"2026-12-15T20:00:00"}`,
		"not an object":     `["TargetOSVersion"]`,
	} {
		if err := ddm.Validate(ddm.TypeSoftwareUpdateSpecific, "u", []byte(p)); !errors.Is(err, ddm.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for name, c := range map[string][2]string{
		"type outside the four kinds": {"com.example.thing", "x"},
		"identifier with a slash":     {"com.apple.configuration.passcode.settings", "a/b"},
		"empty identifier":            {"com.apple.configuration.passcode.settings", ""},
	} {
		if err := ddm.Validate(c[0], c[1], []byte(`{}`)); !errors.Is(err, ddm.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := ddm.Validate("com.apple.configuration.passcode.settings", "p", []byte(`{"x":"`+strings.Repeat("a", ddm.MaxPayload)+`"}`)); !errors.Is(err, ddm.ErrInvalid) {
		t.Errorf("oversized payload: %v", err)
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]ddm.Endpoint{
		"tokens":                           {Name: "tokens"},
		"declaration-items":                {Name: "declaration-items"},
		"status":                           {Name: "status"},
		"declaration/configuration/ios-26": {Name: "declaration", Kind: "configuration", Identifier: "ios-26"},
		"declaration/activation/a%20b":     {Name: "declaration", Kind: "activation", Identifier: "a b"},
	} {
		got, err := ddm.ParseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("%q = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "token", "declaration/", "declaration/profile/x", "declaration/configuration/", "../status"} {
		if _, err := ddm.ParseEndpoint(in); !errors.Is(err, ddm.ErrEndpoint) {
			t.Errorf("%q: %v, want ErrEndpoint", in, err)
		}
	}
}

func TestManifestTokenFollowsContent(t *testing.T) {
	d := func(id, payload string) ddm.Declaration {
		typ := "com.apple.configuration.softwareupdate.enforcement.specific"
		return ddm.Declaration{Type: typ, Identifier: id, ServerToken: ddm.ContentToken(typ, id, []byte(payload))}
	}
	a, b := d("a", `{"TargetOSVersion":"26.1"}`), d("b", `{}`)
	m1 := ddm.NewManifest([]ddm.Declaration{a, b})
	if m2 := ddm.NewManifest([]ddm.Declaration{b, a}); m2.DeclarationsToken != m1.DeclarationsToken {
		t.Fatal("token depends on order")
	}
	if m3 := ddm.NewManifest([]ddm.Declaration{d("a", `{"TargetOSVersion":"26.2"}`), b}); m3.DeclarationsToken == m1.DeclarationsToken {
		t.Fatal("token did not change with a payload")
	}
	if m4 := ddm.NewManifest([]ddm.Declaration{a}); m4.DeclarationsToken == m1.DeclarationsToken {
		t.Fatal("token did not change when a declaration left")
	}
	if len(m1.Declarations.Configurations) != 2 || m1.Declarations.Activations == nil || m1.Declarations.Assets == nil {
		t.Fatalf("manifest = %+v", m1)
	}
	// Lengths are hashed with the parts, so moving a byte between them
	// changes the token.
	if ddm.ContentToken("ab", "c", nil) == ddm.ContentToken("a", "bc", nil) {
		t.Fatal("content token is ambiguous")
	}
}

func TestParseStatus(t *testing.T) {
	r, err := ddm.ParseStatus([]byte(`{"StatusItems":{"device":{"operating-system":{"version":"26.0","build-version":"23A341"}},
		"softwareupdate":{"pending-version":{"os-version":"26.1"}},
		"management":{"declarations":{"configurations":[{"identifier":"u","server-token":"t","active":true,"valid":"valid"}]}}},"Errors":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Items["device.operating-system.version"]) != `"26.0"` || string(r.Items["softwareupdate.pending-version.os-version"]) != `"26.1"` {
		t.Fatalf("items = %v", r.Items)
	}
	if len(r.Declarations) != 1 || r.Declarations[0].Kind != "configurations" || !r.Declarations[0].Active {
		t.Fatalf("declarations = %+v", r.Declarations)
	}
	var many strings.Builder
	many.WriteString(`{"StatusItems":{`)
	for i := range ddm.MaxStatusItems + 1 {
		fmt.Fprintf(&many, `%s"i%d":1`, map[bool]string{true: ",", false: ""}[i > 0], i)
	}
	many.WriteString(`}}`)
	deep := `{"StatusItems":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`
	for name, body := range map[string]string{
		"not JSON": `{"StatusItems":`, "no items": `{"Errors":[]}`, "too many items": many.String(), "too deep": deep,
		"bad declarations": `{"StatusItems":{"management":{"declarations":{"configurations":"x"}}}}`,
	} {
		if _, err := ddm.ParseStatus([]byte(body)); !errors.Is(err, ddm.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
