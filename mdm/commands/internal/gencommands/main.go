// Command gencommands writes package commands' tables from Apple's MDM
// command schema. Run it through `go generate ./mdm/commands`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/orchardmdm/orchard/mdm/commands/internal/gen"
)

func main() {
	schema := flag.String("schema", "", "directory of Apple's mdm/commands/*.yaml (default: find shared/"+gen.SchemaSubdir+" above the working directory)")
	out := flag.String("out", "zz_generated.go", "file to write")
	flag.Parse()
	if err := run(*schema, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gencommands:", err)
		os.Exit(1)
	}
}

func run(schema, out string) error {
	if schema == "" {
		var err error
		if schema, err = gen.FindSchema("."); err != nil {
			return err
		}
	}
	src, err := gen.Generate(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}
