package pki

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// DeviceTemplate is the one shape of a device identity certificate, for
// SCEP issuance and for the test and load tools that issue directly: TLS
// client authentication only, never a CA, digital signature (and key
// encipherment for an RSA key, which SCEP clients use to decrypt).
func DeviceTemplate(serial *big.Int, subject pkix.Name, pub crypto.PublicKey, notBefore, notAfter time.Time) *x509.Certificate {
	usage := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
}
