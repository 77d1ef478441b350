// Command gendeclarations writes package ddm's table of declaration types
// from Apple's declarative schema. Run it through `go generate ./mdm/ddm`.
package main

import "github.com/orchardmdm/orchard/mdm/ddm/internal/gen"

func main() { gen.Generator.Main() }
