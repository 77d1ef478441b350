package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/pki"
)

// The benchmark's fake APNs trusts the certificate push-cert wrote, so a
// pusher configured as orchard serve is (--apns-url, --apns-ca) succeeds,
// and the fake counts what it received.
func TestFakeAPNs(t *testing.T) {
	dir := t.TempDir()
	if err := pushCertMain([]string{dir}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() { errc <- fakeAPNsMain(ctx, []string{dir}, &out) })
	// The URL file is written last: once it exists the fake is serving.
	var url []byte
	for url == nil {
		select {
		case err := <-errc:
			t.Fatalf("fake-apns ended: %v", err)
		default:
		}
		if url, _ = os.ReadFile(filepath.Join(dir, "fake-apns.url")); url == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "bench-push.pem"))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "bench-push.key"))
	pc, err := apns.ParsePEM(certPEM, keyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "fake-apns-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.ParseCertificatesPEM(caPEM)
	if err != nil || len(roots) == 0 {
		t.Fatalf("fake-apns-ca.pem: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	p, err := apns.NewPusher(pc.TLS, apns.WithBaseURL(strings.TrimSpace(string(url))), apns.WithRootCAs(pool), apns.WithRetry(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	res := p.Push(ctx, []apns.Notification{{Token: bytes.Repeat([]byte{7}, 32), PushMagic: "magic", ID: "d1"}})
	if len(res) != 1 || !res[0].Sent {
		t.Fatalf("push to the fake: %+v", res)
	}
	cancel()
	wg.Wait()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 pushes received") {
		t.Errorf("fake-apns said %q", out.String())
	}
	if err := fakeAPNsMain(context.Background(), []string{t.TempDir()}, &out); err == nil {
		t.Error("fake-apns started without a push certificate")
	}
}
