package apnstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Vendor is a stand-in for an MDM vendor signing certificate with Apple's
// chain above it: a root, an intermediate (in WWDR's place) and the vendor
// certificate, each RSA 2048.
type Vendor struct {
	Chain    []*x509.Certificate // vendor first, root last
	Key      *rsa.PrivateKey     // the vendor certificate's key
	ChainPEM []byte              // Chain as PEM, in the same order
	KeyPEM   []byte              // Key as PKCS#8 PEM
}

// NewVendor makes a fresh vendor chain.
func NewVendor() (*Vendor, error) {
	v := &Vendor{}
	var parent *x509.Certificate
	var parentKey *rsa.PrivateKey
	for i, cn := range []string{"Test Apple Root CA", "Test WWDR CA", "MDM Vendor: Test Org"} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: i < 2, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		issuer, issuerKey := tmpl, key
		if parent != nil {
			issuer, issuerKey = parent, parentKey
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
		if err != nil {
			return nil, fmt.Errorf("vendor chain: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		v.Chain = append([]*x509.Certificate{c}, v.Chain...)
		parent, parentKey = c, key
	}
	v.Key = parentKey
	for _, c := range v.Chain {
		v.ChainPEM = append(v.ChainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(v.Key)
	if err != nil {
		return nil, err
	}
	v.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return v, nil
}
