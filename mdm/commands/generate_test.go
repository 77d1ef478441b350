package commands_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands/internal/gen"
)

// repoRoot walks up from the test's working directory to the go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func TestGeneratedIsCurrent(t *testing.T) {
	schema, err := gen.FindSchema(filepath.Join(repoRoot(t), ".."))
	if err != nil {
		t.Skipf("Apple's schema is not checked out next to the repo (%v); cannot check zz_generated.go", err)
	}
	want, err := gen.Generate(schema)
	if err != nil {
		t.Fatalf("Generate(%s): %v", schema, err)
	}
	got, err := os.ReadFile("zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("zz_generated.go is stale against %s: run go generate ./mdm/commands", schema)
	}
}

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
