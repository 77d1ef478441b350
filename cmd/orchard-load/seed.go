package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// seedWriters is how many seeding goroutines write at once: the store
// folds concurrent writers into one transaction and one fsync.
const seedWriters = 512

// seedMain is the bench-only path that fills a stopped server's store with
// enrolled devices, each bound to its own certificate issued by the data
// dir's CA, so cost curves can start from 100,000 devices without
// enrolling them one by one over SCEP.
func seedMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orchard-load seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the (stopped) server's data dir")
	n := fs.Int("devices", 1000, "devices to add")
	first := fs.Int("first", 0, "index of the first seeded device (to add more to an earlier seed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" {
		return errors.New("seed: --data is required")
	}
	if *n < 1 || *n > 1_000_000 || *first < 0 {
		return errors.New("seed: --devices must be 1..1000000 and --first >= 0")
	}
	start := time.Now()
	if err := seed(ctx, *data, *first, *n); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d devices (from #%d) in %s\n", *n, *first, time.Since(start).Round(time.Millisecond))
	return nil
}

func seed(ctx context.Context, dir string, first, n int) error {
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		return fmt.Errorf("seed: %s has no CA; start the server on it once first: %w", dir, err)
	}
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		return err
	}
	// One device key for all seeded certificates: seeded devices never
	// connect, and RSA key generation would dominate the seed time.
	key, err := pki.NewRSAKey(2048)
	if err != nil {
		return err
	}
	store, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	now := time.Now()
	return parallel(ctx, n, seedWriters, func(ctx context.Context, j int) error {
		i := first + j
		tmpl := pki.DeviceTemplate(pki.RandomSerial(), pkix.Name{CommonName: fmt.Sprintf("Orchard seeded device %d", i)},
			key.Public(), now.Add(-time.Minute), now.AddDate(1, 0, 0))
		cert, err := signLimited(ca, tmpl, key)
		if err != nil {
			return err
		}
		hash := pki.Fingerprint(cert)
		serial := fmt.Sprintf("%x", cert.SerialNumber)
		auth := storage.CertAuthorization{Kind: "admin", Ref: "orchard-load seed"}
		err = store.PutCert(ctx, &storage.CertRecord{
			Hash: hash, Serial: serial, Subject: cert.Subject.String(),
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now, Authorization: auth,
		})
		if err != nil {
			return err
		}
		udid := fmt.Sprintf("00008030-SEED%012X", i)
		return store.Authenticate(ctx, &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
			ID: udid, DeviceID: udid, Type: storage.Device,
			EnrolledAt: now, LastSeen: now,
			Topic:     "com.apple.mgmt.External.00000000-0000-0000-0000-000000000000",
			Token:     []byte(fmt.Sprintf("seed-token-%027d", i)),
			PushMagic: fmt.Sprintf("SEED-PUSHMAGIC-%d", i), TokenUpdatedAt: now,
			Facts: &storage.DeviceFacts{
				UDID: udid, SerialNumber: fmt.Sprintf("SD%010d", i),
				Model: "iPhone14,5", ModelName: "iPhone", ProductName: "iPhone14,5",
				OSVersion: "18.1", BuildVersion: "22B83", DeviceName: fmt.Sprintf("Seeded iPhone %d", i),
			},
			EnrollmentMethod: auth.Kind, EnrollmentRef: auth.Ref,
			CertHash: hash, CertSerial: serial, CertNotAfter: cert.NotAfter,
		}})
	})
}

// signSlots keeps CPU-bound CA signatures to one per core while hundreds
// of goroutines wait on writes.
var signSlots = make(chan struct{}, runtime.NumCPU())

func signLimited(ca *pki.CA, tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	signSlots <- struct{}{}
	defer func() { <-signSlots }()
	return ca.Sign(tmpl, key.Public())
}
