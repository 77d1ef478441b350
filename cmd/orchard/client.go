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

	"github.com/orchardmdm/orchard/mdm/commands"
)

// client talks to the admin API.
type client struct {
	data string
	base string
	key  string
	http *http.Client
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
		return &client{
			data: *data,
			base: strings.TrimRight(*server, "/"),
			key:  key,
			http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf}},
		}, nil
	}
}

func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s (%d)", method, path, e.Error, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// raw fetches a non-JSON resource.
func (c *client) raw(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// kvFlags collects repeated --set Key=Value flags.
type kvFlags []string

func (k *kvFlags) String() string     { return strings.Join(*k, ",") }
func (k *kvFlags) Set(s string) error { *k = append(*k, s); return nil }

// listFlags collects repeated flags.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ",") }
func (l *listFlags) Set(s string) error { *l = append(*l, s); return nil }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runClient(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	mk := newClientFlags(fs)
	switch cmd {
	case "devices list":
		limit := fs.Int("limit", 100, "devices per page")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.do(ctx, "GET", fmt.Sprintf("/v1/devices?limit=%d", *limit), nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "devices show", "commands show", "commands cancel":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("%s takes one argument", cmd)
		}
		c, err := mk()
		if err != nil {
			return err
		}
		method, path := "GET", "/v1/devices/"
		switch cmd {
		case "commands show":
			path = "/v1/commands/"
		case "commands cancel":
			method, path = "DELETE", "/v1/commands/"
		}
		var out json.RawMessage
		if err := c.do(ctx, method, path+url.PathEscape(fs.Arg(0)), nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "dep tokens", "dep public-key":
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		if cmd == "dep public-key" {
			pemBytes, err := c.raw(ctx, "GET", "/v1/dep/public-key")
			if err != nil {
				return err
			}
			_, err = stdout.Write(pemBytes)
			return err
		}
		var out json.RawMessage
		if err := c.do(ctx, "GET", "/v1/dep/tokens", nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "dep sync":
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("dep sync takes the token ID")
		}
		c, err := mk()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.do(ctx, "POST", "/v1/dep/tokens/"+url.PathEscape(fs.Arg(0))+"/sync", nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "dep devices":
		token := fs.String("token", "", "only devices of this token")
		status := fs.String("status", "", "ready, missing_profile, enrolled or removed")
		serial := fs.String("serial", "", "one serial number")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"token": *token, "status": *status, "serial": *serial} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var out json.RawMessage
		if err := c.do(ctx, "GET", "/v1/dep/devices?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "enroll profile":
		output := fs.String("o", "orchard-enroll.mobileconfig", "file to write the signed enrollment profile to")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		body, err := c.raw(ctx, "GET", "/v1/enrollment/profile")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*output, body, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (its SCEP challenge is single-use and expires in 15 minutes)\n", *output)
		return nil
	case "push-cert upload":
		p12 := fs.String("p12", "", "PKCS#12 file of the push certificate")
		password := fs.String("password", "", "password of the PKCS#12 file")
		certFile := fs.String("cert", "", "PEM push certificate (as downloaded from the Apple Push Certificates Portal)")
		keyFile := fs.String("key", "", "PEM private key (default: the key `orchard push-cert csr` kept in the data dir)")
		appleID := fs.String("apple-id", "", "the Apple ID that owns the certificate, noted for renewals")
		force := fs.Bool("force", false, "replace a certificate with a different topic (every enrolled device must re-enroll)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		req := map[string]any{"apple_id": *appleID, "force": *force}
		switch {
		case *p12 != "":
			b, err := os.ReadFile(*p12)
			if err != nil {
				return err
			}
			req["p12"], req["password"] = base64.StdEncoding.EncodeToString(b), *password
		case *certFile != "":
			certPEM, err := os.ReadFile(*certFile)
			if err != nil {
				return err
			}
			kf := *keyFile
			if kf == "" {
				kf = filepath.Join(c.data, pushCSRKey)
			}
			keyPEM, err := os.ReadFile(kf)
			if err != nil {
				return fmt.Errorf("private key: %w", err)
			}
			req["cert_pem"], req["key_pem"] = string(certPEM), string(keyPEM)
		default:
			return fmt.Errorf("give --p12 (with --password) or --cert")
		}
		var out json.RawMessage
		if err := c.do(ctx, "PUT", "/v1/push-certificate", req, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "push-cert show":
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.do(ctx, "GET", "/v1/push-certificate", nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "push":
		var udids listFlags
		fs.Var(&udids, "udid", "device UDID or enrollment ID to wake (repeat for many)")
		user := fs.String("user", "", "wake this user channel on each device")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.do(ctx, "POST", "/v1/push", map[string]any{"targets": []string(udids), "user_id": *user}, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	case "commands send":
		var udids listFlags
		var sets kvFlags
		fs.Var(&udids, "udid", "target device UDID or enrollment ID (repeat for many)")
		user := fs.String("user", "", "target this user channel on each device")
		typ := fs.String("type", "", "request type, e.g. DeviceInformation")
		payload := fs.String("payload", "", "JSON object of the command's keys")
		plistFile := fs.String("plist", "", "file holding a full command plist ({CommandUUID, Command})")
		fs.Var(&sets, "set", "Key=Value for the command (repeat), typed by Apple's schema; arrays and dictionaries as JSON")
		if err := fs.Parse(args); err != nil {
			return err
		}
		c, err := mk()
		if err != nil {
			return err
		}
		req := map[string]any{"targets": []string(udids)}
		if *user != "" {
			req["user_id"] = *user
		}
		switch {
		case *plistFile != "":
			b, err := os.ReadFile(*plistFile)
			if err != nil {
				return err
			}
			req["plist"] = base64.StdEncoding.EncodeToString(b)
		case *typ != "":
			p := map[string]any{}
			if *payload != "" {
				if err := json.Unmarshal([]byte(*payload), &p); err != nil {
					return fmt.Errorf("--payload: %w", err)
				}
			}
			typed, err := commands.ParseSet(*typ, sets)
			if err != nil {
				return fmt.Errorf("--set: %w", err)
			}
			for k, v := range typed {
				if k != "RequestType" {
					p[k] = v
				}
			}
			req["request_type"], req["payload"] = *typ, p
		default:
			return fmt.Errorf("give --type or --plist")
		}
		var out json.RawMessage
		if err := c.do(ctx, "POST", "/v1/commands", req, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	return fmt.Errorf("unknown command %q", cmd)
}
