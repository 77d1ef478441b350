// Command genpayloads writes package profile's table of the payload types
// in Apple's profile schema. Run it through `go generate ./mdm/profile`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/orchardmdm/orchard/mdm/profile/internal/gen"
)

func main() {
	schema := flag.String("schema", "", "directory of Apple's mdm/profiles/*.yaml (default: find shared/"+gen.SchemaSubdir+" above the working directory)")
	out := flag.String("out", "zz_payloadtypes.go", "file to write")
	flag.Parse()
	if err := run(*schema, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genpayloads:", err)
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
