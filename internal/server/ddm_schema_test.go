package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// testDeclarationSchema: every uploaded declaration is checked against
// Apple's declarative schema; a refusal is a 400 naming the key path, and
// nothing is stored.
func testDeclarationSchema(t *testing.T, b servertest.Backend) {
	s := b.Start(t)
	var listing struct {
		Declarations []struct {
			Type string `json:"type"`
			Keys []struct {
				Key string `json:"key"`
			} `json:"keys"`
		} `json:"declarations"`
	}
	if code := s.API(t, "GET", "/v1/schema/declarations", nil, &listing); code != 200 || len(listing.Declarations) < 30 {
		t.Fatalf("schema listing = %d, %d types", code, len(listing.Declarations))
	}
	const passcode = "com.apple.configuration.passcode.settings"
	for _, c := range []struct {
		name, typ string
		payload   map[string]any
		want      string
	}{
		{"unknown type", "com.apple.configuration.passcode.setting", map[string]any{}, "GET /v1/schema/declarations"},
		{"out of range", passcode, map[string]any{"MinimumLength": 40}, "Payload.MinimumLength: 40 is above the maximum 16"},
		{"wrong type", passcode, map[string]any{"RequirePasscode": "yes"}, "Payload.RequirePasscode: want a boolean"},
		{"unknown key", passcode, map[string]any{"MinLength": 6}, "Payload.MinLength: unknown key"},
		{"missing required", "com.apple.configuration.softwareupdate.enforcement.specific",
			map[string]any{"TargetLocalDateTime": "2026-12-15T20:00:00"}, "Payload.TargetOSVersion: is required"},
	} {
		var e struct {
			Error string `json:"error"`
		}
		code := s.API(t, "POST", "/v1/declarations", map[string]any{"type": c.typ, "identifier": "p", "payload": c.payload}, &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, c.want) || strings.Contains(e.Error, "\n") {
			t.Errorf("%s: %d %q, want 400 with %q", c.name, code, e.Error, c.want)
		}
	}
	if code := s.API(t, "GET", "/v1/declarations/p", nil, nil); code != http.StatusNotFound {
		t.Fatalf("refused declaration stored: GET = %d", code)
	}
	if code := s.API(t, "POST", "/v1/declarations", map[string]any{
		"type": passcode, "identifier": "p", "payload": map[string]any{"MinimumLength": 8, "RequirePasscode": true},
	}, nil); code != http.StatusOK {
		t.Fatalf("valid passcode settings = %d", code)
	}
}
