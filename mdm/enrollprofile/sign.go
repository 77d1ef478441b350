package enrollprofile

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/orchardmdm/orchard/pki"
	"github.com/smallstep/pkcs7"
)

// Signer CMS-signs profiles so devices show who they come from.
type Signer struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
}

// NewSigner signs with cert and key; chain (issuers, nearest first) is
// embedded so devices can build the path.
func NewSigner(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) (*Signer, error) {
	if cert == nil || key == nil {
		return nil, errors.New("enrollprofile: signer needs a certificate and key")
	}
	return &Signer{cert: cert, key: key, chain: chain}, nil
}

// Certificate returns the signing certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// LoadOrCreateSigner loads the profile-signing pair from dir
// (profile-signing.pem/.key), issuing a new one from ca when it is missing
// or expires within 30 days.
func LoadOrCreateSigner(dir string, ca *pki.CA) (*Signer, error) {
	if ca == nil {
		return nil, errors.New("enrollprofile: a CA is required")
	}
	certPath, keyPath := filepath.Join(dir, "profile-signing.pem"), filepath.Join(dir, "profile-signing.key")
	cert, key, err := pki.LoadPair(certPath, keyPath)
	switch {
	case err == nil && time.Until(cert.NotAfter) > 30*24*time.Hour && cert.CheckSignatureFrom(ca.Cert) == nil:
		return NewSigner(cert, key, ca.Cert)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("enrollprofile: load signing pair: %w", err)
	}
	rsaKey, err := pki.NewRSAKey(2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	cert, err = ca.Sign(&x509.Certificate{
		SerialNumber:          pki.RandomSerial(),
		Subject:               pkix.Name{CommonName: "Orchard profile signing", Organization: []string{"Orchard"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, rsaKey.Public())
	if err != nil {
		return nil, err
	}
	if err := pki.SavePair(certPath, keyPath, cert, rsaKey); err != nil {
		return nil, err
	}
	return NewSigner(cert, rsaKey, ca.Cert)
}

// Sign returns the CMS SignedData of content (attached), with certificates.
func (s *Signer) Sign(content []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(s.cert, s.key, s.chain, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("enrollprofile: sign: %w", err)
	}
	return sd.Finish()
}

// Parse verifies a signed profile and returns its plist and signer. With
// roots, the signer must chain to one of them; without, only the
// signature is checked.
func Parse(signed []byte, roots *x509.CertPool) (content []byte, signer *x509.Certificate, err error) {
	p7, err := pkcs7.Parse(signed)
	if err != nil {
		return nil, nil, fmt.Errorf("enrollprofile: not CMS: %w", err)
	}
	if err := p7.VerifyWithChain(roots); err != nil {
		return nil, nil, fmt.Errorf("enrollprofile: signature: %w", err)
	}
	signer = p7.GetOnlySigner()
	if signer == nil || len(p7.Content) == 0 {
		return nil, nil, errors.New("enrollprofile: want exactly one signer and attached content")
	}
	return p7.Content, signer, nil
}
