package commands_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/mdm/commands"
)

var sampleDate = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// sample returns a valid JSON value for k and, independently of the
// converter, the plist value it must become. With full set, optional keys
// are filled too and an array of several item shapes gets one of each.
func sample(k *commands.Key, full bool) (jsonVal, plistVal any) {
	switch k.Type {
	case commands.TypeString:
		if len(k.Values) > 0 {
			return k.Values[0], k.Values[0]
		}
		return "orchard", "orchard"
	case commands.TypeInteger:
		if len(k.Values) > 0 {
			n := k.Values[len(k.Values)-1].(int64)
			return json.Number(jsonInt(n)), n
		}
		return json.Number("42"), int64(42)
	case commands.TypeReal:
		if len(k.Values) > 0 {
			f := k.Values[0].(float64)
			return f, f
		}
		if k.Min != nil {
			return *k.Min, *k.Min
		}
		return json.Number("0.5"), 0.5
	case commands.TypeBoolean:
		return true, true
	case commands.TypeDate:
		return sampleDate.Format(time.RFC3339), sampleDate
	case commands.TypeData:
		return base64.StdEncoding.EncodeToString([]byte("orchard\x00\xff")), []byte("orchard\x00\xff")
	case commands.TypeAny:
		return map[string]any{"n": json.Number("7"), "s": "x"}, map[string]any{"n": int64(7), "s": "x"}
	case commands.TypeArray:
		var js, ps []any
		for i := range k.Subkeys {
			j, p := sample(&k.Subkeys[i], full)
			js, ps = append(js, j), append(ps, p)
			if !full {
				break
			}
		}
		return js, ps
	case commands.TypeDictionary:
		js, ps := map[string]any{}, map[string]any{}
		for i := range k.Subkeys {
			sk := &k.Subkeys[i]
			if (!sk.Required && !full) || sk.Wildcard {
				continue
			}
			js[sk.Name], ps[sk.Name] = sample(sk, full)
		}
		if hasWildcard(k) && full {
			js["AnyName"], ps["AnyName"] = "v", "v"
		}
		return js, ps
	}
	panic("sample: unhandled type " + k.Type.String())
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func hasWildcard(k *commands.Key) bool {
	for _, sk := range k.Subkeys {
		if sk.Wildcard {
			return true
		}
	}
	return false
}

// samplePayload builds a payload for c through the same code as nested
// dictionaries.
func samplePayload(c *commands.Command, full bool) (map[string]any, map[string]any) {
	j, p := sample(&commands.Key{Type: commands.TypeDictionary, Subkeys: c.Keys}, full)
	return j.(map[string]any), p.(map[string]any)
}

func TestRoundTripEveryCommand(t *testing.T) {
	all := commands.All()
	if len(all) < 60 {
		t.Fatalf("only %d commands known", len(all))
	}
	for _, full := range []bool{false, true} {
		for _, c := range all {
			name := c.RequestType + "/required"
			if full {
				name = c.RequestType + "/all-keys"
			}
			t.Run(name, func(t *testing.T) {
				payload, want := samplePayload(&c, full)
				body, err := json.Marshal(map[string]any{"request_type": c.RequestType, "payload": payload})
				if err != nil {
					t.Fatal(err)
				}
				const uuid = "0C6B9B4B-6F0E-4C1D-9F4E-2B7C1F1E9A10"
				out, err := commands.FromJSON(uuid, body)
				if err != nil {
					t.Fatalf("FromJSON(%s): %v", body, err)
				}
				var decoded struct {
					CommandUUID string
					Command     map[string]any
				}
				if err := plist.Unmarshal(out, &decoded); err != nil {
					t.Fatalf("plist does not decode: %v\n%s", err, out)
				}
				if decoded.CommandUUID != uuid {
					t.Errorf("CommandUUID = %q, want %q", decoded.CommandUUID, uuid)
				}
				raw, err := commands.ValidatePlist(out)
				if err != nil {
					t.Fatalf("ValidatePlist of our own output: %v\n%s", err, out)
				}
				want["RequestType"] = c.RequestType
				if !reflect.DeepEqual(raw.Command, want) {
					t.Errorf("round trip mismatch\n got %#v\nwant %#v", raw.Command, want)
				}
				if raw.CommandUUID != uuid || raw.RequestType != c.RequestType {
					t.Errorf("ValidatePlist = %q %q, want %q %q", raw.CommandUUID, raw.RequestType, uuid, c.RequestType)
				}
			})
		}
	}
}
