package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
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

func newClientFlags(fs *flag.FlagSet) func() (*client, error) {
	data := envFlag(fs, "data", "orchard-data", "data directory to read the API key and TLS certificate from")
	server := envFlag(fs, "server", "https://localhost:8443", "Orchard server URL")
	apiKey := envFlag(fs, "api-key", "", "admin API key (default: <data>/api-key)")
	return func() (*client, error) {
		key := *apiKey
		if key == "" {
			b, err := os.ReadFile(filepath.Join(*data, "api-key"))
			if err != nil {
				return nil, fmt.Errorf("no --api-key and cannot read it from the data dir: %w", err)
			}
			key = strings.TrimSpace(string(b))
		}
		tlsConf := &tls.Config{}
		// Trust the server's self-signed certificate from the data dir, if any.
		if pemBytes, err := os.ReadFile(filepath.Join(*data, "tls.pem")); err == nil {
			pool, _ := x509.SystemCertPool()
			if pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(pemBytes)
			tlsConf.RootCAs = pool
		}
		return &client{data: *data, api: &apiclient.Client{
			BaseURL: strings.TrimRight(*server, "/"),
			Key:     key,
			HTTP:    &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}},
		}}, nil
	}
}

// kvFlags collects repeated --set Key=Value flags.
type kvFlags []string

func (k *kvFlags) String() string     { return strings.Join(*k, ",") }
func (k *kvFlags) Set(s string) error { *k = append(*k, s); return nil }

// listFlags collects repeated flags.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ",") }
func (l *listFlags) Set(s string) error { *l = append(*l, s); return nil }

// call is what one CLI command asks of the API.
type call struct {
	method, path string
	body         any
	// save, when set, receives a non-JSON answer instead of printing it.
	save func(body []byte, stdout io.Writer) error
}

// clientCommand is one API-calling CLI command: setup registers its flags
// and returns the function that builds the call once flags are parsed.
type clientCommand struct {
	args  int // positional arguments required
	setup func(fs *flag.FlagSet) func(c *client, args []string) (call, error)
}

func noFlags(method, path string) func(fs *flag.FlagSet) func(*client, []string) (call, error) {
	return func(*flag.FlagSet) func(*client, []string) (call, error) {
		return func(_ *client, args []string) (call, error) {
			p := path
			for _, a := range args {
				p = strings.Replace(p, "%s", url.PathEscape(a), 1)
			}
			return call{method: method, path: p}, nil
		}
	}
}

var clientCommands = map[string]clientCommand{
	"devices list": {setup: func(fs *flag.FlagSet) func(*client, []string) (call, error) {
		limit := fs.Int("limit", 100, "devices per page")
		return func(*client, []string) (call, error) {
			return call{method: "GET", path: fmt.Sprintf("/v1/devices?limit=%d", *limit)}, nil
		}
	}},
	"devices show":      {args: 1, setup: noFlags("GET", "/v1/devices/%s")},
	"commands show":     {args: 1, setup: noFlags("GET", "/v1/commands/%s")},
	"commands cancel":   {args: 1, setup: noFlags("DELETE", "/v1/commands/%s")},
	"commands send":     {setup: commandsSend},
	"devices inventory": {args: 1, setup: noFlags("GET", "/v1/devices/%s/inventory")},
	"devices apps":      {args: 1, setup: noFlags("GET", "/v1/devices/%s/apps")},
	"devices profiles":  {args: 1, setup: noFlags("GET", "/v1/devices/%s/profiles")},
	"devices action":    {args: 2, setup: deviceAction},
	"devices release":   {args: 1, setup: noFlags("POST", "/v1/devices/%s/release")},
	"dep tokens":        {setup: noFlags("GET", "/v1/dep/tokens")},
	"dep sync":          {args: 1, setup: noFlags("POST", "/v1/dep/tokens/%s/sync")},
	"push-cert show":    {setup: noFlags("GET", "/v1/push-certificate")},
	"push-cert upload":  {setup: pushCertUpload},
	"dep public-key": {setup: func(*flag.FlagSet) func(*client, []string) (call, error) {
		return func(*client, []string) (call, error) {
			return call{method: "GET", path: "/v1/dep/public-key", save: func(b []byte, w io.Writer) error {
				_, err := w.Write(b)
				return err
			}}, nil
		}
	}},
	"dep devices": {setup: func(fs *flag.FlagSet) func(*client, []string) (call, error) {
		token := fs.String("token", "", "only devices of this token")
		status := fs.String("status", "", "ready, missing_profile, enrolled or removed")
		serial := fs.String("serial", "", "one serial number")
		return func(*client, []string) (call, error) {
			q := url.Values{}
			for k, v := range map[string]string{"token": *token, "status": *status, "serial": *serial} {
				if v != "" {
					q.Set(k, v)
				}
			}
			return call{method: "GET", path: "/v1/dep/devices?" + q.Encode()}, nil
		}
	}},
	"enroll profile": {setup: func(fs *flag.FlagSet) func(*client, []string) (call, error) {
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
	}},
	"push": {setup: func(fs *flag.FlagSet) func(*client, []string) (call, error) {
		var udids listFlags
		fs.Var(&udids, "udid", "device UDID or enrollment ID to wake (repeat for many)")
		user := fs.String("user", "", "wake this user channel on each device")
		return func(*client, []string) (call, error) {
			return call{method: "POST", path: "/v1/push", body: map[string]any{"targets": []string(udids), "user_id": *user}}, nil
		}
	}},
}

func runClient(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	cmd, ok := clientCommands[name]
	if !ok {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	mk := newClientFlags(fs)
	build := cmd.setup(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != cmd.args {
		return fmt.Errorf("%s takes %d argument(s), got %d", name, cmd.args, fs.NArg())
	}
	c, err := mk()
	if err != nil {
		return err
	}
	req, err := build(c, fs.Args())
	if err != nil {
		return err
	}
	body, err := c.api.Call(ctx, req.method, req.path, req.body)
	if err != nil {
		return err
	}
	if req.save != nil {
		return req.save(body, stdout)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return fmt.Errorf("server answered something other than JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err = stdout.Write(out.Bytes())
	return err
}

func commandsSend(fs *flag.FlagSet) func(*client, []string) (call, error) {
	var udids listFlags
	var sets kvFlags
	fs.Var(&udids, "udid", "target device UDID or enrollment ID (repeat for many)")
	user := fs.String("user", "", "target this user channel on each device")
	typ := fs.String("type", "", "request type, e.g. DeviceInformation")
	payload := fs.String("payload", "", "JSON object of the command's keys")
	plistFile := fs.String("plist", "", "file holding a full command plist ({CommandUUID, Command})")
	fs.Var(&sets, "set", "Key=Value for the command (repeat), typed by Apple's schema; arrays and dictionaries as JSON")
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
		return call{method: "POST", path: "/v1/commands", body: req}, nil
	}
}

func pushCertUpload(fs *flag.FlagSet) func(*client, []string) (call, error) {
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
func deviceAction(fs *flag.FlagSet) func(*client, []string) (call, error) {
	var sets kvFlags
	fs.Var(&sets, "set", "field=value for the action (repeat); true/false are booleans, anything else a string")
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
