// Package schemagen holds what the generators of mdm/commands, mdm/profile
// and mdm/ddm share: the command-line driver, the check that a committed
// generated file still matches Apple's schema, the walk up to the schema
// copy (FindUp) and the literals of allowed values (ValueLiteral). Each
// generator keeps its own Generate.
package schemagen

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Generator is one schema-to-Go generator.
type Generator struct {
	Name       string // command name, prefixes errors
	SchemaDesc string // what the -schema directory holds, for the flag's help
	SchemaDir  string // the schema's directory under shared/, for the flag's help
	Out        string // generated file, relative to the package directory
	Package    string // package path for the "run go generate" hint, e.g. ./mdm/profile
	FindSchema func(start string) (string, error)
	Generate   func(dir string) ([]byte, error)
}

// Main parses the flags, writes the generated file and exits non-zero on error.
func (g Generator) Main() {
	schema := flag.String("schema", "", "directory of "+g.SchemaDesc+" (default: find shared/"+g.SchemaDir+" above the working directory)")
	out := flag.String("out", g.Out, "file to write")
	flag.Parse()
	if err := g.run(*schema, *out); err != nil {
		fmt.Fprintln(os.Stderr, g.Name+":", err)
		os.Exit(1)
	}
}

func (g Generator) run(schema, out string) error {
	if schema == "" {
		var err error
		if schema, err = g.FindSchema("."); err != nil {
			return err
		}
	}
	src, err := g.Generate(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// CheckCurrent regenerates from the schema next to the repository and fails t
// if the committed g.Out differs. It runs from the package directory, as go
// test does.
func (g Generator) CheckCurrent(t testing.TB) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	schema, err := g.FindSchema(filepath.Join(root, ".."))
	if err != nil {
		t.Skipf("Apple's schema is not checked out next to the repo (%v); cannot check %s", err, g.Out)
	}
	want, err := g.Generate(schema)
	if err != nil {
		t.Fatalf("Generate(%s): %v", schema, err)
	}
	got, err := os.ReadFile(g.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale against %s: run go generate %s", g.Out, schema, g.Package)
	}
}

// repoRoot walks up from the working directory to the go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}
