package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/version"
)

// rootCommand is the whole CLI. Add a command by adding one entry to its
// parent's subs; help, completion and the docs test pick it up.
func rootCommand() *command {
	return &command{
		name:    "orchard",
		summary: "the Orchard MDM server and its admin CLI",
		help: `Global flags (--data, --server, --api-key, -o table|json|csv) go before or after the command.
Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 refused by the server, 5 server error or unreachable.`,
		examples: []string{
			"orchard serve --public-url https://mdm.example.com:8443",
			"orchard devices list --all -o csv",
			"orchard --server https://mdm.example.com:8443 devices show <udid>",
		},
		subs: []*command{
			{name: "serve", summary: "run the MDM server", local: true, setup: serveSetup,
				help:     "Every flag has an environment twin, ORCHARD_<FLAG> (e.g. ORCHARD_PUBLIC_URL).",
				examples: []string{"orchard serve --public-url https://mdm.example.com:8443 --tls-cert cert.pem --tls-key key.pem"}},
			{name: "migrate", summary: "copy the bbolt database into PostgreSQL (server stopped)", local: true, setup: migrateSetup,
				examples: []string{"orchard migrate --from bolt:orchard-data/orchard.db --to postgres:postgres://orchard@db/orchard"}},
			{name: "devices", summary: "enrolled devices: list, show, inventory, remote actions", subs: devicesCommands},
			{name: "commands", summary: "send MDM commands and follow them", subs: commandsCommands},
			{name: "push", summary: "wake devices now through APNs", setup: api(pushSetup),
				examples: []string{"orchard push --udid <udid>"}},
			{name: "push-cert", summary: "the MDM push certificate", subs: pushCertCommands},
			{name: "enroll", summary: "enrollment profiles", subs: []*command{
				{name: "profile", summary: "download a signed over-the-air enrollment profile", setup: api(enrollProfile),
					help:     "Its SCEP challenge is single-use and expires in 15 minutes.",
					examples: []string{"orchard enroll profile -o enroll.mobileconfig"}},
			}},
			{name: "dep", summary: "Apple Business Manager / School Manager (Automated Device Enrollment)", subs: depCommands},
			{name: "profiles", summary: "configuration profiles: library, scope, state per device", subs: profilesCommands},
			{name: "users", summary: "the local directory's users: list, create, import, disable", subs: usersCommands},
			{name: "groups", summary: "static groups of users and their members", subs: groupsCommands},
			{name: "categories", summary: "device categories (the portal asks users to pick one)", subs: categoriesCommands},
			{name: "terms", summary: "terms and conditions users accept before enrolling, and who accepted", subs: termsCommands},
			{name: "declarations", summary: "Declarative Device Management declarations", subs: declarationsCommands},
			{name: "declaration-sets", summary: "sets of declarations and the devices they are scoped to", subs: declarationSetsCommands},
			{name: "policy", summary: "enrollment policy: platform restrictions, device limits, DEMs, ownership", subs: policyCommands},
			{name: "corporate-ids", summary: "corporate identifiers (serial numbers, IMEIs) that make a device corporate", subs: corporateIDCommands},
			{name: "enrollment", summary: "enrollment reports: failures, summary, incomplete user enrollments", subs: enrollmentCommands},
			{name: "software-updates", summary: "fleet view: devices per OS version, pending and failed enforced updates",
				setup: api(noFlags("GET", "/v1/software-updates")), examples: []string{"orchard software-updates"}},
			{name: "demo", summary: "try Orchard with no hardware: a server, a fake APNs and simulated devices", local: true, setup: demoSetup,
				help: `Starts Orchard on a temporary data dir with a fake APNs, enrolls simulated iPhones, iPads and
Macs that stay online and answer commands, and prints what to try next. Ctrl-C stops it and
removes the data dir.`,
				examples: []string{"orchard demo", "orchard demo -n 12 --listen 127.0.0.1:9443"}},
			{name: "simulate", summary: "enroll simulated devices in an existing server and keep them online", setup: simulateSetup,
				help: `Each device fetches an enrollment profile through the admin API, enrolls by SCEP, and checks in
every --interval (a real server's pushes go through Apple, which cannot reach them) until Ctrl-C.`,
				examples: []string{"orchard simulate --server https://localhost:8443 -n 20"}},
			{name: "backup", summary: "write a backup archive of the database and keys, while the server runs", setup: backupSetup,
				help: `Through the server (GET /v1/backup): a consistent snapshot of the database, every key file of
the data dir and a manifest of SHA-256 sums, as one tar. It holds every secret: keep it as safe as
the data dir. --offline reads a stopped server's data dir (--data) instead.`,
				examples: []string{"orchard backup --to orchard-backup.tar", "orchard backup --offline --data orchard-data --to orchard-backup.tar"}},
			{name: "restore", summary: "restore a backup archive into a data dir", local: true, setup: restoreSetup,
				help: `Checks the whole archive (every file's SHA-256, every database page) before it writes
anything into --data. A data dir that is not empty is refused unless --force; one a running
server holds is always refused.`,
				examples: []string{"orchard restore --from orchard-backup.tar --data orchard-data-restored"}},
			{name: "admins", summary: "admin accounts and their roles (owner)", subs: adminsCommands},
			{name: "tokens", summary: "per-admin API tokens: create, list, revoke", subs: tokensCommands},
			{name: "audit", summary: "the audit log of every admin change", subs: auditCommands},
			{name: "webhooks", summary: "webhook endpoints, their deliveries and dead letters", subs: webhooksCommands},
			{name: "version", summary: "print the version, commit, build date and Go version", setup: versionSetup,
				examples: []string{"orchard version", "orchard version -o json"}},
			{name: "completion", summary: "print a shell completion script", local: true, args: []string{"bash|zsh|fish"}, setup: completionSetup,
				help: `Load it in your shell:
  bash: source <(orchard completion bash)
  zsh:  orchard completion zsh > "${fpath[1]}/_orchard"
  fish: orchard completion fish > ~/.config/fish/completions/orchard.fish`,
				examples: []string{"orchard completion bash"}},
			{name: "help", summary: "help for any command", local: true, args: []string{"[command]"}, variadic: true, setup: helpSetup,
				examples: []string{"orchard help devices list"}},
			{name: "__complete", summary: "completion candidates for the words typed so far", local: true, hidden: true, raw: true,
				args: []string{"word"}, variadic: true, setup: completeSetup},
		},
	}
}

var deviceColumns = []column{
	{"ID", "id"}, {"SERIAL", "device.serial_number"}, {"NAME", "device.device_name"}, {"MODEL", "device.model"},
	{"OS", "device.os_version"}, {"ENROLLED", "enrolled"}, {"METHOD", "enrollment_method"}, {"LAST SEEN", "last_seen"},
}

var devicesCommands = []*command{
	{name: "list", summary: "list enrolled devices", setup: api(devicesList),
		examples: []string{"orchard devices list", "orchard devices list --all -o csv"}},
	{name: "show", summary: "show one device, its user channels and queue depth", args: []string{"<udid>"}, setup: api(devicesShow),
		examples: []string{"orchard devices show <udid>"}},
	{name: "search", summary: "devices by a part of their name, serial number, UDID or device ID, in any case", args: []string{"<text>"},
		setup: api(devicesSearch), examples: []string{"orchard devices search c02", "orchard devices search ipad --platform iPadOS"}},
	{name: "counts", summary: "devices by platform and OS version, and by last check-in (a pass over the fleet)",
		setup: api(noFlags("GET", "/v1/inventory/counts")), examples: []string{"orchard devices counts"}},
	{name: "inventory", summary: "the device's inventory (DeviceInformation, SecurityInfo)", args: []string{"<udid>"},
		setup: api(noFlags("GET", "/v1/devices/%s/inventory")), examples: []string{"orchard devices inventory <udid>"}},
	{name: "apps", summary: "the device's latest installed-application list", args: []string{"<udid>"},
		setup: api(noFlags("GET", "/v1/devices/%s/apps"))},
	{name: "profiles", summary: "the device's latest installed-profile list", args: []string{"<udid>"},
		setup: api(noFlags("GET", "/v1/devices/%s/profiles"))},
	{name: "declarations", summary: "the device's declarations token and latest declarative status", args: []string{"<udid>"},
		setup: api(noFlags("GET", "/v1/devices/%s/declarations")), examples: []string{"orchard devices declarations <udid>"}},
	{name: "action", summary: "run a remote action", args: []string{"<udid>", "<action>"}, setup: api(deviceAction),
		help: `Actions: sync, refresh, lock, erase, clear-passcode, restart, shutdown, rename,
lost-mode-enable, lost-mode-disable, lost-mode-location, retire. Destructive ones (erase, retire)
need --confirm. Fields (--set) are those of POST /v1/devices/{id}/actions/{action} (docs/inventory.md).`,
		examples: []string{`orchard devices action <udid> lock --set message="Call IT"`, `orchard devices action <udid> rename --set name="Front Desk"`}},
	{name: "release", summary: "let the device's next enrollment replace this one (once, within 7 days)", args: []string{"<udid>"},
		setup: api(noFlags("POST", "/v1/devices/%s/release")),
		help: `For a device wiped or replaced without checking out: its next Authenticate may take over the
enrollment, once, within 7 days. Without a release such an enrollment is refused.`,
		examples: []string{"orchard devices release <udid>"}},
	{name: "set-user", summary: "set the device's primary user (\"\" clears it)", args: []string{"<udid>", "<username>"},
		setup: api(devicesSetUser), examples: []string{"orchard devices set-user <udid> ann"}},
	{name: "category", summary: "put the device in a category (\"\" takes it out)", args: []string{"<udid>", "<category>"},
		setup: api(devicesCategory), examples: []string{"orchard devices category <udid> kiosk"}},
}

var commandsCommands = []*command{
	{name: "list", summary: "every device's commands, newest first, filtered", setup: api(commandsList),
		help: `One entry per command and target device, with its state, who sent it (an admin, an admin's
token "name/token:<id>", bootstrap, or empty for Orchard's own) and the latest error. --sender with an
admin's name also finds what their tokens sent. One page examines at most 10,000 entries of the log, so
a rare filter may print a short page and a cursor: --all follows it to the end.`,
		examples: []string{"orchard commands list", "orchard commands list --type DeviceLock --status error",
			"orchard commands list --sender bootstrap --since 2026-01-01T00:00:00Z --all -o csv"}},
	{name: "send", summary: "queue a command for one or more devices", setup: api(commandsSend),
		help: `Give --type with --set Key=Value flags (typed by Apple's schema) and/or --payload JSON,
or --plist with a full command plist. The answer starts with a summary (queued N, refused M by
reason); the exit code is 4 when any target was refused.`,
		examples: []string{
			`orchard commands send --udid <udid> --type DeviceLock --set Message="Call IT" --set PIN=123456`,
			`orchard commands send --udid <udid> --type DeviceInformation --set Queries='["UDID","OSVersion"]'`,
		}},
	{name: "show", summary: "show a command's status and results per target", args: []string{"<command-uuid>"},
		setup: api(noFlags("GET", "/v1/commands/%s")), examples: []string{"orchard commands show <command-uuid>"}},
	{name: "cancel", summary: "remove a command from every queue it still waits in", args: []string{"<command-uuid>"},
		setup: api(noFlags("DELETE", "/v1/commands/%s")), examples: []string{"orchard commands cancel <command-uuid>"}},
}

var pushCertCommands = []*command{
	{name: "csr", summary: "create a key (kept in the data dir) and a CSR for the push certificate vendor", local: true, setup: pushCSR,
		examples: []string{"orchard push-cert csr --email it@example.com -o push.csr"}},
	{name: "sign-request", summary: "sign a push CSR with your own MDM vendor certificate, for Apple's Push Certificates Portal", local: true, setup: pushSignRequest,
		help: `For an organisation with an MDM vendor signing certificate (Apple Developer Enterprise Program).
--vendor-cert holds the vendor certificate, then Apple's WWDR intermediate and Apple's root (PEM,
in that order; --chain adds more files). The output is the file to upload at identity.apple.com.`,
		examples: []string{"orchard push-cert sign-request --csr push.csr --vendor-cert mdm-vendor-chain.pem --vendor-key mdm-vendor.key -o push-request.b64"}},
	{name: "upload", summary: "upload the MDM push certificate (--cert file, or --p12 file --password)", setup: api(pushCertUpload),
		examples: []string{"orchard push-cert upload --cert MDM_Certificate.pem --apple-id it@example.com"}},
	{name: "show", summary: "show the push certificate: topic, expiry, status", setup: api(noFlags("GET", "/v1/push-certificate")),
		examples: []string{"orchard push-cert show"}},
}

var depCommands = []*command{
	{name: "public-key", summary: "print the certificate to upload to Apple Business Manager", setup: api(depPublicKey),
		examples: []string{"orchard dep public-key > orchard-dep.pem"}},
	{name: "tokens", summary: "list ABM/ASM server tokens", setup: api(depTokens), examples: []string{"orchard dep tokens"}},
	{name: "sync", summary: "sync a token's devices now (at most every 15 minutes)", args: []string{"<token-id>"},
		setup: api(noFlags("POST", "/v1/dep/tokens/%s/sync")), examples: []string{"orchard dep sync <token-id>"}},
	{name: "devices", summary: "list devices assigned to Orchard in ABM/ASM", setup: api(depDevices),
		examples: []string{"orchard dep devices --status ready", "orchard dep devices --all -o csv"}},
}

func devicesList(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "devices")
	user := fs.String("user", "", "only devices whose primary user this is")
	group := fs.String("group", "", "only devices whose primary user is in this group")
	category := fs.String("category", "", "only devices in this category")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		p.query(q, fs)
		if *user != "" {
			q.Set("user", *user)
		}
		if *group != "" {
			q.Set("group", *group)
		}
		if *category != "" {
			q.Set("category", *category)
		}
		return call{method: "GET", path: "/v1/devices?" + q.Encode(), list: &listView{"devices", deviceColumns}, all: p.all}, nil
	}
}

var inventoryColumns = []column{
	{"ID", "device_id"}, {"SERIAL", "serial_number"}, {"NAME", "device_name"}, {"PLATFORM", "platform"}, {"OS", "os_version"},
}

func devicesSearch(fs *flag.FlagSet) builder {
	var p pageFlags
	p.register(fs, "devices")
	platform := fs.String("platform", "", "only devices of this platform (iOS, iPadOS, macOS, tvOS, visionOS, watchOS)")
	return func(_ *client, args []string) (call, error) {
		q := url.Values{"q": {args[0]}}
		p.query(q, fs)
		if *platform != "" {
			q.Set("platform", *platform)
		}
		return call{method: "GET", path: "/v1/inventory?" + q.Encode(), list: &listView{"devices", inventoryColumns}, all: p.all}, nil
	}
}

func devicesShow(fs *flag.FlagSet) builder {
	reveal := fs.String("reveal", "", "show these secrets too: push_magic, push_token, unlock_token (comma-separated)")
	return func(_ *client, args []string) (call, error) {
		p := "/v1/devices/" + url.PathEscape(args[0])
		if *reveal != "" {
			p += "?reveal=" + url.QueryEscape(*reveal)
		}
		return call{method: "GET", path: p}, nil
	}
}

func pushSetup(fs *flag.FlagSet) builder {
	var udids listFlags
	fs.Var(&udids, "udid", "`udid`: device UDID or enrollment ID to wake (repeat for many)")
	user := fs.String("user", "", "wake this user channel on each device")
	return func(*client, []string) (call, error) {
		return call{method: "POST", path: "/v1/push", body: map[string]any{"targets": []string(udids), "user_id": *user}, bulk: true}, nil
	}
}

func enrollProfile(fs *flag.FlagSet) builder {
	output := fs.String("o", "orchard-enroll.mobileconfig", "file to write the signed enrollment profile to")
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: "/v1/enrollment/profile", save: func(b []byte, w io.Writer) error {
			if err := os.WriteFile(*output, b, 0o600); err != nil {
				return err
			}
			_, err := fmt.Fprintf(w, "wrote %s (its SCEP challenge is single-use and expires in 15 minutes)\n", *output)
			return err
		}}, nil
	}
}

func depPublicKey(*flag.FlagSet) builder {
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: "/v1/dep/public-key", save: func(b []byte, w io.Writer) error {
			_, err := w.Write(b)
			return err
		}}, nil
	}
}

func depTokens(*flag.FlagSet) builder {
	cols := []column{{"ID", "id"}, {"NAME", "name"}, {"SERVER", "server_name"}, {"ORG", "org_name"}, {"STATUS", "status"},
		{"EXPIRES", "access_token_expiry"}, {"LAST SYNC", "last_sync"}, {"WARNING", "warning"}}
	return func(*client, []string) (call, error) {
		return call{method: "GET", path: "/v1/dep/tokens", list: &listView{"tokens", cols}}, nil
	}
}

func depDevices(fs *flag.FlagSet) builder {
	token := fs.String("token", "", "only devices of this token")
	status := fs.String("status", "", "ready, missing_profile, enrolled or removed")
	serial := fs.String("serial", "", "one serial number")
	var p pageFlags
	p.register(fs, "devices")
	cols := []column{{"SERIAL", "serial_number"}, {"MODEL", "model"}, {"OS", "os"}, {"STATUS", "status"},
		{"TOKEN", "token_id"}, {"PROFILE", "profile_uuid"}, {"ASSIGNED", "device_assigned_date"}}
	return func(*client, []string) (call, error) {
		q := url.Values{}
		for k, v := range map[string]string{"token": *token, "status": *status, "serial": *serial} {
			if v != "" {
				q.Set(k, v)
			}
		}
		p.query(q, fs)
		return call{method: "GET", path: "/v1/dep/devices?" + q.Encode(), list: &listView{"devices", cols}, all: p.all}, nil
	}
}

func versionSetup(_ *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(context.Context, []string) error {
		in := version.Get()
		switch e.output {
		case "json":
			b, err := json.Marshal(in)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", b)
		case "csv":
			b, _ := json.Marshal(in)
			o, err := decodeOrdered(b)
			if err != nil {
				return err
			}
			return writeObjectCSV(e.stdout, o.(*object))
		default:
			fmt.Fprintln(e.stdout, in.String())
		}
		return nil
	}
}

func helpSetup(_ *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		node, path := e.root, []string{e.root.name}
		for _, a := range args {
			sub := node.sub(a)
			if sub == nil {
				return usagef("orchard help", "unknown command %q for %q", a, strings.Join(path, " "))
			}
			node, path = sub, append(path, a)
		}
		e.printHelp(e.stdout, node, path)
		return nil
	}
}

var commandLogColumns = []column{{"QUEUED", "created_at"}, {"COMMAND", "request_type"}, {"STATUS", "status"},
	{"DEVICE", "channel_id"}, {"SENDER", "sender"}, {"ANSWERED", "answered_at"}, {"UUID", "uuid"}}

// commandsList reads GET /v1/commands: its filters, and its cursor (before).
func commandsList(fs *flag.FlagSet) builder {
	requestType := fs.String("type", "", "RequestType, exactly (DeviceLock)")
	status := fs.String("status", "", "Queued, NotNow, Acknowledged, Error, CommandFormatError, Canceled or Superseded (any case)")
	sender := fs.String("sender", "", "bootstrap, an admin's username (with their tokens) or username/token:<id>")
	since := fs.String("since", "", "queued at or after this RFC 3339 time, or this long ago (24h)")
	until := fs.String("until", "", "queued before this RFC 3339 time, or this long ago")
	limit := fs.Int("limit", 100, "entries per page (at most 1000)")
	before := fs.String("before", "", "start below this cursor (the answer's \"next\")")
	all := fs.Bool("all", false, "follow the cursor through every page")
	return func(*client, []string) (call, error) {
		q := url.Values{}
		for k, v := range map[string]string{"request_type": *requestType, "status": *status, "sender": *sender,
			"since": *since, "until": *until, "before": *before} {
			if v == "" {
				continue
			}
			if k == "since" || k == "until" {
				if err := checkTimeFlag(k, v); err != nil {
					return call{}, err
				}
			}
			q.Set(k, v)
		}
		n := *limit
		if *all && !isSet(fs, "limit") {
			n = 1000 // fewer round trips; the server's maximum
		}
		q.Set("limit", fmt.Sprint(n))
		return call{method: "GET", path: "/v1/commands?" + q.Encode(), list: &listView{"commands", commandLogColumns},
			all: *all, cursor: "before"}, nil
	}
}

// checkTimeFlag refuses a --since or --until the API would refuse: it
// takes an RFC 3339 time or a duration meaning that long ago.
func checkTimeFlag(name, v string) error {
	_, err := time.Parse(time.RFC3339, v)
	if d, derr := time.ParseDuration(v); err != nil && (derr != nil || d <= 0) {
		return fmt.Errorf("--%s: want an RFC 3339 time like 2026-01-01T00:00:00Z or a duration like 24h", name)
	}
	return nil
}
