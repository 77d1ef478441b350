package ddm

//go:generate go run ./internal/gendeclarations -out zz_declarations.go

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Type is the JSON type of a payload key, as Apple's schema names it.
type Type uint8

// The types a payload key can have.
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

var typeNames = [...]string{"invalid", "string", "integer", "real", "boolean", "date", "data", "array", "dictionary", "any"}

// String returns the schema name of t without angle brackets.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText makes the listing show "string" rather than a number.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Key is one payload key of a declaration type, recursively.
type Key struct {
	Name     string `json:"key"`
	Type     Type   `json:"type"`
	Required bool   `json:"required,omitempty"`
	// Wildcard is the schema's ANY: in a dictionary it stands for any key
	// name, each value shaped like it. A dictionary without one is closed.
	Wildcard bool     `json:"wildcard,omitempty"`
	Values   []any    `json:"values,omitempty"` // the only values allowed
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	// Subkeys of a dictionary are its keys; an array's one subkey shapes
	// its elements.
	Subkeys []Key `json:"subkeys,omitempty"`
}

// Support is one platform's support of a declaration type.
type Support struct {
	OS         string `json:"os"` // iOS (also iPadOS), macOS, tvOS, visionOS, watchOS
	Introduced string `json:"introduced"`
	Removed    string `json:"removed,omitempty"`
	// Enrollments: supervised, device, user, local.
	Enrollments []string `json:"enrollments,omitempty"`
	// Scopes: system (the device channel) and user (a user channel).
	Scopes           []string `json:"scopes,omitempty"`
	SharedIPadScopes []string `json:"shared_ipad_scopes,omitempty"`
}

// DeclarationType describes one declaration type of Apple's schema.
type DeclarationType struct {
	Type      string    `json:"type"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Apply     string    `json:"apply,omitempty"` // single, multiple or combined
	Platforms []Support `json:"platforms"`
	Keys      []Key     `json:"keys"`
}

var byType = func() map[string]*DeclarationType {
	m := make(map[string]*DeclarationType, len(generated))
	for i := range generated {
		m[generated[i].Type] = &generated[i]
	}
	return m
}()

// LookupType returns the schema of a declaration type.
func LookupType(declType string) (*DeclarationType, bool) {
	t, ok := byType[declType]
	return t, ok
}

// Types returns every known declaration type, sorted. The slice is a copy;
// the types themselves are shared and must not be modified.
func Types() []DeclarationType {
	out := slices.Clone(generated)
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// TypesListing is the discovery document served at GET /v1/schema/declarations.
type TypesListing struct {
	Declarations []DeclarationType `json:"declarations"`
}

var listingJSON = sync.OnceValues(func() ([]byte, error) {
	return json.Marshal(TypesListing{Declarations: Types()})
})

// TypesListingJSON returns the discovery document as JSON.
func TypesListingJSON() ([]byte, error) {
	b, err := listingJSON()
	return bytes.Clone(b), err
}

func f(v float64) *float64 { return &v }

// SchemaError is a payload refused by the schema: Path names the key
// ("Payload.ManagedExtensions.x.State", "Payload.StandardConfigurations[2]").
// It wraps ErrInvalid.
type SchemaError struct {
	Path   string
	Reason string
}

func (e *SchemaError) Error() string {
	return ErrInvalid.Error() + ": " + e.Path + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *SchemaError) Unwrap() error { return ErrInvalid }

// Bounds of a payload beyond its byte size (MaxPayload): nesting, so a
// deep "any" value cannot exhaust the stack, and elements per container.
const (
	MaxDepth    = 32
	MaxElements = 4096
)

// ValidatePayload checks payload (a JSON object) against the schema of
// declType: every required key present, every key known (a dictionary is
// open only where the schema says ANY), values of the schema's type, in its
// rangelist and range. Numbers are checked exactly (no float rounding).
func ValidatePayload(declType string, payload []byte) error {
	t, ok := byType[declType]
	if !ok {
		return fmt.Errorf("%w: type %.100q is not in Apple's declarative schema (GET /v1/schema/declarations lists the %d known types)", ErrInvalid, declType, len(generated))
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%w: payload is not JSON: %s", ErrInvalid, oneLine(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: payload has data after the object", ErrInvalid)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: payload must be a JSON object", ErrInvalid)
	}
	return checkDict("Payload", t.Keys, obj, 1)
}

func refuse(path, format string, args ...any) error {
	return &SchemaError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func checkDict(path string, keys []Key, obj map[string]any, depth int) error {
	if len(obj) > MaxElements {
		return refuse(path, "over %d keys", MaxElements)
	}
	var wildcard *Key
	for i := range keys {
		if keys[i].Wildcard {
			wildcard = &keys[i]
		} else if _, ok := obj[keys[i].Name]; !ok && keys[i].Required {
			return refuse(path+"."+keys[i].Name, "is required")
		}
	}
	// Sorted, so the same payload is always refused for the same key.
	names := make([]string, 0, len(obj))
	for n := range obj {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := path + "." + n
		k := findKey(keys, n)
		if k == nil {
			k = wildcard
		}
		if k == nil {
			return refuse(p, "unknown key (the schema lists %s)", keyNames(keys))
		}
		if err := checkValue(p, k, obj[n], depth); err != nil {
			return err
		}
	}
	return nil
}

func findKey(keys []Key, name string) *Key {
	for i := range keys {
		if !keys[i].Wildcard && keys[i].Name == name {
			return &keys[i]
		}
	}
	return nil
}

func keyNames(keys []Key) string {
	var n []string
	for _, k := range keys {
		if !k.Wildcard {
			n = append(n, k.Name)
		}
	}
	if len(n) == 0 {
		return "no keys"
	}
	if len(n) > 12 {
		return strings.Join(n[:12], ", ") + ", …"
	}
	return strings.Join(n, ", ")
}

func checkValue(path string, k *Key, v any, depth int) error {
	if depth > MaxDepth {
		return refuse(path, "nested deeper than %d", MaxDepth)
	}
	if v == nil {
		return refuse(path, "is null, want %s", k.Type)
	}
	switch k.Type {
	case TypeAny:
		return checkAny(path, v, depth)
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return refuse(path, "want a string, got %s", jsonKind(v))
		}
		if len(k.Values) > 0 && !slices.Contains(k.Values, any(s)) {
			return refuse(path, "%.64q is not one of %s", s, valueList(k.Values))
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return refuse(path, "want a boolean, got %s", jsonKind(v))
		}
	case TypeInteger:
		n, ok := v.(json.Number)
		if !ok {
			return refuse(path, "want an integer, got %s", jsonKind(v))
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return refuse(path, "want an integer, got %.32s", n.String())
		}
		if len(k.Values) > 0 && !slices.Contains(k.Values, any(i)) {
			return refuse(path, "%d is not one of %s", i, valueList(k.Values))
		}
		if err := checkRange(path, k, float64(i)); err != nil {
			return err
		}
	case TypeReal:
		n, ok := v.(json.Number)
		if !ok {
			return refuse(path, "want a number, got %s", jsonKind(v))
		}
		x, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || math.IsInf(x, 0) {
			return refuse(path, "want a finite number, got %.32s", n.String())
		}
		if len(k.Values) > 0 && !slices.Contains(k.Values, any(x)) {
			return refuse(path, "%g is not one of %s", x, valueList(k.Values))
		}
		if err := checkRange(path, k, x); err != nil {
			return err
		}
	case TypeData:
		s, ok := v.(string)
		if !ok {
			return refuse(path, "want base64 data, got %s", jsonKind(v))
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return refuse(path, "is not base64")
		}
	case TypeDate:
		s, ok := v.(string)
		if !ok {
			return refuse(path, "want an RFC 3339 date, got %s", jsonKind(v))
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return refuse(path, "is not an RFC 3339 date")
		}
	case TypeArray:
		a, ok := v.([]any)
		if !ok {
			return refuse(path, "want an array, got %s", jsonKind(v))
		}
		if len(a) > MaxElements {
			return refuse(path, "over %d elements", MaxElements)
		}
		for i, e := range a {
			p := path + "[" + strconv.Itoa(i) + "]"
			if len(k.Subkeys) == 0 {
				if err := checkAny(p, e, depth+1); err != nil {
					return err
				}
				continue
			}
			if err := checkValue(p, &k.Subkeys[0], e, depth+1); err != nil {
				return err
			}
		}
	case TypeDictionary:
		m, ok := v.(map[string]any)
		if !ok {
			return refuse(path, "want a dictionary, got %s", jsonKind(v))
		}
		if len(k.Subkeys) == 0 {
			return checkAny(path, m, depth) // the schema leaves it open
		}
		return checkDict(path, k.Subkeys, m, depth+1)
	default:
		return refuse(path, "has no known type in the schema")
	}
	return nil
}

// checkAny bounds a value the schema does not shape.
func checkAny(path string, v any, depth int) error {
	if depth > MaxDepth {
		return refuse(path, "nested deeper than %d", MaxDepth)
	}
	switch v := v.(type) {
	case []any:
		if len(v) > MaxElements {
			return refuse(path, "over %d elements", MaxElements)
		}
		for i, e := range v {
			if err := checkAny(path+"["+strconv.Itoa(i)+"]", e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if len(v) > MaxElements {
			return refuse(path, "over %d keys", MaxElements)
		}
		for n, e := range v {
			if err := checkAny(path+"."+n, e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRange(path string, k *Key, x float64) error {
	if k.Min != nil && x < *k.Min {
		return refuse(path, "%g is below the minimum %g", x, *k.Min)
	}
	if k.Max != nil && x > *k.Max {
		return refuse(path, "%g is above the maximum %g", x, *k.Max)
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "a dictionary"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func valueList(vs []any) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
