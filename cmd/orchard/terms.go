package main

import (
	"flag"
	"net/url"
	"os"
	"strconv"
	"strings"
)

var termsCommands = []*command{
	{name: "list", summary: "list terms-and-conditions documents", setup: api(termsList),
		examples: []string{"orchard terms list"}},
	{name: "show", summary: "show a document's current version (or --version N) and its history", args: []string{"<name>"},
		setup: api(termsShow), examples: []string{"orchard terms show acceptable-use"}},
	{name: "create", summary: "add a document (the text from a file)", args: []string{"<name>"}, setup: api(termsCreate),
		help: `The full text is read from --text-file (UTF-8, at most 256 KiB). Assign it to every user with
--all-users or to groups with --group (repeat it).`,
		examples: []string{`orchard terms create acceptable-use --title "Acceptable use" --summary "By enrolling you agree to the IT policy." --text-file aup.txt --all-users`}},
	{name: "update", summary: "make a document's next version", args: []string{"<name>"}, setup: api(termsUpdate),
		help: `Flags left out keep the current version's value. --require-reacceptance asks users who accepted
an earlier version to accept this one; leave it off for typo fixes.`,
		examples: []string{"orchard terms update acceptable-use --text-file aup.txt --require-reacceptance"}},
	{name: "delete", summary: "delete a document, its history and its acceptances", args: []string{"<name>"},
		setup: api(noFlags("DELETE", "/v1/terms/%s")), examples: []string{"orchard terms delete byod"}},
	{name: "acceptances", summary: "the acceptance report: who accepted which version, when", setup: api(termsAcceptances),
		examples: []string{"orchard terms acceptances", "orchard terms acceptances --document acceptable-use -o csv"}},
}

// groupFlags collects a repeated --group.
type groupFlags []string

func (g *groupFlags) String() string     { return strings.Join(*g, ",") }
func (g *groupFlags) Set(v string) error { *g = append(*g, v); return nil }

func termsList(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "documents")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/terms?" + q.Encode(), list: &listView{"terms", []column{{"NAME", "name"}, {"TITLE", "title"},
			{"VERSION", "version"}, {"ALL USERS", "all_users"}, {"GROUPS", "groups"}, {"UPDATED", "updated_at"}}}}, nil
	}
}

func termsShow(fs *flag.FlagSet) builder {
	version := fs.Int("version", 0, "show this version instead of the current one")
	return func(_ *client, args []string) (call, error) {
		p := "/v1/terms/" + url.PathEscape(args[0])
		if *version > 0 {
			p += "?version=" + strconv.Itoa(*version)
		}
		return call{method: "GET", path: p}, nil
	}
}

func termsCreate(fs *flag.FlagSet) builder {
	title := fs.String("title", "", "the title users see")
	summary := fs.String("summary", "", "a short summary users see above the text")
	textFile := fs.String("text-file", "", "read the full text from this file")
	all := fs.Bool("all-users", false, "assign the document to every user")
	var groups groupFlags
	fs.Var(&groups, "group", "assign the document to this group's members (repeat for more)")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{"name": args[0], "title": *title, "summary": *summary, "all_users": *all}
		if len(groups) > 0 {
			body["groups"] = []string(groups)
		}
		if *textFile != "" {
			b, err := os.ReadFile(*textFile)
			if err != nil {
				return call{}, err
			}
			body["text"] = string(b)
		}
		return call{method: "POST", path: "/v1/terms", body: body}, nil
	}
}

func termsUpdate(fs *flag.FlagSet) builder {
	title := fs.String("title", "", "a new title")
	summary := fs.String("summary", "", "a new summary")
	textFile := fs.String("text-file", "", "read the new full text from this file")
	all := fs.Bool("all-users", false, "assign the document to every user")
	reaccept := fs.Bool("require-reacceptance", false, "users who accepted an earlier version must accept this one")
	var groups groupFlags
	fs.Var(&groups, "group", "assign the document to this group's members instead (repeat for more)")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{"require_reacceptance": *reaccept}
		if isSet(fs, "title") {
			body["title"] = *title
		}
		if isSet(fs, "summary") {
			body["summary"] = *summary
		}
		if isSet(fs, "all-users") {
			body["all_users"] = *all
		}
		if len(groups) > 0 {
			body["groups"] = []string(groups)
		}
		if *textFile != "" {
			b, err := os.ReadFile(*textFile)
			if err != nil {
				return call{}, err
			}
			body["text"] = string(b)
		}
		return call{method: "PUT", path: "/v1/terms/" + url.PathEscape(args[0]), body: body}, nil
	}
}

func termsAcceptances(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "acceptances")
	user := fs.String("user", "", "only this user's acceptances")
	doc := fs.String("document", "", "only this document's acceptances")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		if *user != "" {
			q.Set("user", *user)
		}
		if *doc != "" {
			q.Set("document", *doc)
		}
		return call{method: "GET", path: "/v1/terms/acceptances?" + q.Encode(), all: p.all,
			list: &listView{"acceptances", []column{{"USER", "username"}, {"DOCUMENT", "document"}, {"VERSION", "version"},
				{"ACCEPTED AT", "accepted_at"}, {"LATEST", "accepted_latest"}}}}, nil
	}
}
