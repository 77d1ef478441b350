package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/orchardmdm/orchard/apns/apnstest"
)

// pushCertMain writes a self-made MDM push certificate and its key into
// dir (bench-push.pem, bench-push.key). Orchard serves enrollment profiles
// only once it has a push certificate; the benchmark's server gets this
// one, with its APNs endpoint pointed at nothing.
func pushCertMain(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: orchard-load push-cert <dir>")
	}
	cert, err := apnstest.NewPushCert()
	if err != nil {
		return err
	}
	dir := args[0]
	if err := os.WriteFile(filepath.Join(dir, "bench-push.pem"), cert.CertPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-push.key"), cert.KeyPEM, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(dir, "bench-push.pem"), filepath.Join(dir, "bench-push.key"))
	return nil
}
