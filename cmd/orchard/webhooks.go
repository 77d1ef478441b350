package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// webhooksCommands manage webhook endpoints and their outbox.
var webhooksCommands = []*command{
	{name: "list", summary: "list webhook endpoints", setup: api(webhooksList), examples: []string{"orchard webhooks list"}},
	{name: "create", summary: "add a webhook endpoint", setup: api(webhooksCreate),
		help: `Topics are exact (mdm.Connect), prefixes (mdm.*, orchard.*) or * for all; see docs/webhooks.md.
With --secret-file every post carries X-Hmac-Signature (base64 HMAC-SHA256 of the body).
Device secrets (push token and magic, unlock and bootstrap tokens) are cut from raw payloads
unless named with --include-secrets.`,
		examples: []string{"orchard webhooks create --url https://hooks.example.com/orchard --topics 'mdm.*,orchard.*' --secret-file hook.secret"}},
	{name: "delete", summary: "delete a webhook endpoint and its events", args: []string{"<webhook-id>"}, setup: api(webhooksDelete),
		examples: []string{"orchard webhooks delete <webhook-id>"}},
	{name: "deliveries", summary: "an endpoint's recent events and their delivery state, newest first", args: []string{"<webhook-id>"},
		setup: api(webhooksDeliveries), examples: []string{"orchard webhooks deliveries <webhook-id> --state dead"}},
	{name: "replay", summary: "send an endpoint's dead events again (or one event with --event)", args: []string{"<webhook-id>"},
		setup: api(webhooksReplay), examples: []string{"orchard webhooks replay <webhook-id>"}},
}

var webhookColumns = []column{{"ID", "id"}, {"URL", "url"}, {"TOPICS", "topics"}, {"ENABLED", "enabled"}, {"SIGNED", "has_secret"}}

var webhookEventColumns = []column{{"ID", "id"}, {"TOPIC", "topic"}, {"STATE", "state"}, {"ATTEMPTS", "attempts"},
	{"LAST STATUS", "last_status"}, {"LAST ERROR", "last_error"}, {"CREATED", "created_at"}}

func webhooksList(*flag.FlagSet) builder {
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: "/v1/webhooks", list: &listView{"webhooks", webhookColumns}}, nil
	}
}

func webhooksCreate(fs *flag.FlagSet) builder {
	u := fs.String("url", "", "where events are posted (required)")
	topics := fs.String("topics", "", "comma-separated topic filters (required)")
	secretFile := fs.String("secret-file", "", "sign with the HMAC key on this file's first line")
	include := fs.String("include-secrets", "", "comma-separated device secrets to send: BootstrapToken, Token, PushMagic, UnlockToken, DigestResponse")
	disabled := fs.Bool("disabled", false, "create it disabled")
	return func(*client, []string) (call, error) {
		if *u == "" || *topics == "" {
			return call{}, errors.New("--url and --topics are required")
		}
		body := map[string]any{"url": *u, "topics": strings.Split(*topics, ","), "enabled": !*disabled}
		if *include != "" {
			body["include_secrets"] = strings.Split(*include, ",")
		}
		if *secretFile != "" {
			b, err := os.ReadFile(*secretFile)
			if err != nil {
				return call{}, err
			}
			s, _, _ := strings.Cut(string(b), "\n")
			if s = strings.TrimRight(s, "\r"); s == "" {
				return call{}, fmt.Errorf("%s: the first line is empty", *secretFile)
			}
			body["secret"] = s
		}
		return call{method: "POST", path: "/v1/webhooks", body: body}, nil
	}
}

func webhooksDelete(*flag.FlagSet) builder {
	return func(_ *client, args []string) (call, error) {
		return call{method: "DELETE", path: "/v1/webhooks/" + url.PathEscape(args[0]), save: done("deleted")}, nil
	}
}

func webhooksDeliveries(fs *flag.FlagSet) builder {
	state := fs.String("state", "", "only pending, delivered or dead events")
	limit := fs.Int("limit", 100, "at most this many (1-500)")
	return func(_ *client, args []string) (call, error) {
		q := url.Values{"limit": {fmt.Sprint(*limit)}}
		if *state != "" {
			q.Set("state", *state)
		}
		return call{method: "GET", path: "/v1/webhooks/" + url.PathEscape(args[0]) + "/deliveries?" + q.Encode(),
			list: &listView{"events", webhookEventColumns}}, nil
	}
}

func webhooksReplay(fs *flag.FlagSet) builder {
	event := fs.String("event", "", "replay only this event (an ID from deliveries), delivered or dead")
	return func(_ *client, args []string) (call, error) {
		if *event != "" {
			return call{method: "POST", path: "/v1/webhooks/events/" + url.PathEscape(*event) + "/replay"}, nil
		}
		return call{method: "POST", path: "/v1/webhooks/" + url.PathEscape(args[0]) + "/replay"}, nil
	}
}
