// Command genpayloads writes package profile's table of the payload types
// in Apple's profile schema. Run it through `go generate ./mdm/profile`.
package main

import "github.com/orchardmdm/orchard/mdm/profile/internal/gen"

func main() { gen.Generator.Main() }
