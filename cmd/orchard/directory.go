package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
)

var userColumns = []column{{"USERNAME", "username"}, {"NAME", "display_name"}, {"EMAIL", "email"},
	{"DISABLED", "disabled"}, {"PASSWORD", "has_password"}, {"CREATED", "created_at"}}

var usersCommands = []*command{
	{name: "list", summary: "list directory users", setup: api(usersList),
		examples: []string{"orchard users list", "orchard users list -o csv"}},
	{name: "show", summary: "show a user and their groups", args: []string{"<username>"},
		setup: api(noFlags("GET", "/v1/users/%s")), examples: []string{"orchard users show ann"}},
	{name: "create", summary: "add a user", args: []string{"<username>"}, setup: api(usersCreate),
		help: `The password is read from the first line of --password-file (never a flag, so it stays out of
shell history and the process list); without it the user has no password yet.`,
		examples: []string{`orchard users create ann --display-name "Ann Example" --email ann@example.com --password-file ann.pw`}},
	{name: "import", summary: "add users from a CSV file (all rows or none)", args: []string{"<file.csv>"},
		setup: api(csvUpload("/v1/users/import")),
		help: `Header: username, and any of display_name, email, password, disabled. A file with any bad row
is refused whole; the error lists the bad lines.`,
		examples: []string{"orchard users import users.csv"}},
	{name: "disable", summary: "disable a user (they can no longer sign in)", args: []string{"<username>"},
		setup: api(userDisabled(true)), examples: []string{"orchard users disable bob"}},
	{name: "enable", summary: "enable a disabled user", args: []string{"<username>"},
		setup: api(userDisabled(false)), examples: []string{"orchard users enable bob"}},
}

var groupsCommands = []*command{
	{name: "list", summary: "list groups", setup: api(groupsList), examples: []string{"orchard groups list"}},
	{name: "create", summary: "add a group", args: []string{"<name>"}, setup: api(groupsCreate),
		examples: []string{`orchard groups create sales --description "Sales team"`}},
	{name: "members", summary: "list a group's members", args: []string{"<name>"}, setup: api(groupMembers),
		examples: []string{"orchard groups members sales"}},
	{name: "add", summary: "add users to a group (all or, when any is unknown, none)", args: []string{"<name>", "<username>"},
		variadic: true, setup: api(groupsAdd), examples: []string{"orchard groups add sales ann"}},
	{name: "import", summary: "add users to a group from a CSV file with a username column", args: []string{"<name>", "<file.csv>"},
		setup: api(groupImport), examples: []string{"orchard groups import sales sales.csv"}},
	{name: "remove", summary: "remove a user from a group", args: []string{"<name>", "<username>"},
		setup: api(noFlags("DELETE", "/v1/groups/%s/members/%s")), examples: []string{"orchard groups remove sales bob"}},
	{name: "delete", summary: "delete a group (its users stay)", args: []string{"<name>"},
		setup: api(noFlags("DELETE", "/v1/groups/%s")), examples: []string{"orchard groups delete sales"}},
}

func usersList(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "users")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/users?" + q.Encode(), list: &listView{"users", userColumns}}, nil
	}
}

func usersCreate(fs *flag.FlagSet) builder {
	display := fs.String("display-name", "", "the user's full name")
	email := fs.String("email", "", "the user's email address")
	pwFile := fs.String("password-file", "", "read the password from the first line of this file")
	disabled := fs.Bool("disabled", false, "create the user disabled")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{"username": args[0], "display_name": *display, "email": *email, "disabled": *disabled}
		if *pwFile != "" {
			pw, err := firstLine(*pwFile)
			if err != nil {
				return call{}, err
			}
			body["password"] = pw
		}
		return call{method: "POST", path: "/v1/users", body: body}, nil
	}
}

func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		if sc.Err() != nil {
			return "", sc.Err()
		}
		return "", errors.New(path + " is empty")
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}

func userDisabled(disabled bool) func(*flag.FlagSet) builder {
	return func(*flag.FlagSet) builder {
		return func(_ *client, args []string) (call, error) {
			return call{method: "PATCH", path: "/v1/users/" + url.PathEscape(args[0]), body: map[string]any{"disabled": disabled}}, nil
		}
	}
}

func csvUpload(path string) func(*flag.FlagSet) builder {
	return func(*flag.FlagSet) builder {
		return func(_ *client, args []string) (call, error) {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return call{}, err
			}
			return call{method: "POST", path: path, csv: b}, nil
		}
	}
}

func groupsList(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "groups")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/groups?" + q.Encode(),
			list: &listView{"groups", []column{{"NAME", "name"}, {"DESCRIPTION", "description"}, {"CREATED", "created_at"}}}}, nil
	}
}

func groupsCreate(fs *flag.FlagSet) builder {
	desc := fs.String("description", "", "what the group is for")
	return func(_ *client, args []string) (call, error) {
		return call{method: "POST", path: "/v1/groups", body: map[string]any{"name": args[0], "description": *desc}}, nil
	}
}

func groupMembers(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "members")
	return func(_ *client, args []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		return call{method: "GET", path: fmt.Sprintf("/v1/groups/%s/members?%s", url.PathEscape(args[0]), q.Encode())}, nil
	}
}

func groupsAdd(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "POST", path: "/v1/groups/" + url.PathEscape(args[0]) + "/members",
			body: map[string]any{"usernames": args[1:]}}, nil
	}
}

func groupImport(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		b, err := os.ReadFile(args[1])
		if err != nil {
			return call{}, err
		}
		return call{method: "POST", path: "/v1/groups/" + url.PathEscape(args[0]) + "/members/import", csv: b}, nil
	}
}

func devicesSetUser(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "PUT", path: "/v1/devices/" + url.PathEscape(args[0]) + "/user", body: map[string]any{"username": args[1]}}, nil
	}
}
