package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// adminsCommands manage admin accounts (owner only on the server).
var adminsCommands = []*command{
	{name: "list", summary: "list admin accounts", setup: api(adminsList), examples: []string{"orchard admins list"}},
	{name: "create", summary: "create an admin account", args: []string{"<username>"}, setup: api(adminsCreate),
		help: `Without --password-file, Orchard's CLI makes a strong random password and prints it once.
Roles: owner (everything), admin (all but managing admins), helpdesk (read, refresh, lock,
clear passcode, lost mode), auditor (read only).`,
		examples: []string{"orchard admins create hana --role helpdesk"}},
	{name: "set", summary: "change an admin's role, password or disabled flag", args: []string{"<username>"}, setup: api(adminsSet),
		examples: []string{"orchard admins set hana --role auditor", "orchard admins set hana --disabled=false --new-password"}},
	{name: "reset-two-factor", summary: "turn off an admin's two-factor sign-in (a lost authenticator)", args: []string{"<username>"},
		setup: api(adminsResetTwoFactor), examples: []string{"orchard admins reset-two-factor hana"}},
	{name: "delete", summary: "delete an admin account and all its API tokens", args: []string{"<username>"},
		setup: api(adminsDelete), examples: []string{"orchard admins delete hana"}},
}

// tokensCommands manage per-admin API tokens.
var tokensCommands = []*command{
	{name: "list", summary: "list API tokens (yours, or an admin's with --admin)", setup: api(tokensList),
		examples: []string{"orchard tokens list --admin ci-bot"}},
	{name: "create", summary: "make an API token; its secret is printed once", setup: api(tokensCreate),
		help:     "The role defaults to the admin's and is never higher than the admin's or yours.",
		examples: []string{"orchard tokens create --admin ci-bot --role auditor --name reporting"}},
	{name: "revoke", summary: "revoke an API token at once", args: []string{"<api-token-id>"}, setup: api(tokensRevoke),
		examples: []string{"orchard tokens revoke --admin ci-bot <api-token-id>"}},
}

// auditCommands read the audit log.
var auditCommands = []*command{
	{name: "list", summary: "audit log entries, oldest first", setup: api(auditList),
		examples: []string{"orchard audit list --actor bootstrap --all", "orchard audit list --action /actions/ --since 2026-01-01T00:00:00Z"}},
	{name: "export", summary: "the audit log as CSV", setup: api(auditExport),
		examples: []string{"orchard audit export > audit.csv"}},
}

var adminColumns = []column{{"USERNAME", "username"}, {"ROLE", "role"}, {"DISABLED", "disabled"}, {"TWO-FACTOR", "two_factor"}, {"CREATED", "created_at"}}

func adminsList(*flag.FlagSet) builder {
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: "/v1/admins", list: &listView{"admins", adminColumns}}, nil
	}
}

// newPassword makes a 24-character random password.
func newPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// passwordFrom reads a password file's first line; "" makes one.
func passwordFrom(path string) (pw string, made bool, err error) {
	if path == "" {
		return newPassword(), true, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, err
	}
	pw, _, _ = strings.Cut(string(b), "\n")
	return strings.TrimRight(pw, "\r"), false, nil
}

// showOnce prints the answer and then the one-time secret.
func showOnce(label, secret string) func([]byte, io.Writer) error {
	return func(body []byte, w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n%s (shown once): %s\n", strings.TrimSpace(string(body)), label, secret)
		return err
	}
}

func adminsCreate(fs *flag.FlagSet) builder {
	role := fs.String("role", "", "owner, admin, helpdesk or auditor (required)")
	pwFile := fs.String("password-file", "", "read the password from this file's first line (default: make one)")
	return func(_ *client, args []string) (call, error) {
		if *role == "" {
			return call{}, errors.New("--role is required")
		}
		pw, made, err := passwordFrom(*pwFile)
		if err != nil {
			return call{}, err
		}
		c := call{method: "POST", path: "/v1/admins", body: map[string]string{"username": args[0], "role": *role, "password": pw}}
		if made {
			c.save = showOnce("password", pw)
		}
		return c, nil
	}
}

func adminsSet(fs *flag.FlagSet) builder {
	role := fs.String("role", "", "the new role")
	disabled := fs.Bool("disabled", false, "disable (true) or enable (false) the account")
	newPW := fs.Bool("new-password", false, "set a new random password and print it once")
	pwFile := fs.String("password-file", "", "set the password from this file's first line")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{}
		if *role != "" {
			body["role"] = *role
		}
		if isSet(fs, "disabled") {
			body["disabled"] = *disabled
		}
		c := call{method: "PATCH", path: "/v1/admins/" + url.PathEscape(args[0])}
		if *newPW || *pwFile != "" {
			pw, made, err := passwordFrom(*pwFile)
			if err != nil {
				return call{}, err
			}
			body["password"] = pw
			if made {
				c.save = showOnce("password", pw)
			}
		}
		if len(body) == 0 {
			return call{}, errors.New("nothing to change: give --role, --disabled, --new-password or --password-file")
		}
		c.body = body
		return c, nil
	}
}

func adminsResetTwoFactor(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "DELETE", path: "/v1/admins/" + url.PathEscape(args[0]) + "/two-factor",
			save: done("two-factor sign-in off: the password alone signs in until it is set up again")}, nil
	}
}

func adminsDelete(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "DELETE", path: "/v1/admins/" + url.PathEscape(args[0]), save: done("deleted")}, nil
	}
}

// done prints what a 204 answer (no body) did.
func done(what string) func([]byte, io.Writer) error {
	return func(_ []byte, w io.Writer) error {
		_, err := fmt.Fprintln(w, what)
		return err
	}
}

var tokenColumns = []column{{"ID", "id"}, {"ADMIN", "admin"}, {"NAME", "name"}, {"ROLE", "role"}, {"CREATED", "created_at"}}

func tokensList(fs *flag.FlagSet) builder {
	admin := fs.String("admin", "", "this admin's tokens (owner only)")
	return func(*client, []string) (call, error) {
		p := "/v1/tokens"
		if *admin != "" {
			p = "/v1/admins/" + url.PathEscape(*admin) + "/tokens"
		}
		return call{method: "GET", path: p, list: &listView{"tokens", tokenColumns}}, nil
	}
}

func tokensCreate(fs *flag.FlagSet) builder {
	admin := fs.String("admin", "", "make it for this admin (owner only; the bootstrap key must name one)")
	role := fs.String("role", "", "its role (default: the admin's)")
	name := fs.String("name", "", "a note saying what it is for")
	return func(*client, []string) (call, error) {
		p := "/v1/tokens"
		if *admin != "" {
			p = "/v1/admins/" + url.PathEscape(*admin) + "/tokens"
		}
		return call{method: "POST", path: p, body: map[string]string{"role": *role, "name": *name}}, nil
	}
}

func tokensRevoke(fs *flag.FlagSet) builder {
	admin := fs.String("admin", "", "the admin whose token it is (owner only)")
	return func(_ *client, args []string) (call, error) {
		p := "/v1/tokens/" + url.PathEscape(args[0])
		if *admin != "" {
			p = "/v1/admins/" + url.PathEscape(*admin) + "/tokens/" + url.PathEscape(args[0])
		}
		return call{method: "DELETE", path: p, save: done("revoked")}, nil
	}
}

var auditColumns = []column{{"ID", "id"}, {"TIME", "time"}, {"ACTOR", "actor"}, {"SOURCE", "source"}, {"ACTION", "action"},
	{"TARGET", "target"}, {"STATUS", "status"}, {"RESULT", "result"}}

// auditFlags are the filters both audit commands take.
func auditFlags(fs *flag.FlagSet) func() (url.Values, error) {
	actor := fs.String("actor", "", "bootstrap, a username (with its tokens) or username/token:<id>")
	action := fs.String("action", "", "entries whose action (METHOD /v1/path) contains this")
	target := fs.String("target", "", "exact target, e.g. \"id=<udid> action=lock\"")
	since := fs.String("since", "", "from this RFC 3339 time, or this long ago (24h)")
	until := fs.String("until", "", "before this RFC 3339 time, or this long ago")
	return func() (url.Values, error) {
		q := url.Values{}
		for k, v := range map[string]string{"actor": *actor, "action": *action, "target": *target, "since": *since, "until": *until} {
			if v == "" {
				continue
			}
			if k == "since" || k == "until" {
				if err := checkTimeFlag(k, v); err != nil {
					return nil, err
				}
			}
			q.Set(k, v)
		}
		return q, nil
	}
}

func auditList(fs *flag.FlagSet) builder {
	filters := auditFlags(fs)
	var p pageFlags
	p.register(fs, "entries")
	return func(*client, []string) (call, error) {
		q, err := filters()
		if err != nil {
			return call{}, err
		}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/audit?" + q.Encode(), list: &listView{"entries", auditColumns}, all: p.all}, nil
	}
}

func auditExport(fs *flag.FlagSet) builder {
	filters := auditFlags(fs)
	return func(*client, []string) (call, error) {
		q, err := filters()
		if err != nil {
			return call{}, err
		}
		return call{method: "GET", path: "/v1/audit.csv?" + q.Encode(), save: func(b []byte, w io.Writer) error {
			_, err := w.Write(b)
			return err
		}}, nil
	}
}
