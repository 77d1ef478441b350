package apnstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/orchardmdm/orchard/mdm"
)

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// Cert is a fake MDM push certificate: a leaf issued by a throwaway CA.
type Cert struct {
	Topic   string            // the UID in the subject ("" if made WithTopic(""))
	Leaf    *x509.Certificate // the push certificate
	CA      *x509.Certificate // its issuer
	Key     *rsa.PrivateKey   // the leaf's key
	TLS     tls.Certificate   // leaf and key for a client
	CertPEM []byte            // leaf as PEM
	KeyPEM  []byte            // key as PKCS#8 PEM
}

type certConfig struct {
	topic     string
	notBefore time.Time
	notAfter  time.Time
}

// CertOption adjusts NewPushCert.
type CertOption func(*certConfig)

// WithTopic sets the subject UID; "" leaves the UID out entirely.
func WithTopic(topic string) CertOption { return func(c *certConfig) { c.topic = topic } }

// WithValidity sets the leaf's validity window (default: an hour ago to a year ahead).
func WithValidity(notBefore, notAfter time.Time) CertOption {
	return func(c *certConfig) { c.notBefore, c.notAfter = notBefore, notAfter }
}

// NewPushCert makes a push certificate shaped like Apple's: RSA 2048,
// CN "APSP:<uuid>", UID com.apple.mgmt.External.<uuid>, TLS client use.
func NewPushCert(opts ...CertOption) (*Cert, error) {
	id := mdm.NewUUID()
	cfg := certConfig{
		topic:     "com.apple.mgmt.External." + id,
		notBefore: time.Now().Add(-time.Hour),
		notAfter:  time.Now().Add(365 * 24 * time.Hour),
	}
	for _, o := range opts {
		o(&cfg)
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("apnstest: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Fake Apple Application Integration CA"},
		NotBefore:             cfg.notBefore.Add(-time.Hour),
		NotAfter:              cfg.notAfter.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("apnstest: CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("apnstest: leaf key: %w", err)
	}
	subject := pkix.Name{CommonName: "APSP:" + id, Country: []string{"US"}}
	if cfg.topic != "" {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidUID, Value: cfg.topic}}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    cfg.notBefore,
		NotAfter:     cfg.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("apnstest: leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{
		Topic:   cfg.topic,
		Leaf:    leaf,
		CA:      ca,
		Key:     key,
		TLS:     tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key, Leaf: leaf},
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// P12 encodes the certificate and key as PKCS#12 the way Keychain Access
// exports it (3DES, SHA-1 MAC).
func (c *Cert) P12(password string) ([]byte, error) {
	return pkcs12.LegacyDES.Encode(c.Key, c.Leaf, nil, password)
}

// ModernP12 encodes as OpenSSL 3 does by default (AES-256, PBKDF2).
func (c *Cert) ModernP12(password string) ([]byte, error) {
	return pkcs12.Modern.Encode(c.Key, c.Leaf, nil, password)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126)) // crypto/rand does not fail
	return n.Add(n, big.NewInt(1))
}
