package main

import (
	"flag"
	"net/url"
)

var categoriesCommands = []*command{
	{name: "list", summary: "list device categories", setup: api(categoriesList),
		examples: []string{"orchard categories list"}},
	{name: "create", summary: "add a device category", args: []string{"<name>"}, setup: api(categoriesCreate),
		help: `--group names an existing group: when a device with a primary user is put in the category, that
user is added to the group.`,
		examples: []string{`orchard categories create kiosk --description "Front desk iPads" --group kiosk-staff`}},
	{name: "delete", summary: "delete a category (its devices are left in none)", args: []string{"<name>"},
		setup: api(noFlags("DELETE", "/v1/categories/%s")), examples: []string{"orchard categories delete kiosk"}},
}

func categoriesList(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "categories")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/categories?" + q.Encode(),
			list: &listView{"categories", []column{{"NAME", "name"}, {"DESCRIPTION", "description"}, {"GROUP", "group"}, {"CREATED", "created_at"}}}}, nil
	}
}

func categoriesCreate(fs *flag.FlagSet) builder {
	desc := fs.String("description", "", "what the category is for")
	group := fs.String("group", "", "the group the primary users of its devices join")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{"name": args[0], "description": *desc}
		if *group != "" {
			body["group"] = *group
		}
		return call{method: "POST", path: "/v1/categories", body: body}, nil
	}
}

func devicesCategory(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "PUT", path: "/v1/devices/" + url.PathEscape(args[0]) + "/category", body: map[string]any{"category": args[1]}}, nil
	}
}
