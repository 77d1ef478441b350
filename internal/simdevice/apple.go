package simdevice

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// AppleChain stands in for Apple's device certificate authority in tests:
// a root, an intermediate it signed, and a leaf per device signed by the
// intermediate, shaped like the chain a real device's MachineInfo carries.
// Servers under test trust Root in place of Apple's published root.
type AppleChain struct {
	Root         *x509.Certificate
	Intermediate *x509.Certificate
	interKey     crypto.Signer
}

// NewAppleChain makes a fresh test chain, valid from an hour ago for a year.
func NewAppleChain() (*AppleChain, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"Test Apple"}, CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
	}
	rootTmpl := ca(1, "Test Apple Root CA")
	root, err := issue(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, err := issue(ca(2, "Test Apple Device CA"), root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	return &AppleChain{Root: root, Intermediate: inter, interKey: interKey}, nil
}

// Roots is a pool holding only the chain's root.
func (a *AppleChain) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Root)
	return p
}

// DeviceCert issues a device's leaf certificate and its key.
func (a *AppleChain) DeviceCert(serial string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: "Test Apple Device " + serial},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	cert, err := issue(tmpl, a.Intermediate, &key.PublicKey, a.interKey)
	return cert, key, err
}

func issue(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("test apple chain: %w", err)
	}
	return x509.ParseCertificate(der)
}
