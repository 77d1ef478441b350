package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/mdm/ddm"
)

// The Declarative Device Management commands (docs/ddm.md).

var declarationColumns = []column{{"IDENTIFIER", "identifier"}, {"TYPE", "type"}, {"SERVER TOKEN", "server_token"}, {"UPDATED", "updated_at"}}

var declarationsCommands = []*command{
	{name: "put", summary: "create or replace a declaration, checked against Apple's schema", setup: api(declarationPut),
		help: `The payload is --payload (a JSON object) and/or --set Key=Value (strings; JSON for arrays,
dictionaries, numbers and booleans). The channels of every set naming it are told to sync.`,
		examples: []string{`orchard declarations put --type com.apple.configuration.softwareupdate.enforcement.specific --identifier ios-26-1 --set TargetOSVersion=26.1 --set TargetLocalDateTime=2026-12-15T20:00:00 --set DetailsURL=https://it.example.com/ios-26`}},
	{name: "list", summary: "list declarations", setup: api(func(*flag.FlagSet) builder {
		return func(*client, []string) (call, error) {
			return call{method: "GET", path: "/v1/declarations", list: &listView{"declarations", declarationColumns}}, nil
		}
	}), examples: []string{"orchard declarations list"}},
	{name: "show", summary: "show one declaration", args: []string{"<identifier>"},
		setup: api(noFlags("GET", "/v1/declarations/%s")), examples: []string{"orchard declarations show ios-26-1"}},
	{name: "status", summary: "what every device last reported of a declaration", args: []string{"<identifier>"},
		setup: api(noFlags("GET", "/v1/declarations/%s/status")), examples: []string{"orchard declarations status ios-26-1"}},
	{name: "delete", summary: "delete a declaration no set names", args: []string{"<identifier>"},
		setup: api(deleted("/v1/declarations/%s")), examples: []string{"orchard declarations delete ios-26-1"}},
}

var declarationSetsCommands = []*command{
	{name: "put", summary: "create or replace a declaration set and the devices it is scoped to", setup: api(declarationSetPut),
		help:     "Devices added or removed are told to sync; Orchard generates the set's activation.",
		examples: []string{"orchard declaration-sets put --name ios-update --declaration ios-26-1 --channel <udid>"}},
	{name: "list", summary: "list declaration sets", setup: api(func(*flag.FlagSet) builder {
		return func(*client, []string) (call, error) {
			return call{method: "GET", path: "/v1/declaration-sets", list: &listView{"declaration_sets",
				[]column{{"NAME", "name"}, {"DECLARATIONS", "declarations"}, {"CHANNELS", "channels"}, {"UPDATED", "updated_at"}}}}, nil
		}
	}), examples: []string{"orchard declaration-sets list"}},
	{name: "show", summary: "show one set", args: []string{"<name>"},
		setup: api(noFlags("GET", "/v1/declaration-sets/%s")), examples: []string{"orchard declaration-sets show ios-update"}},
	{name: "delete", summary: "delete a set; its devices drop its declarations", args: []string{"<name>"},
		setup: api(deleted("/v1/declaration-sets/%s")), examples: []string{"orchard declaration-sets delete ios-update"}},
	{name: "scope", summary: "scope a set like a profile: platforms, groups, categories, devices, exclusions", args: []string{"<name>"},
		setup: api(func(fs *flag.FlagSet) builder {
			return scopeCommand(fs, "orchard declaration-sets scope", "/v1/declaration-sets/")
		}),
		help: `The flags of orchard profiles scope. Channels whose declarations change are told to sync;
--channel user scopes the set to the user channels (macOS users, Shared iPad users) of the devices.`,
		examples: []string{"orchard declaration-sets scope ios-update --platforms iOS,iPadOS --exclude <udid>"}},
}

func declarationPut(fs *flag.FlagSet) builder {
	typ := fs.String("type", "", "declaration type, e.g. com.apple.configuration.softwareupdate.enforcement.specific")
	id := fs.String("identifier", "", "declaration identifier (unique)")
	payload := fs.String("payload", "", "JSON object of the payload")
	var sets kvFlags
	fs.Var(&sets, "set", "`Key=Value` of the payload (repeat)")
	return func(*client, []string) (call, error) {
		p := map[string]any{}
		if *payload != "" {
			if err := json.Unmarshal([]byte(*payload), &p); err != nil {
				return call{}, fmt.Errorf("--payload: %w", err)
			}
		}
		for _, kv := range sets {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return call{}, fmt.Errorf("--set %q: want Key=Value", kv)
			}
			var j any
			if strings.ContainsAny(v[:min(1, len(v))], "[{") || v == "true" || v == "false" {
				if json.Unmarshal([]byte(v), &j) == nil {
					p[k] = j
					continue
				}
			}
			p[k] = typedValue(*typ, k, v)
		}
		return call{method: "POST", path: "/v1/declarations", body: map[string]any{"type": *typ, "identifier": *id, "payload": p}}, nil
	}
}

func declarationSetPut(fs *flag.FlagSet) builder {
	name := fs.String("name", "", "set name")
	var decls, chans listFlags
	fs.Var(&decls, "declaration", "`identifier` of a declaration in the set (repeat)")
	fs.Var(&chans, "channel", "`udid` of a device (or a user channel ID) the set is scoped to (repeat)")
	return func(*client, []string) (call, error) {
		return call{method: "POST", path: "/v1/declaration-sets", body: map[string]any{
			"name": *name, "declarations": append([]string{}, decls...), "channels": append([]string{}, chans...)}}, nil
	}
}

// deleted is a DELETE whose 204 has no body: it prints what went.
func deleted(path string) func(*flag.FlagSet) builder {
	return func(*flag.FlagSet) builder {
		return func(c *client, args []string) (call, error) {
			req, err := get(path)(c, args)
			req.method = "DELETE"
			req.save = func(_ []byte, w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s\n", args[0])
				return err
			}
			return req, err
		}
	}
}

// typedValue reads a --set value as the schema types the payload key
// (MinimumLength=6 is the integer 6); a value that does not read as that
// type, or a key the schema does not know, stays a string for the server
// to judge.
func typedValue(declType, key, v string) any {
	t, ok := ddm.LookupType(declType)
	if !ok {
		return v
	}
	for _, k := range t.Keys {
		if k.Name != key {
			continue
		}
		switch k.Type {
		case ddm.TypeInteger:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		case ddm.TypeReal:
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				return x
			}
		case ddm.TypeBoolean:
			if b, err := strconv.ParseBool(v); err == nil {
				return b
			}
		}
	}
	return v
}
