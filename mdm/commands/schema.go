// Package commands owns Orchard's knowledge of every Apple MDM command:
// which request types exist, which platforms and channels accept them, and
// the exact shape of their payloads. The tables in zz_generated.go come from
// Apple's device-management schema (run `go generate`); the rest of the
// package turns admin input (JSON, CLI key=value pairs, raw plists) into
// checked command plists and decides whether a target can run a command.
package commands

//go:generate go run ./internal/gencommands -out zz_generated.go

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// Type is the plist type of a payload key, as named by Apple's schema.
type Type uint8

// The plist types a payload key can have.
const (
	TypeInvalid Type = iota
	TypeString
	TypeInteger
	TypeReal
	TypeBoolean
	TypeDate
	TypeData
	TypeArray
	TypeDictionary
	TypeAny
)

var typeNames = [...]string{
	TypeInvalid:    "invalid",
	TypeString:     "string",
	TypeInteger:    "integer",
	TypeReal:       "real",
	TypeBoolean:    "boolean",
	TypeDate:       "date",
	TypeData:       "data",
	TypeArray:      "array",
	TypeDictionary: "dictionary",
	TypeAny:        "any",
}

// String returns the schema name of t without angle brackets ("string").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// MarshalText makes the listing show "string" rather than a number.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Mode says how a command relates to Shared iPad or User Enrollment:
// "allowed", "required", "forbidden" or "ignored". Empty means the schema
// says nothing, which Orchard treats as allowed.
type Mode string

// The modes Apple's schema uses.
const (
	ModeAllowed   Mode = "allowed"
	ModeRequired  Mode = "required"
	ModeForbidden Mode = "forbidden"
	ModeIgnored   Mode = "ignored"
)

// Key describes one payload key, recursively.
type Key struct {
	Name string `json:"key"`
	Type Type   `json:"type"`
	// Required is the schema's presence: required.
	Required bool `json:"required,omitempty"`
	// Wildcard marks the schema's "ANY" placeholder: a dictionary whose
	// subkey is a wildcard accepts any key name, each value shaped like it.
	Wildcard bool `json:"wildcard,omitempty"`
	// NotOn lists platforms (schema names) where the command runs but this
	// key is not supported; devices there ignore or refuse it.
	NotOn []string `json:"not_on,omitempty"`
	// Values is the schema's rangelist: the only values allowed.
	Values []any    `json:"values,omitempty"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	// Subkeys of a dictionary are its keys. An array has one subkey that
	// shapes its elements, or several dictionaries of which each element
	// must be one (told apart by a key with a single allowed value, e.g.
	// Settings' Item).
	Subkeys []Key `json:"subkeys,omitempty"`
}

// SharedIPad is how a command behaves on a Shared iPad.
type SharedIPad struct {
	Mode          Mode `json:"mode,omitempty"`
	DeviceChannel bool `json:"device_channel"`
	UserChannel   bool `json:"user_channel"`
}

// Support is one platform's support for a command. Platforms whose schema
// entry says "n/a" are left out of Command.Platforms.
type Support struct {
	// OS is the schema's platform name: iOS (also iPadOS), macOS, tvOS,
	// visionOS or watchOS.
	OS              string      `json:"os"`
	Introduced      string      `json:"introduced,omitempty"`
	Deprecated      string      `json:"deprecated,omitempty"`
	Removed         string      `json:"removed,omitempty"`
	AccessRights    string      `json:"access_rights,omitempty"`
	DeviceChannel   bool        `json:"device_channel"`
	UserChannel     bool        `json:"user_channel"`
	Supervised      bool        `json:"supervised,omitempty"`
	RequiresDEP     bool        `json:"requires_dep,omitempty"`
	UserApprovedMDM bool        `json:"user_approved_mdm,omitempty"`
	SharedIPad      *SharedIPad `json:"shared_ipad,omitempty"`
	UserEnrollment  Mode        `json:"user_enrollment,omitempty"`
}

// Command describes one MDM request type.
type Command struct {
	RequestType string    `json:"request_type"`
	Title       string    `json:"title"`
	Platforms   []Support `json:"platforms"`
	Keys        []Key     `json:"keys"`
}

// Platform returns the command's support entry for the schema platform
// name os, or false when the command does not run there.
func (c *Command) Platform(os string) (Support, bool) {
	for _, s := range c.Platforms {
		if s.OS == os {
			return s, true
		}
	}
	return Support{}, false
}

var byRequestType = func() map[string]*Command {
	m := make(map[string]*Command, len(generated))
	for i := range generated {
		m[generated[i].RequestType] = &generated[i]
	}
	return m
}()

// Lookup returns the command with the given request type.
func Lookup(requestType string) (*Command, bool) {
	c, ok := byRequestType[requestType]
	return c, ok
}

// All returns every known command sorted by request type. The result is a
// copy of the slice; the commands themselves are shared and must not be
// modified.
func All() []Command {
	out := make([]Command, len(generated))
	copy(out, generated)
	sort.Slice(out, func(i, j int) bool { return out[i].RequestType < out[j].RequestType })
	return out
}

// Listing is the discovery document served at GET /v1/schema/commands.
type Listing struct {
	Commands []Command `json:"commands"`
}

// listingJSON is built once: the tables never change at run time.
var listingJSON = sync.OnceValues(func() ([]byte, error) {
	b, err := json.Marshal(Listing{Commands: All()})
	if err != nil {
		return nil, fmt.Errorf("commands: encode listing: %w", err)
	}
	return b, nil
})

// ListingJSON returns the discovery document as JSON.
func ListingJSON() ([]byte, error) {
	b, err := listingJSON()
	return bytes.Clone(b), err
}

// f lets generated code take the address of a constant bound.
func f(v float64) *float64 { return &v }
