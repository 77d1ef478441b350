package commands_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands/internal/gen"
)

func TestGeneratedIsCurrent(t *testing.T) { gen.Generator.CheckCurrent(t) }

func TestGenerateRefusesBadSchema(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"no request type", "title: X\npayload: {}\n", "no payload.requesttype"},
		{"unknown type", "payload:\n  requesttype: X\npayloadkeys:\n- key: A\n  type: <blob>\n", `X.A: unknown type "<blob>"`},
		{"unknown presence", "payload:\n  requesttype: X\npayloadkeys:\n- key: A\n  type: <string>\n  presence: maybe\n", `unknown presence "maybe"`},
		{"unknown platform", "payload:\n  requesttype: X\n  supportedOS:\n    palmOS: {introduced: '1.0'}\n", `unknown platform "palmOS"`},
		{"rangelist type", "payload:\n  requesttype: X\npayloadkeys:\n- key: A\n  type: <integer>\n  rangelist: [a]\n", "does not fit <integer>"},
		{"not yaml", "payload: [\n", "x.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := gen.Generate(dir)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
				t.Fatalf("Generate error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := gen.Generate(t.TempDir()); err == nil {
		t.Fatal("Generate on an empty directory succeeded")
	}
}
