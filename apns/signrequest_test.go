package apns_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/apns"
)

// vendorChain is a test stand-in for Apple's chain: a root, an
// intermediate (WWDR's place) and an MDM vendor signing certificate.
func vendorChain(t *testing.T) ([]*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	var chain []*x509.Certificate
	var parent *x509.Certificate
	var parentKey *rsa.PrivateKey
	for i, cn := range []string{"Test Root CA", "Test WWDR CA", "MDM Vendor: Test Org"} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: i < 2, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		signer, signerCert := key, tmpl
		if parent != nil {
			signer, signerCert = parentKey, parent
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append([]*x509.Certificate{c}, chain...)
		parent, parentKey = c, key
	}
	return chain, parentKey // vendor first, root last
}

func TestSignPushCertRequest(t *testing.T) {
	chain, vendorKey := vendorChain(t)
	_, csrPEM, err := apns.NewCSR("Orchard MDM", "it@example.com")
	if err != nil {
		t.Fatal(err)
	}
	out, err := apns.SignPushCertRequest(csrPEM, chain, vendorKey)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := base64.StdEncoding.DecodeString(string(out))
	if err != nil {
		t.Fatalf("the file is not base64: %v", err)
	}
	if !strings.HasPrefix(string(doc), "<?xml") {
		t.Fatalf("the decoded file is not an XML plist: %.40q", doc)
	}
	// Exactly Apple's three keys, all strings.
	var m map[string]any
	if err := plist.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 {
		t.Errorf("plist keys = %v, want exactly PushCertRequestCSR, PushCertCertificateChain, PushCertSignature", m)
	}
	str := func(k string) string {
		s, ok := m[k].(string)
		if !ok {
			t.Fatalf("%s is %T, want a string", k, m[k])
		}
		return s
	}
	csrDER, err := base64.StdEncoding.DecodeString(str("PushCertRequestCSR"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	if string(csrDER) != string(block.Bytes) {
		t.Error("PushCertRequestCSR is not the CSR's DER")
	}
	sig, err := base64.StdEncoding.DecodeString(str("PushCertSignature"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(csrDER)
	if err := rsa.VerifyPKCS1v15(&vendorKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("PushCertSignature is not the vendor's SHA-256 RSA signature over the CSR DER: %v", err)
	}

	// The chain: PEM, 64-character lines, vendor first, up to and including the root.
	rest := []byte(str("PushCertCertificateChain"))
	var got []*x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != 3 || !got[0].Equal(chain[0]) || !got[2].Equal(chain[2]) {
		t.Fatalf("chain has %d certificates, want vendor, intermediate, root in that order", len(got))
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(got[2])
	inter.AddCert(got[1])
	if _, err := got[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("chain does not verify: %v", err)
	}
	for _, line := range strings.Split(str("PushCertCertificateChain"), "\n") {
		if len(line) > 64 {
			t.Fatalf("chain line of %d characters, the portal takes at most 64", len(line))
		}
	}
}

func TestSignPushCertRequestRefuses(t *testing.T) {
	chain, vendorKey := vendorChain(t)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, csrPEM, err := apns.NewCSR("Orchard MDM", "")
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(strings.Replace(string(csrPEM), "A", "B", 1))
	for name, tc := range map[string]struct {
		csr   []byte
		chain []*x509.Certificate
		key   crypto.Signer
		want  string
	}{
		"key not the vendor's": {csrPEM, chain, otherKey, "does not match"},
		"empty chain":          {csrPEM, nil, vendorKey, "chain is empty"},
		"no root":              {csrPEM, chain[:2], vendorKey, "not at a root"},
		"out of order":         {csrPEM, []*x509.Certificate{chain[0], chain[2], chain[1]}, vendorKey, "not issued by the next"},
		"not a CSR":            {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw}), chain, vendorKey, "PEM block"},
		"garbage":              {[]byte("hello"), chain, vendorKey, "parse CSR"},
		"tampered CSR":         {tampered, chain, vendorKey, "CSR"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apns.SignPushCertRequest(tc.csr, tc.chain, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
