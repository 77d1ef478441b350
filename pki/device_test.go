package pki_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/pki"
)

func TestDeviceTemplate(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := pki.NewRSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name  string
		key   crypto.Signer
		usage x509.KeyUsage
	}{
		{"RSA", rsaKey, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"ECDSA", ecKey, x509.KeyUsageDigitalSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := pki.DeviceTemplate(pki.RandomSerial(), pkix.Name{CommonName: "dev"}, tc.key.Public(), now.Add(-time.Minute), now.Add(time.Hour))
			cert, err := ca.Sign(tmpl, tc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("does not verify for client auth: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err == nil {
				t.Error("verifies for server auth: a device certificate could serve TLS")
			}
			if cert.IsCA || !cert.BasicConstraintsValid {
				t.Error("is (or may be) a CA")
			}
			if cert.KeyUsage != tc.usage {
				t.Errorf("key usage %v, want %v", cert.KeyUsage, tc.usage)
			}
		})
	}
}
