package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// The enrollment-policy commands: policies, corporate identifiers, device
// enrollment managers, ownership, and the enrollment reports.

var policyColumns = []column{{"ID", "id"}, {"KIND", "kind"}, {"NAME", "name"}, {"DEFAULT", "default"},
	{"PRIORITY", "priority"}, {"LIMIT", "device_limit"}, {"UPDATED", "updated_at"}}

var policyCommands = []*command{
	{name: "list", summary: "list enrollment policies, defaults first", setup: api(noFlagsList("/v1/enrollment/policies", "policies", policyColumns)),
		examples: []string{"orchard policy list"}},
	{name: "show", summary: "show a policy (default-platform, default-limit or a group policy's ID)", args: []string{"<id>"},
		setup: api(noFlags("GET", "/v1/enrollment/policies/%s")), examples: []string{"orchard policy show default-limit"}},
	{name: "save", summary: "create or, with --id, create or replace a policy (a default too) from a JSON file", args: []string{"<policy.json>"},
		setup: api(policySave),
		help: `The file holds the policy's fields: kind (platform or limit), name, description, priority
(1 is highest), groups, platforms ({"iOS": {"block", "block_personal", "min_os", "max_os"}, "macOS": ...})
and device_limit (1 to 15). The answer lists warnings, such as a default that blocks iOS (which
refuses ADE and Configurator devices too).`,
		examples: []string{"orchard policy save --id default-platform default-platform.json", "orchard policy save --id contractors-limit contractors-limit.json"}},
	{name: "delete", summary: "delete a group policy (defaults cannot be deleted)", args: []string{"<id>"},
		setup: api(noFlags("DELETE", "/v1/enrollment/policies/%s")), examples: []string{"orchard policy delete contractors-limit"}},
	{name: "decide", summary: "what the policy would answer an enrollment attempt (nothing is written)", setup: api(policyDecide),
		examples: []string{"orchard policy decide --user dana --platform iOS --os 16.4"}},
	{name: "limit", summary: "a user's devices against their device limit", args: []string{"<username>"},
		setup: api(noFlags("GET", "/v1/users/%s/limit")), examples: []string{"orchard policy limit dana"}},
	{name: "dem", summary: "make a user a device enrollment manager (--off: no longer)", args: []string{"<username>"},
		setup: api(policyDEM), examples: []string{"orchard policy dem dana", "orchard policy dem dana --off"}},
	{name: "ownership", summary: "set a device's ownership: corporate or personal", args: []string{"<udid>", "corporate|personal"},
		setup: api(policyOwnership), examples: []string{"orchard policy ownership <udid> corporate"}},
}

var corporateColumns = []column{{"KIND", "kind"}, {"VALUE", "value"}, {"DETAILS", "details"}, {"ENROLLED DEVICE", "enrolled_device"},
	{"ENROLLED", "enrolled_at"}, {"ADDED", "added_at"}}

var corporateIDCommands = []*command{
	{name: "list", summary: "list corporate identifiers and the device that enrolled with each", setup: api(corporateList),
		examples: []string{"orchard corporate-ids list --kind serial", "orchard corporate-ids list --q C02"}},
	{name: "import", summary: "import a two-column CSV without header (identifier, details), one kind", args: []string{"<file.csv>"},
		setup: api(corporateImport),
		help: `At most 5,000 rows or 5 MB; details up to 128 characters. A file with any bad row is refused
whole. Identifiers that exist with other details are listed and kept unless --overwrite.`,
		examples: []string{"orchard corporate-ids import --kind serial corp-serials.csv"}},
	{name: "delete", summary: "delete a corporate identifier", args: []string{"serial|imei", "<value>"},
		setup: api(noFlags("DELETE", "/v1/corporate-identifiers/%s/%s")), examples: []string{"orchard corporate-ids delete serial C02XK1JHJG5J"}},
}

var failureColumns = []column{{"AT", "at"}, {"CODE", "code"}, {"STAGE", "stage"}, {"METHOD", "method"}, {"USER", "user"}, {"PLATFORM", "platform"},
	{"OS", "os_version"}, {"SERIAL", "serial"}, {"POLICY", "policy"}, {"RULE", "rule"}, {"COUNT", "count"}, {"SOURCE", "source"}, {"REASON", "reason"}}

var enrollmentCommands = []*command{
	{name: "failures", summary: "refused enrollment attempts, oldest first", setup: api(enrollmentFailures),
		examples: []string{"orchard enrollment failures --reason device_limit", "orchard enrollment failures --since 24h -o csv"}},
	{name: "summary", summary: "enrollments per day by method, platform and ownership; users against their limits",
		setup: api(enrollmentSummary), examples: []string{"orchard enrollment summary --days 7"}},
	incompleteCommand,
}

func noFlagsList(path, key string, cols []column) func(*flag.FlagSet) builder {
	return func(*flag.FlagSet) builder {
		return func(*client, []string) (call, error) {
			return call{method: "GET", path: path, list: &listView{key, cols}}, nil
		}
	}
}

func policySave(fs *flag.FlagSet) builder {
	id := fs.String("id", "", "the policy's ID: replaced when it exists, else created under it")
	return func(_ *client, args []string) (call, error) {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return call{}, err
		}
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			return call{}, fmt.Errorf("%s: %w", args[0], err)
		}
		if *id != "" {
			return call{method: "PUT", path: "/v1/enrollment/policies/" + url.PathEscape(*id), body: body}, nil
		}
		return call{method: "POST", path: "/v1/enrollment/policies", body: body}, nil
	}
}

func policyDecide(fs *flag.FlagSet) builder {
	user := fs.String("user", "", "directory username")
	method := fs.String("method", "", "invitation, portal, ade, configurator, profile")
	platform := fs.String("platform", "", "iOS, iPadOS, macOS, tvOS, visionOS")
	osVersion := fs.String("os", "", "OS version")
	serial := fs.String("serial", "", "serial number")
	imei := fs.String("imei", "", "IMEI")
	device := fs.String("udid", "", "device UDID (a device the user holds already re-enrolls)")
	return func(*client, []string) (call, error) {
		return call{method: "POST", path: "/v1/enrollment/decide", body: map[string]any{"user": *user, "method": *method,
			"platform": *platform, "os_version": *osVersion, "serial": *serial, "imei": *imei, "device_id": *device}}, nil
	}
}

func policyDEM(fs *flag.FlagSet) builder {
	off := fs.Bool("off", false, "the user is no longer a device enrollment manager")
	return func(_ *client, args []string) (call, error) {
		return call{method: "PUT", path: "/v1/users/" + url.PathEscape(args[0]) + "/dem", body: map[string]any{"dem": !*off}}, nil
	}
}

func policyOwnership(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "PUT", path: "/v1/devices/" + url.PathEscape(args[0]) + "/ownership", body: map[string]any{"ownership": args[1]}}, nil
	}
}

func corporateList(fs *flag.FlagSet) builder {
	kind := fs.String("kind", "", "serial or imei (default: both)")
	q := fs.String("q", "", "identifiers starting with this")
	var p pageFlags
	p.register(fs, "identifiers")
	return func(*client, []string) (call, error) {
		v := url.Values{}
		p.query(v, fs)
		if *kind != "" {
			v.Set("kind", *kind)
		}
		if *q != "" {
			v.Set("q", *q)
		}
		return call{method: "GET", path: "/v1/corporate-identifiers?" + v.Encode(), list: &listView{"identifiers", corporateColumns}, all: p.all}, nil
	}
}

func corporateImport(fs *flag.FlagSet) builder {
	kind := fs.String("kind", "serial", "serial or imei: what the file holds")
	overwrite := fs.Bool("overwrite", false, "replace the details of identifiers that exist")
	return func(_ *client, args []string) (call, error) {
		b, err := readFileOrStdin(args[0])
		if err != nil {
			return call{}, err
		}
		v := url.Values{"kind": {*kind}, "overwrite": {fmt.Sprint(*overwrite)}}
		return call{method: "POST", path: "/v1/corporate-identifiers/import?" + v.Encode(), csv: b}, nil
	}
}

func readFileOrStdin(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

func enrollmentFailures(fs *flag.FlagSet) builder {
	var filters = map[string]*string{}
	for _, f := range []struct{ name, help string }{{"reason", "reason code (device_limit, os_too_old, ...)"},
		{"method", "enrollment method"}, {"platform", "platform"}, {"user", "username"}, {"stage", "stage (scep, authenticate, ...)"}, {"since", "RFC 3339 time or a duration back (24h)"}} {
		filters[f.name] = fs.String(f.name, "", f.help)
	}
	var p pageFlags
	p.register(fs, "failures")
	return func(*client, []string) (call, error) {
		v := url.Values{}
		p.query(v, fs)
		for k, s := range filters {
			if *s != "" {
				v.Set(k, strings.TrimSpace(*s))
			}
		}
		return call{method: "GET", path: "/v1/enrollment/failures?" + v.Encode(), list: &listView{"failures", failureColumns}, all: p.all}, nil
	}
}

func enrollmentSummary(fs *flag.FlagSet) builder {
	days := fs.Int("days", 30, "days back, today included (1 to 366)")
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: fmt.Sprintf("/v1/enrollment/summary?days=%d", *days)}, nil
	}
}
