package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/mdm/commands"
)

// client talks to the admin API.
type client struct {
	data string
	api  *apiclient.Client
}

// newClient reads the key (flag, env or <data>/api-key) and trusts the
// server's self-signed certificate from the data dir when it is there.
func (e *env) newClient() (*client, error) {
	key := e.apiKey
	if key == "" {
		b, err := os.ReadFile(filepath.Join(e.data, "api-key"))
		if err != nil {
			return nil, fmt.Errorf("no --api-key and cannot read it from the data dir: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	tlsConf := &tls.Config{}
	if pemBytes, err := os.ReadFile(filepath.Join(e.data, "tls.pem")); err == nil {
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pemBytes)
		tlsConf.RootCAs = pool
	}
	return &client{data: e.data, api: &apiclient.Client{
		BaseURL: strings.TrimRight(e.server, "/"),
		Key:     key,
		HTTP:    &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}},
	}}, nil
}

// kvFlags collects repeated --set Key=Value flags.
type kvFlags []string

func (k *kvFlags) String() string     { return strings.Join(*k, ",") }
func (k *kvFlags) Set(s string) error { *k = append(*k, s); return nil }

// listFlags collects repeated flags.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ",") }
func (l *listFlags) Set(s string) error { *l = append(*l, s); return nil }

// call is what one CLI command asks of the API and how its answer shows.
type call struct {
	method, path string
	body         any
	// csv, when set, is sent as the text/csv body instead of body.
	csv []byte
	// save, when set, receives a non-JSON answer instead of printing it.
	save func(body []byte, stdout io.Writer) error
	// list names the array of a list answer and its table columns (none:
	// every scalar field).
	list *listView
	// all follows the answer's "next" cursor (as ?after=) to the end.
	all bool
	// cursor, when set, names the query parameter that carries "next"
	// instead of after; such lists may answer a page with no items and
	// a next (the server bounds what one page examines).
	cursor string
	// bulk answers carry "targets" [{target, queued, error}]: the summary
	// line comes first and any refusal exits 4.
	bulk bool
}

func (c *call) cursorName() string {
	if c.cursor != "" {
		return c.cursor
	}
	return "after"
}

type listView struct {
	key  string
	cols []column
}

// builder builds a call once flags are parsed.
type builder func(c *client, args []string) (call, error)

// api turns a call builder into a leaf's setup: flags, the call, the
// answer in the chosen format.
func api(setup func(fs *flag.FlagSet) builder) func(*flag.FlagSet, *env) func(context.Context, []string) error {
	return func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
		build := setup(fs)
		return func(ctx context.Context, args []string) error {
			c, err := e.newClient()
			if err != nil {
				return err
			}
			req, err := build(c, args)
			if err != nil {
				return err
			}
			return e.do(ctx, c, req)
		}
	}
}

func get(path string, args ...string) builder {
	return func(_ *client, a []string) (call, error) {
		p := path
		for _, x := range append(args, a...) {
			p = strings.Replace(p, "%s", url.PathEscape(x), 1)
		}
		return call{method: "GET", path: p}, nil
	}
}

func noFlags(method, path string) func(*flag.FlagSet) builder {
	return func(*flag.FlagSet) builder {
		return func(c *client, args []string) (call, error) {
			req, err := get(path)(c, args)
			req.method = method
			return req, err
		}
	}
}

// pageFlags are the paging flags of a list command.
type pageFlags struct {
	limit int
	after string
	all   bool
}

func (p *pageFlags) register(fs *flag.FlagSet, what string) {
	fs.IntVar(&p.limit, "limit", 100, what+" per page (at most 1000)")
	fs.StringVar(&p.after, "after", "", "start after this cursor (the answer's \"next\")")
	fs.BoolVar(&p.all, "all", false, "follow the cursor through every page")
}

func (p *pageFlags) query(q url.Values, fs *flag.FlagSet) {
	limit := p.limit
	if p.all && !isSet(fs, "limit") {
		limit = 1000 // fewer round trips; the server's maximum
	}
	q.Set("limit", fmt.Sprint(limit))
	if p.after != "" {
		q.Set("after", p.after)
	}
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// do sends the call and prints its answer.
func (e *env) do(ctx context.Context, c *client, req call) error {
	if req.all {
		return e.fetchAll(ctx, c, req)
	}
	var body []byte
	var err error
	if req.csv != nil {
		body, err = c.api.CallRaw(ctx, req.method, req.path, "text/csv", req.csv)
	} else {
		body, err = c.api.Call(ctx, req.method, req.path, req.body)
	}
	if err != nil {
		// A bulk command every target refused still lists why.
		var se *apiclient.StatusError
		if req.bulk && errors.As(err, &se) && bytes.Contains(se.Body, []byte(`"targets"`)) && e.output != "json" {
			if v, derr := decodeOrdered(se.Body); derr == nil {
				if o, ok := v.(*object); ok {
					if ts, ok := o.vals["targets"].([]any); ok && len(ts) > 0 {
						e.printBulk(o, ts)
					}
				}
			}
		}
		return err
	}
	if req.save != nil {
		return req.save(body, e.stdout)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // 204: done, nothing to show
	}
	return e.render(body, req)
}

// render prints an answer: JSON as the API sent it, or a table, key: value
// lines or CSV.
func (e *env) render(body []byte, req call) error {
	v, err := decodeOrdered(body)
	if err != nil {
		return err
	}
	o, _ := v.(*object)
	var refused int
	if req.bulk && o != nil {
		ts, _ := o.vals["targets"].([]any)
		_, refused = bulkSummary(ts)
	}
	switch {
	case e.output == "json":
		e.stdout.Write(bytes.TrimRight(body, "\n"))
		fmt.Fprintln(e.stdout)
	case o == nil:
		fmt.Fprintln(e.stdout, cell(v))
	case req.list != nil:
		items, _ := o.vals[req.list.key].([]any)
		cols := req.list.cols
		if cols == nil {
			cols = columnsOf(items)
		}
		if e.output == "csv" {
			err = writeCSV(e.stdout, cols, items)
		} else {
			err = writeTable(e.stdout, cols, items)
		}
		if next := cell(o.vals["next"]); next != "" && err == nil {
			fmt.Fprintf(e.stderr, "more %s: add --all, or --%s %s\n", req.list.key, req.cursorName(), next)
		}
	case req.bulk:
		ts, _ := o.vals["targets"].([]any)
		if e.output == "csv" {
			err = writeCSV(e.stdout, columnsOf(ts), ts)
		} else {
			e.printBulk(o, ts)
		}
	case e.output == "csv":
		err = writeObjectCSV(e.stdout, o)
	default:
		err = writeObject(e.stdout, o)
	}
	if err == nil && refused > 0 {
		err = fmt.Errorf("%d target(s): %w", refused, errRefusedTargets)
	}
	return err
}

// printBulk writes a bulk answer's summary line, its other fields, then the
// per-target table.
func (e *env) printBulk(o *object, targets []any) {
	line, _ := bulkSummary(targets)
	fmt.Fprintln(e.stdout, line)
	rest := &object{vals: o.vals}
	for _, k := range o.keys {
		if k != "targets" && k != "error" {
			rest.keys = append(rest.keys, k)
		}
	}
	writeObject(e.stdout, rest)
	fmt.Fprintln(e.stdout)
	writeTable(e.stdout, columnsOf(targets), targets)
}

// fetchAll follows the "next" cursor and prints every item as one answer;
// progress goes to stderr (one redrawn line on a terminal, plain lines
// otherwise), so stdout stays the data.
func (e *env) fetchAll(ctx context.Context, c *client, req call) error {
	u, err := url.Parse(req.path)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	for page := 1; ; page++ {
		body, err := c.api.Call(ctx, "GET", u.String(), nil)
		if err != nil {
			return err
		}
		var p map[string]json.RawMessage
		if err := json.Unmarshal(body, &p); err != nil {
			return fmt.Errorf("page %d: server answered something other than a JSON object: %w", page, err)
		}
		var got []json.RawMessage
		if err := json.Unmarshal(p[req.list.key], &got); err != nil {
			return fmt.Errorf("page %d: %q is not a list: %w", page, req.list.key, err)
		}
		items = append(items, got...)
		var next string
		if raw, ok := p["next"]; ok {
			json.Unmarshal(raw, &next)
		}
		if e.tty {
			fmt.Fprintf(e.stderr, "\rfetching %s: %d (page %d)", req.list.key, len(items), page)
		} else {
			fmt.Fprintf(e.stderr, "page %d: %d %s, %d so far\n", page, len(got), req.list.key, len(items))
		}
		if next == "" || len(got) == 0 && req.cursor == "" {
			break
		}
		// A cursor must move on; a broken server repeating it would
		// otherwise page forever.
		if next == u.Query().Get(req.cursorName()) {
			return fmt.Errorf("page %d: the server answered the same cursor %q again", page, next)
		}
		q := u.Query()
		q.Set(req.cursorName(), next)
		u.RawQuery = q.Encode()
	}
	if e.tty {
		fmt.Fprintln(e.stderr)
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	all, err := json.Marshal(map[string]any{req.list.key: items, "next": ""})
	if err != nil {
		return err
	}
	return e.render(all, req)
}

func commandsSend(fs *flag.FlagSet) builder {
	var udids listFlags
	var sets kvFlags
	fs.Var(&udids, "udid", "target `udid`: device UDID or enrollment ID (repeat for many)")
	user := fs.String("user", "", "target this user channel on each device")
	typ := fs.String("type", "", "request type, e.g. DeviceInformation")
	payload := fs.String("payload", "", "JSON object of the command's keys")
	plistFile := fs.String("plist", "", "file holding a full command plist ({CommandUUID, Command})")
	allowUnknown := fs.Bool("allow-unknown", false, "with --plist: accept keys and request types newer than the bundled schema (each a warning)")
	fs.Var(&sets, "set", "`Key=Value` for the command (repeat), typed by Apple's schema; arrays and dictionaries as JSON")
	return func(*client, []string) (call, error) {
		req := map[string]any{"targets": []string(udids)}
		if *user != "" {
			req["user_id"] = *user
		}
		switch {
		case *plistFile != "":
			b, err := os.ReadFile(*plistFile)
			if err != nil {
				return call{}, err
			}
			req["plist"] = base64.StdEncoding.EncodeToString(b)
			if *allowUnknown {
				req["allow_unknown"] = true
			}
		case *typ != "":
			p := map[string]any{}
			if *payload != "" {
				if err := json.Unmarshal([]byte(*payload), &p); err != nil {
					return call{}, fmt.Errorf("--payload: %w", err)
				}
			}
			typed, err := commands.ParseSet(*typ, sets)
			if err != nil {
				return call{}, fmt.Errorf("--set: %w", err)
			}
			for k, v := range typed {
				if k != "RequestType" {
					p[k] = v
				}
			}
			req["request_type"], req["payload"] = *typ, p
		default:
			return call{}, fmt.Errorf("give --type or --plist")
		}
		return call{method: "POST", path: "/v1/commands", body: req, bulk: true}, nil
	}
}

func pushCertUpload(fs *flag.FlagSet) builder {
	p12 := fs.String("p12", "", "PKCS#12 file of the push certificate")
	password := fs.String("password", "", "password of the PKCS#12 file")
	certFile := fs.String("cert", "", "PEM push certificate (as downloaded from the Apple Push Certificates Portal)")
	keyFile := fs.String("key", "", "PEM private key (default: the key `orchard push-cert csr` kept in the data dir)")
	appleID := fs.String("apple-id", "", "the Apple ID that owns the certificate, noted for renewals")
	force := fs.Bool("force", false, "replace a certificate with a different topic (every enrolled device must re-enroll)")
	return func(c *client, _ []string) (call, error) {
		req := map[string]any{"apple_id": *appleID, "force": *force}
		switch {
		case *p12 != "":
			b, err := os.ReadFile(*p12)
			if err != nil {
				return call{}, err
			}
			req["p12"], req["password"] = base64.StdEncoding.EncodeToString(b), *password
		case *certFile != "":
			certPEM, err := os.ReadFile(*certFile)
			if err != nil {
				return call{}, err
			}
			kf := *keyFile
			if kf == "" {
				kf = filepath.Join(c.data, pushCSRKey)
			}
			keyPEM, err := os.ReadFile(kf)
			if err != nil {
				return call{}, fmt.Errorf("private key: %w", err)
			}
			req["cert_pem"], req["key_pem"] = string(certPEM), string(keyPEM)
		default:
			return call{}, fmt.Errorf("give --p12 (with --password) or --cert")
		}
		return call{method: "PUT", path: "/v1/push-certificate", body: req}, nil
	}
}

// deviceAction runs a remote action: orchard devices action <id> lock --set message="Call IT".
func deviceAction(fs *flag.FlagSet) builder {
	var sets kvFlags
	fs.Var(&sets, "set", "`field=value` for the action (repeat); true/false are booleans, anything else a string")
	confirm := fs.Bool("confirm", false, "confirm a destructive action (erase, retire)")
	return func(_ *client, args []string) (call, error) {
		body := map[string]any{}
		for _, kv := range sets {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return call{}, fmt.Errorf("--set %q: want field=value", kv)
			}
			switch v {
			case "true", "false":
				body[k] = v == "true"
			default:
				body[k] = v
			}
		}
		if *confirm {
			body["confirm"] = true
		}
		path := "/v1/devices/" + url.PathEscape(args[0]) + "/actions/" + url.PathEscape(args[1])
		return call{method: "POST", path: path, body: body}, nil
	}
}
