// Command orchard is the Orchard MDM server and its admin CLI.
//
// Every command is one entry of the tree in commands.go: a struct with its
// name, summary, arguments, examples and a setup function that registers
// its flags and returns what runs. Help at every level, flags anywhere on
// the line, the global flags (--data, --server, --api-key, -o), shell
// completion and the docs test all come from that tree, so adding a
// command is adding one entry to its parent's subs. A command that calls
// the API builds a call (method, path, body; list columns, paging, bulk
// summary) with api(...) and gets table, JSON and CSV output for free.
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 not found (404), 4 refused by the
// server (other 4xx, or some targets of a bulk command), 5 server error or
// unreachable.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/pki"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchard:", err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "run '%s --help' for usage\n", ue.path)
		}
	}
	os.Exit(exitCode(err))
}

// run executes one command line; stderr being a terminal turns on the
// redrawn progress line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr, root: rootCommand()}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			e.tty = true
		}
	}
	return e.execute(ctx, args)
}

// envName is a flag's environment twin: ORCHARD_<NAME>.
func envName(flagName string) string {
	return "ORCHARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envFlag registers a string flag whose default comes from ORCHARD_<NAME>.
func envFlag(fs *flag.FlagSet, name, def, help string) *string {
	p := new(string)
	envString(fs, p, name, def, help)
	return p
}

func envString(fs *flag.FlagSet, p *string, name, def, help string) {
	env := envName(name)
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	fs.StringVar(p, name, def, help+" (env "+env+")")
}

// envBool registers a boolean flag defaulting to ORCHARD_<NAME>; a value
// there that is not a boolean is reported through bad.
func envBool(fs *flag.FlagSet, p *bool, name, help string, bad *error) {
	env := envName(name)
	def := false
	if v, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil && *bad == nil {
			*bad = fmt.Errorf("%s: %w", env, err)
		}
		def = b
	}
	fs.BoolVar(p, name, def, help+" (env "+env+")")
}

// envInt registers an integer flag defaulting to ORCHARD_<NAME>; a value
// there that is not an integer is reported through bad.
func envInt(fs *flag.FlagSet, p *int, name string, def int, help string, bad *error) {
	env := envName(name)
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil && *bad == nil {
			*bad = fmt.Errorf("%s: %w", env, err)
		}
		def = n
	}
	fs.IntVar(p, name, def, help+" (env "+env+")")
}

// serveSetup registers serve's flags, each with its environment twin.
func serveSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	var cfg server.Config
	var badEnv error
	envString(fs, &cfg.DataDir, "data", "orchard-data", "data directory: database and keys")
	envString(fs, &cfg.Listen, "listen", ":8443", "HTTPS listen address")
	envString(fs, &cfg.Storage, "storage", "bolt", "storage backend: bolt (orchard.db in the data dir) or postgres")
	envString(fs, &cfg.StorageDSN, "storage-dsn", "", "PostgreSQL connection string for --storage postgres (e.g. postgres://orchard@db/orchard)")
	envString(fs, &cfg.PublicURL, "public-url", "", "base URL devices use (default https://<hostname>:<port>)")
	envString(fs, &cfg.TLSCert, "tls-cert", "", "PEM TLS certificate (default: self-signed, generated into the data dir)")
	envString(fs, &cfg.TLSKey, "tls-key", "", "PEM TLS private key")
	envBool(fs, &cfg.PlainHTTP, "plain-http", "serve plain HTTP behind a TLS-terminating proxy (devices still sign every message)", &badEnv)
	envBool(fs, &cfg.UserAuthentication, "user-auth", "admit user channels for macOS network accounts (UserAuthenticate)", &badEnv)
	envBool(fs, &cfg.InsecureMachineInfo, "insecure-machineinfo", "lab only: accept ADE and Apple Configurator MachineInfo not verified against Apple's root (warns at start and on every use)", &badEnv)
	envString(fs, &cfg.APNsURL, "apns-url", "", "APNs endpoint (default Apple's production; for proxies and tests)")
	envString(fs, &cfg.APNsCA, "apns-ca", "", "PEM file of extra CA certificates to trust for the APNs endpoint")
	envBool(fs, &cfg.APNsSandbox, "apns-sandbox", "push through Apple's development APNs endpoint", &badEnv)
	envString(fs, &cfg.MetricsListen, "metrics-listen", "", "serve /metrics on this address instead of the main listener (e.g. 127.0.0.1:9100)")
	envString(fs, &cfg.AdminListen, "admin-listen", "", "serve the admin API (/v1), the console (/console) and /metrics on this address instead of the main listener (e.g. 127.0.0.1:8444)")
	envString(fs, &cfg.DEPURL, "dep-url", "", "Apple device assignment service base URL (default Apple's; for tests and proxies)")
	envInt(fs, &cfg.RateLimit, "rate-limit", server.DefaultRateLimit, "per source address and minute: wrong SCEP challenges, unknown enrollment links and MachineInfo posts allowed; raise it behind a proxy, where every device shares one address; -1 turns the limits off", &badEnv)
	var renewDays int
	envInt(fs, &renewDays, "renew-before", 30, "days before a device's identity certificate expires that Orchard re-sends its enrollment profile to renew it (1..300)", &badEnv)
	envString(fs, &cfg.WebhookURL, "webhook-url", "", "also post mdm.* events to this URL (NanoMDM's -webhook-url; more endpoints: orchard webhooks create)")
	retryMax := envFlag(fs, "webhook-retry-max", "5m", "longest wait between retries of a failed webhook post")
	level := envFlag(fs, "log-level", "info", "log level: debug, info, warn, error")
	return func(ctx context.Context, _ []string) error {
		if badEnv != nil {
			return &usageError{path: "orchard serve", err: badEnv}
		}
		d, err := time.ParseDuration(*retryMax)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return &usageError{path: "orchard serve", err: fmt.Errorf("--webhook-retry-max: %q is not a duration between 0 and 24h", *retryMax)}
		}
		cfg.WebhookRetryMax = d
		if renewDays < 1 || renewDays > 300 {
			return &usageError{path: "orchard serve", err: fmt.Errorf("--renew-before: %d days is not between 1 and 300", renewDays)}
		}
		cfg.RenewBefore = time.Duration(renewDays) * 24 * time.Hour
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			return &usageError{path: "orchard serve", err: fmt.Errorf("--log-level: %w", err)}
		}
		cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		srv, err := server.New(cfg)
		if err != nil {
			return err
		}
		// SIGHUP re-reads <data>/api-key: the key rotates without a restart.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for range hup {
				if err := srv.ReloadAPIKey(); err != nil {
					cfg.Logger.Error("SIGHUP", "err", err)
				}
			}
		}()
		return srv.Run(ctx)
	}
}

// pushCSRKey is where `push-cert csr` keeps the key for the later upload.
const pushCSRKey = "push-csr.key"

// pushCSR makes the key and certificate signing request an admin takes to
// the push certificate vendor; the key stays in the data dir (mode 0600).
func pushCSR(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	cn := fs.String("cn", "Orchard MDM", "common name for the request")
	email := fs.String("email", "", "contact email for the request")
	out := fs.String("o", "push.csr", "file to write the PEM certificate signing request to")
	return func(context.Context, []string) error { return writePushCSR(e.data, *cn, *email, *out, e.stdout) }
}

func writePushCSR(data, cn, email, out string, stdout io.Writer) error {
	keyPath := filepath.Join(data, pushCSRKey)
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s exists: upload the signed certificate first, or move the old key away", keyPath)
	}
	keyPEM, csrPEM, err := apns.NewCSR(cn, email)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(out, csrPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; the private key is in %s (keep it: the upload needs it)\n", out, keyPath)
	return nil
}

// pushSignRequest signs a customer's push CSR with an MDM vendor
// certificate and writes the request Apple's portal accepts.
func pushSignRequest(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	csr := fs.String("csr", "push.csr", "the push CSR (PEM or DER), from orchard push-cert csr")
	vendorCert := fs.String("vendor-cert", "", "PEM file: the MDM vendor certificate, then its intermediate and Apple's root")
	vendorKey := fs.String("vendor-key", "", "PEM file: the vendor certificate's private key")
	var more listFlags
	fs.Var(&more, "chain", "`file`: more PEM certificates of the chain (repeat for many)")
	out := fs.String("o", "push-request.b64", "file to write the signed request to")
	return func(context.Context, []string) error {
		if *vendorCert == "" || *vendorKey == "" {
			return usagef("orchard push-cert sign-request", "--vendor-cert and --vendor-key are required")
		}
		csrBytes, err := os.ReadFile(*csr)
		if err != nil {
			return err
		}
		var chain []*x509.Certificate
		for _, f := range append([]string{*vendorCert}, more...) {
			certs, err := readCertsPEM(f)
			if err != nil {
				return err
			}
			chain = append(chain, certs...)
		}
		keyPEM, err := os.ReadFile(*vendorKey)
		if err != nil {
			return err
		}
		key, err := pki.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			return fmt.Errorf("%s: %w", *vendorKey, err)
		}
		signed, err := apns.SignPushCertRequest(csrBytes, chain, key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, signed, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s: upload it at https://identity.apple.com (Create a Certificate)\n", *out)
		return nil
	}
}

// readCertsPEM reads every certificate of a PEM file, in order.
func readCertsPEM(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
