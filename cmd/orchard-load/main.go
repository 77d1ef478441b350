// Command orchard-load is a load generator for Apple MDM servers: it
// simulates devices that speak only the public protocol (enrollment
// profile, SCEP, check-in, connect) against Orchard or NanoMDM on
// loopback, over TLS (trusting the root its enrollment profile installs)
// or plain HTTP, and reports connects/s, latency percentiles, errors, TLS
// resumption and the server's and its own CPU time and peak memory.
//
//	orchard-load [run] --target orchard --server https://127.0.0.1:8443 --api-key ... --devices 200 --conn h1|h2|wake
//	orchard-load seed --data <dir> --devices 100000   (bench only: pre-fill a stopped server's store)
//	orchard-load push-cert <dir>; orchard-load fake-apns <dir>   (bench only: a push certificate and a fake APNs for it)
//	orchard-load report compare a.json b.json | report curve run.json...   (Markdown tables)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "orchard-load:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "seed":
			return seedMain(ctx, args[1:], stdout, stderr)
		case "report":
			return reportMain(args[1:], stdout)
		case "push-cert":
			return pushCertMain(args[1:], stdout)
		case "fake-apns":
			return fakeAPNsMain(ctx, args[1:], stdout)
		case "run":
			args = args[1:]
		}
	}
	cfg, err := parseLoadFlags(args, stderr)
	if err != nil {
		return err
	}
	return loadMain(ctx, cfg, stdout, stderr)
}
