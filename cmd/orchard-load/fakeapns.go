package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/pki"
)

// fakeAPNsMain runs the fake APNs (apnstest) on loopback for the benchmark's
// server, trusting the push certificate push-cert wrote into dir, until ctx
// ends (SIGTERM). It writes its URL to dir/fake-apns.url (last, so a script
// can wait for that file) and its server certificate to dir/fake-apns-ca.pem
// for orchard serve --apns-ca. Pushes are counted, not kept; the count is
// printed at exit. Without it, every push the server makes (a command
// queued, a device enrolled) fails against a closed port and is retried,
// and that cost lands in the figures of the MDM protocol.
func fakeAPNsMain(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: orchard-load fake-apns <dir>")
	}
	dir := args[0]
	raw, err := os.ReadFile(filepath.Join(dir, "bench-push.pem"))
	if err != nil {
		return fmt.Errorf("read the push certificate (run orchard-load push-cert first): %w", err)
	}
	certs, err := pki.ParseCertificatesPEM(raw)
	if err != nil || len(certs) == 0 {
		return fmt.Errorf("bench-push.pem holds no certificate: %v", err)
	}
	fake := apnstest.NewServer(certs[0])
	defer fake.Close()
	fake.StopRecording()
	if err := os.WriteFile(filepath.Join(dir, "fake-apns-ca.pem"), fake.CertPEM(), 0o600); err != nil {
		return err
	}
	urlFile := filepath.Join(dir, "fake-apns.url")
	if err := os.WriteFile(urlFile+".tmp", []byte(fake.URL()+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(urlFile+".tmp", urlFile); err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintf(stdout, "fake APNs: %d pushes received\n", fake.Received())
	return nil
}
