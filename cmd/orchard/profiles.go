package main

import (
	"flag"
	"net/url"
	"os"
	"strings"

	"github.com/orchardmdm/orchard/internal/apiclient"
)

var profilesCommands = []*command{
	{name: "list", summary: "list the configuration profile library with counts per state", setup: api(noFlags("GET", "/v1/profiles")),
		examples: []string{"orchard profiles list"}},
	{name: "upload", summary: "add a .mobileconfig (plain or signed) to the library, or a new version of it", args: []string{"<file>"}, setup: api(profilesUpload),
		help: `The profile's PayloadIdentifier names it. --new-version uploads a new version of an existing
profile (same identifier, new PayloadUUID): every channel in scope gets it. --sign signs it with
Orchard's profile signer. --reinstall=false reports a profile a user removed instead of reinstalling it.`,
		examples: []string{"orchard profiles upload wifi.mobileconfig --sign"}},
	{name: "show", summary: "one profile: version, scope, counts per state", args: []string{"<id>"}, setup: api(noFlags("GET", "/v1/profiles/%s")),
		examples: []string{"orchard profiles show com.example.wifi"}},
	{name: "scope", summary: "set which devices get a profile", args: []string{"<id>"}, setup: api(profilesScope),
		help: `Comma-separated lists. With only --platforms or --ownership every such device is in scope;
--devices, --groups and --categories include those; --exclude removes devices. --none unscopes it
(devices lose it).`,
		examples: []string{"orchard profiles scope com.example.wifi --platforms iOS,iPadOS", "orchard profiles scope com.example.wifi --devices <udid>"}},
	{name: "status", summary: "the profile's state on every channel", args: []string{"<id>"}, setup: api(noFlags("GET", "/v1/profiles/%s/status")),
		examples: []string{"orchard profiles status com.example.wifi"}},
	{name: "resend", summary: "send a profile again: to one channel, or to every channel where it failed", args: []string{"<id>"}, setup: api(profilesResend),
		examples: []string{"orchard profiles resend com.example.wifi"}},
}

func profilesUpload(fs *flag.FlagSet) builder {
	sign := fs.Bool("sign", false, "sign it with Orchard's profile signer")
	newVersion := fs.String("new-version", "", "upload a new version of this profile ID")
	reinstall := fs.String("reinstall", "", "true: reinstall when a user removes it (the default); false: report it")
	return func(_ *client, args []string) (call, error) {
		b, err := os.ReadFile(args[0])
		if err != nil {
			return call{}, err
		}
		q := url.Values{}
		if *sign {
			q.Set("sign", "true")
		}
		if *reinstall != "" {
			q.Set("reinstall", *reinstall)
		}
		method, path := "POST", "/v1/profiles"
		if *newVersion != "" {
			method, path = "PUT", "/v1/profiles/"+url.PathEscape(*newVersion)
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		return call{method: method, path: path, body: apiclient.Raw{ContentType: "application/x-apple-aspen-config", Body: b}}, nil
	}
}

func profilesScope(fs *flag.FlagSet) builder {
	return scopeCommand(fs, "orchard profiles scope", "/v1/profiles/")
}

// scopeCommand reads a scope of the shared model from flags and PUTs it to
// prefix + <arg> + "/scope" (profiles and declaration sets).
func scopeCommand(fs *flag.FlagSet, usage, prefix string) builder {
	all := fs.Bool("all", false, "every enrolled device")
	none := fs.Bool("none", false, "no device: unscope it")
	lists := map[string]*string{}
	for _, name := range []string{"platforms", "ownership", "groups", "categories", "devices", "exclude", "exclude-groups", "exclude-categories"} {
		lists[name] = fs.String(name, "", name+" (comma-separated)")
	}
	channel := fs.String("channel", "", "device (default) or user")
	return func(_ *client, args []string) (call, error) {
		sc := map[string]any{}
		for name, v := range lists {
			if *v != "" {
				sc[strings.ReplaceAll(name, "-", "_")] = strings.Split(*v, ",")
			}
		}
		if *all {
			sc["all"] = true
		}
		if *channel != "" {
			sc["channel"] = *channel
		}
		if *none != (len(sc) == 0) {
			return call{}, usagef(usage, "give --none alone, or at least one of --all, --platforms, --devices, ...")
		}
		return call{method: "PUT", path: prefix + url.PathEscape(args[0]) + "/scope", body: map[string]any{"scope": sc}}, nil
	}
}

func profilesResend(fs *flag.FlagSet) builder {
	channel := fs.String("channel", "", "resend to this channel only (default: every channel where it failed)")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{}
		if *channel != "" {
			body["channel"] = *channel
		}
		return call{method: "POST", path: "/v1/profiles/" + url.PathEscape(args[0]) + "/resend", body: body}, nil
	}
}
