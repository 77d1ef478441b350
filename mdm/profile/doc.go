// Package profile reads configuration profiles (.mobileconfig) an admin
// uploads: plain or CMS-signed, checked as Apple's profile schema says (a
// Configuration plist, payloads with identifiers and UUIDs, payload types
// the schema knows). It is a leaf: no transport, no storage.
package profile

//go:generate go run ./internal/genpayloads -out zz_payloadtypes.go
