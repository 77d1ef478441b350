package commands

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParseSet turns CLI assignments (`Message=Call IT`, `PIN=123456`,
// `Queries=["UDID"]`, `ReturnToService.Enabled=true`) into a payload for
// BuildCommand, typing each value from requestType's schema: strings stay
// as written (so PIN stays a string), integers, reals and booleans are
// parsed, data is base64 text, dates are RFC 3339, and arrays, dictionaries
// and <any> values are JSON. A dotted name reaches into a dictionary key.
// The result still has to pass BuildCommand, which checks the whole payload.
func ParseSet(requestType string, assignments []string) (map[string]any, error) {
	c, ok := Lookup(requestType)
	if !ok {
		return nil, unknownRequestType(requestType)
	}
	payload := map[string]any{}
	whole := map[string]bool{} // paths assigned a complete value
	for _, a := range assignments {
		name, raw, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, &Error{Reason: fmt.Sprintf("--set %q: want Key=value", a)}
		}
		if err := setPath(payload, whole, c.Keys, "Payload", strings.Split(name, "."), raw); err != nil {
			return nil, err
		}
	}
	return payload, nil
}

func setPath(dict map[string]any, whole map[string]bool, keys []Key, path string, names []string, raw string) error {
	name := names[0]
	path = joinPath(path, name)
	k := findKey(keys, name)
	if k == nil {
		return refuse(path, "unknown key %q", name)
	}
	if len(names) == 1 {
		if _, dup := dict[name]; dup {
			if whole[path] {
				return refuse(path, "set twice")
			}
			return refuse(path, "set both whole and by key")
		}
		whole[path] = true
		v, err := parseTyped(path, k.Type, raw)
		if err != nil {
			return err
		}
		dict[name] = v
		return nil
	}
	if k.Type != TypeDictionary {
		return refuse(path, "is a %s, not a dictionary", k.Type)
	}
	if whole[path] {
		return refuse(path, "set both whole and by key")
	}
	sub, ok := dict[name].(map[string]any)
	if !ok {
		sub = map[string]any{}
		dict[name] = sub
	}
	return setPath(sub, whole, k.Subkeys, path, names[1:], raw)
}

func parseTyped(path string, t Type, raw string) (any, error) {
	switch t {
	case TypeString, TypeData, TypeDate:
		return raw, nil
	case TypeInteger, TypeReal:
		// Kept as json.Number so BuildCommand applies the same integer and
		// range rules as for the JSON API.
		v, err := decodeJSONValue(raw)
		n, ok := v.(json.Number)
		if err != nil || !ok {
			return nil, refuse(path, "must be a number")
		}
		return n, nil
	case TypeBoolean:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, refuse(path, "must be true or false")
		}
		return b, nil
	case TypeAny:
		if v, err := decodeJSONValue(raw); err == nil {
			return v, nil
		}
		return raw, nil
	default:
		v, err := decodeJSONValue(raw)
		if err != nil {
			return nil, refuse(path, "must be a JSON %s: %v", t, err)
		}
		return v, nil
	}
}

func decodeJSONValue(raw string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}
