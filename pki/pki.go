// Package pki owns Orchard's own key material in the data dir: the
// device-identity CA, the server's self-signed TLS pair, and the secret key
// that encrypts secrets at rest. Files are created once and then reused.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CA is Orchard's device-identity certificate authority.
type CA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// Pool returns a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LoadOrCreateCA loads the CA from dir (ca.pem, ca.key), creating an RSA
// 2048 CA valid for ten years on first use. RSA, because SCEP clients
// encrypt their requests to the CA's key and Apple's client only does RSA.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil {
		return &CA{Cert: cert, Signer: key}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	key = rsaKey
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          RandomSerial(),
		Subject:               pkix.Name{CommonName: "Orchard Device Identity CA", Organization: []string{"Orchard MDM"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	cert, err = SelfSigned(tmpl, key)
	if err != nil {
		return nil, err
	}
	if err := SavePair(certPath, keyPath, cert, key); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Signer: key}, nil
}

// LoadOrCreateServerTLS returns the cert and key files to serve TLS with,
// creating a self-signed P-256 pair for hosts on first use. An existing pair
// that does not cover publicHost (the --public-url host changed) is
// replaced by a new one, and replaced says so: devices could not reach
// the new host with it anyway. The device CA is not touched.
func LoadOrCreateServerTLS(dir string, hosts []string, publicHost string) (certPath, keyPath string, replaced bool, err error) {
	certPath, keyPath = filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls.key")
	cert, _, err := loadPair(certPath, keyPath)
	switch {
	case err == nil && (publicHost == "" || cert.VerifyHostname(publicHost) == nil):
		return certPath, keyPath, false, nil
	case err == nil:
		replaced = true
		if !slices.Contains(hosts, publicHost) {
			hosts = append(hosts, publicHost)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", "", false, fmt.Errorf("pki: load server TLS pair: %w", err)
	}
	return certPath, keyPath, replaced, createServerTLS(certPath, keyPath, hosts)
}

func createServerTLS(certPath, keyPath string, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: RandomSerial(),
		Subject:      pkix.Name{CommonName: "Orchard MDM server", Organization: []string{"Orchard MDM"}},
		NotBefore:    now.Add(-time.Hour),
		// Apple platforms refuse TLS server certificates valid for more than 825 days.
		NotAfter:              now.AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	AddHosts(tmpl, hosts)
	cert, err := SelfSigned(tmpl, key)
	if err != nil {
		return err
	}
	return SavePair(certPath, keyPath, cert, key)
}

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// RandomSerial returns a positive 128-bit serial number.
func RandomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// SelfSigned creates a self-signed certificate from tmpl for key.
func SelfSigned(tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	return createCert(tmpl, tmpl, key.Public(), key)
}

// Sign issues a certificate from tmpl for pub, signed by the CA.
func (ca *CA) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	return createCert(tmpl, ca.Cert, pub, ca.Signer)
}

// LoadPair reads a PEM certificate and PEM private key.
func LoadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	return loadPair(certPath, keyPath)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return cert, key, nil
}

// ParsePrivateKeyPEM reads a PKCS#8, PKCS#1 or SEC 1 private key.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("private key cannot sign")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key format")
}

// ParseCertificatesPEM returns every CERTIFICATE block of PEM data, in
// order; other block types are skipped. Data without one is an error.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// EncodeCertPEM returns the PEM form of a certificate.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// EncodeKeyPEM returns the PKCS#8 PEM form of a private key.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SavePair writes a certificate and its key as PEM files, the key first
// and readable by the owner only, each atomically.
func SavePair(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, EncodeCertPEM(cert), 0o644)
}

// WriteFileAtomic writes data to a temporary file, syncs it and renames it
// over path, so a crash never leaves a half-written key.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// NewRSAKey returns a fresh RSA key of the given size.
func NewRSAKey(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }
