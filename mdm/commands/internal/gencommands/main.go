// Command gencommands writes package commands' tables from Apple's MDM
// command schema. Run it through `go generate ./mdm/commands`.
package main

import "github.com/orchardmdm/orchard/mdm/commands/internal/gen"

func main() { gen.Generator.Main() }
