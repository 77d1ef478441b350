package apns

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
)

// oidEmail is the PKCS#9 emailAddress subject attribute push vendors expect.
var oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// CSRKeyBits is the RSA key size Apple's push certificates use.
const CSRKeyBits = 2048

// NewCSR creates an RSA 2048 private key and a PEM certificate signing
// request for it, to take to the push certificate vendor. keyPEM (PKCS#8)
// is a secret: keep it to pair with the certificate Apple issues.
func NewCSR(commonName, email string) (keyPEM, csrPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("csr: common name is required")
	}
	key, err := rsa.GenerateKey(rand.Reader, CSRKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("csr: generate key: %w", err)
	}
	subject := pkix.Name{CommonName: commonName}
	if email != "" {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidEmail, Value: email}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:            subject,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("csr: create request: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("csr: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
