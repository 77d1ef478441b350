// Command orchard is the Orchard MDM server and its admin CLI.
//
//	orchard serve                 run the server
//	orchard devices list|show     read devices
//	orchard commands send|show|cancel
package main

import (
	"context"
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

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/pki"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "orchard:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: orchard <command> [flags] [arguments]

commands:
  serve                       run the MDM server
  migrate --from bolt:PATH --to postgres:DSN [--overwrite]   copy the bbolt database into PostgreSQL
  devices list                list enrolled devices
  devices show <id>           show one device
  devices inventory <id>      the device's inventory (also: devices apps|profiles <id>)
  devices action [--set field=value] [--confirm] <id> <action>
                              sync, refresh, lock, erase, clear-passcode, restart, shutdown, rename,
                              lost-mode-enable|disable|location, retire
  devices release <udid>      let the device's next enrollment replace this one (7 days, once)
  commands send               queue a command (see: orchard commands send -h)
  commands show <uuid>        show a command's status and results
  commands cancel <uuid>      remove a queued command
  push-cert csr               create a key (kept in the data dir) and a CSR for the push certificate vendor
  push-cert upload            upload the MDM push certificate (--p12 file --password, or --cert file)
  push-cert show              show the push certificate: topic, expiry, status
  push --udid <id>            wake devices now
  enroll profile [-o file]    download a signed over-the-air enrollment profile
  dep public-key              print the certificate to upload to Apple Business Manager
  dep tokens                  list ABM/ASM server tokens
  dep sync <token-id>         sync a token's devices now
  dep devices [--token --status --serial]  list ADE devices
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "push":
		return runClient(ctx, "push", args[1:], stdout, stderr)
	case "push-cert":
		if len(args) >= 2 && args[1] == "csr" {
			return pushCSR(args[2:], stdout, stderr)
		}
		fallthrough
	case "devices", "commands", "dep", "enroll":
		if len(args) < 2 {
			fmt.Fprint(stderr, usage)
			return flag.ErrHelp
		}
		return runClient(ctx, args[0]+" "+args[1], args[2:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
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

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	envString(fs, &cfg.APNsURL, "apns-url", "", "APNs endpoint (default Apple's production; for proxies and tests)")
	envString(fs, &cfg.APNsCA, "apns-ca", "", "PEM file of extra CA certificates to trust for the APNs endpoint")
	envBool(fs, &cfg.APNsSandbox, "apns-sandbox", "push through Apple's development APNs endpoint", &badEnv)
	envString(fs, &cfg.MetricsListen, "metrics-listen", "", "serve /metrics on this address instead of the main listener (e.g. 127.0.0.1:9100)")
	envString(fs, &cfg.DEPURL, "dep-url", "", "Apple device assignment service base URL (default Apple's; for tests and proxies)")
	envInt(fs, &cfg.RateLimit, "rate-limit", server.DefaultRateLimit, "per source address and minute: wrong SCEP challenges, unknown enrollment links and MachineInfo posts allowed; raise it behind a proxy, where every device shares one address; -1 turns the limits off", &badEnv)
	level := envFlag(fs, "log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if badEnv != nil {
		return badEnv
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes flags only, got %q", fs.Args())
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// pushCSRKey is where `push-cert csr` keeps the key for the later upload.
const pushCSRKey = "push-csr.key"

// pushCSR makes the key and certificate signing request an admin takes to
// the push certificate vendor; the key stays in the data dir (mode 0600).
func pushCSR(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push-cert csr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := envFlag(fs, "data", "orchard-data", "data directory to keep the private key in")
	cn := fs.String("cn", "Orchard MDM", "common name for the request")
	email := fs.String("email", "", "contact email for the request")
	out := fs.String("o", "push.csr", "file to write the PEM certificate signing request to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keyPath := filepath.Join(*data, pushCSRKey)
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s exists: upload the signed certificate first, or move the old key away", keyPath)
	}
	keyPEM, csrPEM, err := apns.NewCSR(*cn, *email)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(*out, csrPEM, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s; the private key is in %s (keep it: the upload needs it)\n", *out, keyPath)
	return nil
}
