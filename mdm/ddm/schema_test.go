package ddm_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm/ddm"
	"github.com/orchardmdm/orchard/mdm/ddm/internal/gen"
)

func TestDeclarationsGeneratedIsCurrent(t *testing.T) { gen.Generator.CheckCurrent(t) }

func TestGenerateDeclarationsRefusesBadSchema(t *testing.T) {
	tests := []struct{ name, yaml, wantErr string }{
		{"no type", "title: X\npayload: {}\n", "no payload.declarationtype"},
		{"wrong kind", "payload:\n  declarationtype: com.apple.asset.x\n", "is not a configuration"},
		{"unknown type", "payload:\n  declarationtype: com.apple.configuration.x\npayloadkeys:\n- key: A\n  type: <blob>\n", `Payload.A: unknown type "<blob>"`},
		{"unknown presence", "payload:\n  declarationtype: com.apple.configuration.x\npayloadkeys:\n- key: A\n  type: <string>\n  presence: maybe\n", `unknown presence "maybe"`},
		{"unknown platform", "payload:\n  declarationtype: com.apple.configuration.x\n  supportedOS:\n    palmOS: {introduced: '1.0'}\n", `unknown platform "palmOS"`},
		{"rangelist type", "payload:\n  declarationtype: com.apple.configuration.x\npayloadkeys:\n- key: A\n  type: <integer>\n  rangelist: [a]\n", "does not fit <integer>"},
		{"not yaml", "payload: [\n", "configurations/x.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "configurations"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "configurations", "x.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := gen.Generate(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Generate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := gen.Generate(t.TempDir()); err == nil {
		t.Fatal("Generate on an empty directory succeeded")
	}
}

func TestSchemaTable(t *testing.T) {
	types := ddm.Types()
	if len(types) < 30 {
		t.Fatalf("%d declaration types, want Apple's full schema", len(types))
	}
	su, ok := ddm.LookupType(ddm.TypeSoftwareUpdateSpecific)
	if !ok || su.Kind != ddm.KindConfiguration {
		t.Fatalf("software-update enforcement: %+v, %v", su, ok)
	}
	var required []string
	for _, k := range su.Keys {
		if k.Required {
			required = append(required, k.Name)
		}
	}
	if strings.Join(required, ",") != "TargetOSVersion,TargetLocalDateTime" {
		t.Errorf("required keys %v", required)
	}
	mac, ok := platform(su, "macOS")
	if !ok || mac.Introduced != "14.0" || strings.Join(mac.Scopes, ",") != "system" {
		t.Errorf("macOS support %+v", mac)
	}
	if _, ok := platform(su, "tvOS"); ok {
		t.Error("tvOS listed though the schema says n/a")
	}
	if _, ok := ddm.LookupType("com.apple.credential.acme"); ok {
		t.Error("a credential format (assets/credentials) was taken for a declaration")
	}
	b, err := ddm.TypesListingJSON()
	if err != nil || !json.Valid(b) || !strings.Contains(string(b), `"type":"com.apple.configuration.passcode.settings"`) {
		t.Fatalf("listing: %v %.200s", err, b)
	}
}

func platform(t *ddm.DeclarationType, os string) (ddm.Support, bool) {
	for _, s := range t.Platforms {
		if s.OS == os {
			return s, true
		}
	}
	return ddm.Support{}, false
}

func TestValidatePayload(t *testing.T) {
	const (
		passcode = "com.apple.configuration.passcode.settings"
		safari   = "com.apple.configuration.safari.extensions.settings"
		props    = "com.apple.management.properties"
		mail     = "com.apple.configuration.account.mail"
	)
	good := []struct{ typ, payload string }{
		{passcode, `{"MinimumLength":6,"RequirePasscode":true}`},
		{passcode, `{}`},
		{passcode, `{"MinimumLength":16}`},
		{safari, `{"ManagedExtensions":{"com.example.ext (ABCDE12345)":{"State":"AlwaysOn"}}}`},
		{props, `{"anything":{"nested":[1,2,{"x":null}]}}`},
		{ddm.TypeSoftwareUpdateSpecific, `{"TargetOSVersion":"26.1","TargetLocalDateTime":"2026-12-15T20:00:00"}`},
		{"com.apple.activation.simple", `{"StandardConfigurations":["a","b"]}`},
	}
	for _, g := range good {
		if err := ddm.ValidatePayload(g.typ, []byte(g.payload)); err != nil {
			t.Errorf("%s %s refused: %v", g.typ, g.payload, err)
		}
	}
	bad := []struct{ name, typ, payload, want string }{
		{"unknown type", "com.apple.configuration.nope", `{}`, "GET /v1/schema/declarations"},
		{"missing required", ddm.TypeSoftwareUpdateSpecific, `{"TargetOSVersion":"26.1"}`, "Payload.TargetLocalDateTime: is required"},
		{"wrong type", passcode, `{"MinimumLength":"6"}`, "Payload.MinimumLength: want an integer, got a string"},
		{"fraction for integer", passcode, `{"MinimumLength":6.5}`, "Payload.MinimumLength: want an integer"},
		{"above max", passcode, `{"MinimumLength":17}`, "Payload.MinimumLength: 17 is above the maximum 16"},
		{"below min", passcode, `{"MinimumLength":-1}`, "below the minimum 0"},
		{"huge integer", passcode, `{"MinimumLength":123456789012345678901234567890}`, "Payload.MinimumLength: want an integer"},
		{"unknown key", passcode, `{"MinLength":6}`, "Payload.MinLength: unknown key"},
		{"bad enum under a wildcard", safari, `{"ManagedExtensions":{"x":{"State":"Sometimes"}}}`, `Payload.ManagedExtensions.x.State: "Sometimes" is not one of Allowed, AlwaysOn, AlwaysOff`},
		{"unknown key under a wildcard", safari, `{"ManagedExtensions":{"x":{"Color":"red"}}}`, "Payload.ManagedExtensions.x.Color: unknown key"},
		{"array element", "com.apple.activation.simple", `{"StandardConfigurations":["a",7]}`, "Payload.StandardConfigurations[1]: want a string"},
		{"nested required", mail, `{"IncomingServer":{"ServerType":"IMAP","AuthenticationMethod":"None"},"OutgoingServer":{"HostName":"smtp","AuthenticationMethod":"None"}}`, "Payload.IncomingServer.HostName: is required"},
		{"null", passcode, `{"MinimumLength":null}`, "is null"},
		{"not an object", passcode, `[1]`, "must be a JSON object"},
		{"trailing data", passcode, `{} {}`, "data after the object"},
		{"too deep", props, `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nested deeper than 32"},
	}
	for _, b := range bad {
		err := ddm.ValidatePayload(b.typ, []byte(b.payload))
		if !errors.Is(err, ddm.ErrInvalid) || !strings.Contains(err.Error(), b.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", b.name, err, b.want)
		}
	}
}

// TestValidateAdminUpload: Validate (what POST /v1/declarations calls) uses
// the schema, and keeps its own checks of formats the schema only describes.
func TestValidateAdminUpload(t *testing.T) {
	if err := ddm.Validate("com.apple.configuration.passcode.settings", "p", []byte(`{"MinimumLength":40}`)); err == nil || !strings.Contains(err.Error(), "Payload.MinimumLength") {
		t.Errorf("out of range passcode length: %v", err)
	}
	if err := ddm.Validate("com.apple.configuration.passcode.setting", "p", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "not in Apple's declarative schema") {
		t.Errorf("misspelt type: %v", err)
	}
}

// sample builds a payload holding every required key with a value the
// schema accepts.
func sample(keys []ddm.Key) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if k.Required && !k.Wildcard {
			out[k.Name] = sampleValue(k)
		}
	}
	return out
}

func sampleValue(k ddm.Key) any {
	if len(k.Values) > 0 {
		return k.Values[0]
	}
	switch k.Type {
	case ddm.TypeString:
		return "x"
	case ddm.TypeInteger, ddm.TypeReal:
		if k.Min != nil {
			return *k.Min
		}
		return 1
	case ddm.TypeBoolean:
		return true
	case ddm.TypeData:
		return "AAAA"
	case ddm.TypeDate:
		return "2026-01-01T00:00:00Z"
	case ddm.TypeArray:
		if len(k.Subkeys) == 1 {
			return []any{sampleValue(k.Subkeys[0])}
		}
		return []any{}
	case ddm.TypeDictionary:
		return sample(k.Subkeys)
	}
	return "x"
}

// TestEveryTypeAcceptsItsRequiredKeys and refuses each one missing.
func TestEveryTypeAcceptsItsRequiredKeys(t *testing.T) {
	for _, dt := range ddm.Types() {
		p := sample(dt.Keys)
		b, _ := json.Marshal(p)
		if err := ddm.ValidatePayload(dt.Type, b); err != nil {
			t.Errorf("%s: sample %s refused: %v", dt.Type, b, err)
		}
		for name := range p {
			q := sample(dt.Keys)
			delete(q, name)
			b, _ := json.Marshal(q)
			if err := ddm.ValidatePayload(dt.Type, b); err == nil || !strings.Contains(err.Error(), "Payload."+name+": is required") {
				t.Errorf("%s without %s: %v", dt.Type, name, err)
			}
		}
	}
}

func FuzzValidatePayload(f *testing.F) {
	for _, dt := range ddm.Types() {
		b, _ := json.Marshal(sample(dt.Keys))
		f.Add(dt.Type, b)
	}
	f.Add("com.apple.configuration.safari.extensions.settings", []byte(`{"ManagedExtensions":{"x":{"State":"AlwaysOn","AllowedDomains":["a"]}}}`))
	f.Add("com.apple.management.properties", []byte(`{"a":[[[[{"b":1e400}]]]]}`))
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		err := ddm.ValidatePayload(typ, payload)
		if err != nil {
			if !errors.Is(err, ddm.ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not one ErrInvalid line: %v", err)
			}
			return
		}
		// Accepted: a known type and a JSON object whose top-level keys
		// the schema knows (or, through ANY, admits).
		dt, ok := ddm.LookupType(typ)
		if !ok {
			t.Fatalf("unknown type %q accepted", typ)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(payload, &obj); err != nil {
			t.Fatalf("accepted payload does not decode as an object: %v", err)
		}
		open := false
		known := map[string]bool{}
		for _, k := range dt.Keys {
			open = open || k.Wildcard
			known[k.Name] = true
		}
		for n := range obj {
			if !open && !known[n] {
				t.Fatalf("unknown key %q accepted for %s", n, typ)
			}
		}
	})
}
