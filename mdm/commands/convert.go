package commands

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/mdm"
)

// Error is a refusal of a command: Path names the offending key ("Payload.PIN",
// "Payload.Settings[0].Item") and Reason the rule it broke. Error() is a single
// line fit for a 4xx body.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

func refuse(path, format string, args ...any) error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// source says how values were encoded: JSON carries data as base64 strings
// and dates as RFC 3339 strings; a decoded plist carries []byte and time.Time.
// With unknown set, keys the schema does not know are kept (their values
// still plist-checked) and their paths collected there.
type source struct {
	plist   bool
	unknown *[]string
}

var (
	fromJSON  = source{}
	fromPlist = source{plist: true}
)

// Request is the admin API's JSON body for sending a command.
type Request struct {
	RequestType string         `json:"request_type"`
	Payload     map[string]any `json:"payload,omitempty"`
}

// DecodeRequest reads one JSON Request. Numbers are kept exact
// (json.Number) so integers, reals and their bounds are checked without
// float rounding; unknown fields and trailing data are refused.
func DecodeRequest(r io.Reader) (Request, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return Request{}, &Error{Reason: "invalid JSON request: " + oneLine(err.Error())}
	}
	if dec.More() {
		return Request{}, &Error{Reason: "invalid JSON request: data after the object"}
	}
	if req.RequestType == "" {
		return Request{}, &Error{Path: "request_type", Reason: "is required"}
	}
	return req, nil
}

// Build checks the request against the schema; see BuildCommand.
func (r Request) Build() (map[string]any, error) { return BuildCommand(r.RequestType, r.Payload) }

// BuildCommand checks a JSON-shaped payload against requestType's schema and
// returns the Command dictionary (RequestType included) with plist-ready
// values: []byte for data, int64/float64 for numbers, time.Time for dates.
// Payload values may be json.Number or Go numbers, strings, bools, []any and
// map[string]any, as produced by DecodeRequest or ParseSet.
func BuildCommand(requestType string, payload map[string]any) (map[string]any, error) {
	c, ok := Lookup(requestType)
	if !ok {
		return nil, unknownRequestType(requestType)
	}
	if payload == nil {
		payload = map[string]any{}
	}
	out, err := convertDict("Payload", c.Keys, payload, fromJSON)
	if err != nil {
		return nil, err
	}
	out["RequestType"] = requestType
	return out, nil
}

func unknownRequestType(rt string) error {
	return &Error{Reason: fmt.Sprintf("RequestType %q is not an MDM command", rt)}
}

// Marshal encodes the full command plist
// {CommandUUID: commandUUID, Command: command} as XML. command must come
// from BuildCommand or ValidatePlist.
func Marshal(commandUUID string, command map[string]any) ([]byte, error) {
	if commandUUID == "" {
		return nil, errors.New("commands: empty CommandUUID")
	}
	if _, ok := command["RequestType"].(string); !ok {
		return nil, errors.New("commands: command has no RequestType")
	}
	b, err := plist.Marshal(map[string]any{"CommandUUID": commandUUID, "Command": command})
	if err != nil {
		return nil, fmt.Errorf("commands: encode plist: %w", err)
	}
	return b, nil
}

// FromJSON decodes a JSON Request, checks it and returns the full command
// plist for commandUUID.
func FromJSON(commandUUID string, body []byte) ([]byte, error) {
	req, err := DecodeRequest(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	cmd, err := req.Build()
	if err != nil {
		return nil, err
	}
	return Marshal(commandUUID, cmd)
}

// Raw is a command plist supplied whole by an admin, after checking.
type Raw struct {
	// CommandUUID is empty when the plist was a bare Command dictionary;
	// the caller then assigns one.
	CommandUUID string
	RequestType string
	// Command is the checked Command dictionary, RequestType included.
	Command map[string]any
	// Unknown lists, with AllowUnknown, what the bundled schema does not
	// know: key paths, or the request type itself; each is a warning.
	Unknown []string
}

// ValidatePlist checks a raw XML command plist against the schema. It
// accepts either the full {CommandUUID, Command} envelope or a bare Command
// dictionary (recognised by its RequestType key). Binary plists are refused:
// the plist library follows object references without cycle detection, so a
// self-referencing binary plist overflows the stack and kills the process.
func ValidatePlist(raw []byte) (Raw, error) { return validatePlist(raw, fromPlist) }

// ValidatePlistAllowUnknown is ValidatePlist for commands newer than the
// bundled schema: unknown keys and request types are accepted (their
// values still plist-checked, known keys still checked) and listed in
// Raw.Unknown.
func ValidatePlistAllowUnknown(raw []byte) (Raw, error) {
	var unknown []string
	r, err := validatePlist(raw, source{plist: true, unknown: &unknown})
	r.Unknown = unknown
	return r, err
}

func validatePlist(raw []byte, src source) (Raw, error) {
	if bytes.HasPrefix(raw, []byte("bplist")) {
		return Raw{}, &Error{Reason: "invalid plist: binary plists are not accepted, send XML"}
	}
	var top map[string]any
	if err := unmarshalPlist(raw, &top); err != nil {
		return Raw{}, &Error{Reason: "invalid plist: " + oneLine(err.Error())}
	}
	if top == nil {
		return Raw{}, &Error{Reason: "invalid plist: not a dictionary"}
	}
	var r Raw
	cmd, path := top, "Command"
	if _, bare := top["RequestType"]; !bare {
		for _, name := range sortedKeys(top) {
			if name != "Command" && name != "CommandUUID" {
				return Raw{}, refuse("", "unknown key %q", name)
			}
		}
		uuid, ok := top["CommandUUID"].(string)
		if !ok || uuid == "" {
			return Raw{}, refuse("CommandUUID", "must be a non-empty string")
		}
		r.CommandUUID = uuid
		if cmd, ok = top["Command"].(map[string]any); !ok {
			return Raw{}, refuse("Command", "must be a dictionary")
		}
	}
	rt, ok := cmd["RequestType"].(string)
	if !ok {
		return Raw{}, refuse(path+".RequestType", "must be a string")
	}
	c, ok := Lookup(rt)
	if !ok && src.unknown == nil {
		return Raw{}, unknownRequestType(rt)
	}
	rest := make(map[string]any, len(cmd))
	for k, v := range cmd {
		if k != "RequestType" {
			rest[k] = v
		}
	}
	var out map[string]any
	var err error
	if ok {
		out, err = convertDict(path, c.Keys, rest, src)
	} else {
		*src.unknown = append(*src.unknown, "request type "+strconv.Quote(rt))
		out, err = anyDict(path, rest, src, 0)
	}
	if err != nil {
		return Raw{}, err
	}
	out["RequestType"] = rt
	r.RequestType, r.Command = rt, out
	return r, nil
}

// oneLine escapes control characters that decoder errors copy from the
// input, so a refusal stays one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

// unmarshalPlist turns a panic inside the plist decoder into an error: the
// bytes come from admins and must never take the server down. The shape
// check comes first because a stack overflow is not a panic.
func unmarshalPlist(raw []byte, v any) (err error) {
	if err := mdm.CheckShape(raw); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed plist (%v)", p)
		}
	}()
	return plist.Unmarshal(raw, v)
}

func sortedKeys(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func convertDict(path string, keys []Key, in map[string]any, src source) (map[string]any, error) {
	if len(keys) == 0 {
		return anyDict(path, in, src, 0)
	}
	out := make(map[string]any, len(in))
	for _, name := range sortedKeys(in) {
		k := findKey(keys, name)
		if k == nil && src.unknown != nil {
			p := joinPath(path, name)
			v, err := anyValue(p, in[name], src, 0)
			if err != nil {
				return nil, err
			}
			*src.unknown = append(*src.unknown, p)
			out[name] = v
			continue
		}
		if k == nil {
			return nil, refuse(path, "unknown key %q", name)
		}
		v, err := convertValue(joinPath(path, name), k, in[name], src)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	for i := range keys {
		k := &keys[i]
		if _, ok := in[k.Name]; k.Required && !k.Wildcard && !ok {
			return nil, refuse(path+"."+k.Name, "required key is missing")
		}
	}
	return out, nil
}

// joinPath appends a key name to an error path, quoting names that would
// make the path ambiguous or break the one-line error.
func joinPath(path, name string) string {
	if name == "" || strings.ContainsAny(name, `.[]" `) || strings.ContainsFunc(name, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	return path + "." + name
}

// findKey returns the schema key for name: the key of that name, else the
// dictionary's wildcard, else nil.
func findKey(keys []Key, name string) *Key {
	var wildcard *Key
	for i := range keys {
		switch {
		case keys[i].Wildcard:
			wildcard = &keys[i]
		case keys[i].Name == name:
			return &keys[i]
		}
	}
	return wildcard
}

func convertValue(path string, k *Key, v any, src source) (any, error) {
	switch k.Type {
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, refuse(path, "must be a string")
		}
		return s, checkValues(path, k, s)
	case TypeInteger:
		i, ok := toInt(v)
		if !ok {
			return nil, refuse(path, "must be an integer")
		}
		if err := checkRange(path, k, float64(i)); err != nil {
			return nil, err
		}
		return i, checkValues(path, k, i)
	case TypeReal:
		f, ok := toFloat(v)
		if !ok {
			return nil, refuse(path, "must be a number")
		}
		if err := checkRange(path, k, f); err != nil {
			return nil, err
		}
		return f, checkValues(path, k, f)
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, refuse(path, "must be a boolean")
		}
		return b, nil
	case TypeDate:
		return toDate(path, v, src)
	case TypeData:
		return toData(path, v, src)
	case TypeArray:
		return convertArray(path, k, v, src)
	case TypeDictionary:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, refuse(path, "must be a dictionary")
		}
		return convertDict(path, k.Subkeys, m, src)
	case TypeAny:
		return anyValue(path, v, src, 0)
	}
	return nil, refuse(path, "has unsupported schema type %s", k.Type)
}

func convertArray(path string, k *Key, v any, src source) (any, error) {
	in, ok := v.([]any)
	if !ok {
		return nil, refuse(path, "must be an array")
	}
	out := make([]any, len(in))
	for i, elem := range in {
		ep := indexPath(path, i)
		var err error
		switch len(k.Subkeys) {
		case 0:
			out[i], err = anyValue(ep, elem, src, 0)
		case 1:
			out[i], err = convertValue(ep, &k.Subkeys[0], elem, src)
		default:
			out[i], err = convertVariant(ep, k.Subkeys, elem, src)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// convertVariant checks an element of an array whose schema lists several
// dictionary shapes (Settings). Each shape has a required key with a single
// allowed value, which says which shape the element claims to be.
func convertVariant(path string, variants []Key, v any, src source) (any, error) {
	k, err := pickVariant(path, variants, v, src)
	if err != nil {
		return nil, err
	}
	return convertValue(path, k, v, src)
}

func pickVariant(path string, variants []Key, v any, src source) (*Key, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, refuse(path, "must be a dictionary")
	}
	var claims []string
	for i := range variants {
		d := discriminator(&variants[i])
		if d == nil {
			continue
		}
		claims = append(claims, fmt.Sprintf("%s=%s", d.Name, formatValue(d.Values[0])))
		raw, present := m[d.Name]
		if !present {
			continue
		}
		got, err := convertValue(path+"."+d.Name, d, raw, src)
		if err == nil && got == d.Values[0] {
			return &variants[i], nil
		}
	}
	return nil, refuse(path, "matches none of the allowed items (%s)", strings.Join(claims, ", "))
}

func discriminator(variant *Key) *Key {
	for i := range variant.Subkeys {
		if sk := &variant.Subkeys[i]; sk.Required && len(sk.Values) == 1 {
			return sk
		}
	}
	return nil
}

func checkValues(path string, k *Key, v any) error {
	if len(k.Values) == 0 {
		return nil
	}
	for _, allowed := range k.Values {
		if allowed == v {
			return nil
		}
	}
	list := make([]string, len(k.Values))
	for i, allowed := range k.Values {
		list[i] = formatValue(allowed)
	}
	return refuse(path, "must be one of %s", strings.Join(list, ", "))
}

func formatValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func checkRange(path string, k *Key, f float64) error {
	if k.Min != nil && f < *k.Min {
		return refuse(path, "must be at least %v", *k.Min)
	}
	if k.Max != nil && f > *k.Max {
		return refuse(path, "must be at most %v", *k.Max)
	}
	return nil
}

// toInt accepts exact integers only: JSON numbers without fraction or
// exponent, Go integers that fit int64, and integral floats from callers
// that decoded JSON without UseNumber.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case uint32:
		return int64(n), true
	case float64:
		if n != math.Trunc(n) || n < -(1<<63) || n >= 1<<63 {
			return 0, false
		}
		return int64(n), true
	}
	return 0, false
}

// toFloat accepts any finite number; integers are valid reals.
func toFloat(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(n), 64); err != nil {
			return 0, false
		}
	case float64:
		f = n
	case float32:
		f = float64(n)
	default:
		i, ok := toInt(v)
		if !ok {
			return 0, false
		}
		f = float64(i)
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

func toDate(path string, v any, src source) (time.Time, error) {
	if src.plist {
		t, ok := v.(time.Time)
		if !ok {
			return time.Time{}, refuse(path, "must be a date")
		}
		return t.UTC(), nil
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, refuse(path, "must be an RFC 3339 date string")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, refuse(path, "must be an RFC 3339 date string, e.g. 2026-01-02T15:04:05Z")
	}
	return t.UTC(), nil
}

func toData(path string, v any, src source) ([]byte, error) {
	if src.plist {
		b, ok := v.([]byte)
		if !ok {
			return nil, refuse(path, "must be data")
		}
		return b, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, refuse(path, "must be a base64 string")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, refuse(path, "must be a base64 string: %v", err)
	}
	return b, nil
}

// maxAnyDepth bounds nesting inside unconstrained values, so hostile input
// cannot drive the recursion (and the stack) arbitrarily deep. Real app
// configurations and manifests are a few levels deep.
const maxAnyDepth = 32

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// anyValue converts a value the schema does not constrain (<any>, app
// configurations, manifests) into plist-ready types. From JSON, strings stay
// strings (there is no way to tell data or dates apart) and numbers become
// int64 when exact, float64 otherwise.
func anyValue(path string, v any, src source, depth int) (any, error) {
	if depth > maxAnyDepth {
		return nil, refuse(path, "nests deeper than %d levels", maxAnyDepth)
	}
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case []byte, time.Time:
		if src.plist {
			return x, nil
		}
	case map[string]any:
		return anyDict(path, x, src, depth)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = anyValue(indexPath(path, i), e, src, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	case nil:
		return nil, refuse(path, "null has no plist equivalent")
	default:
		if i, ok := toInt(v); ok {
			return i, nil
		}
		if f, ok := toFloat(v); ok {
			return f, nil
		}
	}
	return nil, refuse(path, "has a value (%T) with no plist equivalent", v)
}

func anyDict(path string, in map[string]any, src source, depth int) (map[string]any, error) {
	out := make(map[string]any, len(in))
	for _, name := range sortedKeys(in) {
		v, err := anyValue(joinPath(path, name), in[name], src, depth+1)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}
