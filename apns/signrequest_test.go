package apns_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/apns/apnstest"
)

func vendorChain(t *testing.T) ([]*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	v, err := apnstest.NewVendor()
	if err != nil {
		t.Fatal(err)
	}
	return v.Chain, v.Key
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
