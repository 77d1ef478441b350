package apns

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/micromdm/plist"
)

// PushCertRequest is the property list Apple's Push Certificates Portal
// takes, as described in Apple's "Setting up push notifications for your
// MDM customers" (developer.apple.com/documentation/devicemanagement):
// the customer's CSR in DER, base64; the vendor's signature over that DER
// (SHA-256 with RSA), base64; and the vendor's PEM chain up to and
// including Apple's root.
type PushCertRequest struct {
	PushCertRequestCSR       string
	PushCertCertificateChain string
	PushCertSignature        string
}

// SignPushCertRequest signs a customer's CSR (PEM or DER) with an MDM
// vendor certificate's key and returns the file to upload to the portal:
// the base64 of the request's XML plist. chain is the vendor certificate
// first, then the intermediates and root (PEM); the first certificate's
// public key must be key's.
func SignPushCertRequest(csr []byte, chain []*x509.Certificate, key crypto.Signer) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("sign request: the vendor certificate chain is empty")
	}
	der := csr
	if b, _ := pem.Decode(csr); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("sign request: the CSR file holds a %q PEM block", b.Type)
		}
		der = b.Bytes
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("sign request: parse CSR: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign request: the CSR's own signature: %w", err)
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, errors.New("sign request: the vendor key must be RSA")
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("sign request: the vendor key does not match the vendor certificate")
	}
	if err := checkChain(chain); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign request: sign: %w", err)
	}
	// pem.Encode writes 64-character lines, which the portal requires.
	var pemChain bytes.Buffer
	for _, c := range chain {
		pem.Encode(&pemChain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	doc, err := plist.MarshalIndent(PushCertRequest{
		PushCertRequestCSR:       base64.StdEncoding.EncodeToString(der),
		PushCertCertificateChain: pemChain.String(),
		PushCertSignature:        base64.StdEncoding.EncodeToString(sig),
	}, "\t")
	if err != nil {
		return nil, fmt.Errorf("sign request: encode plist: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(doc)))
	base64.StdEncoding.Encode(out, doc)
	return out, nil
}

// checkChain wants each certificate issued (by name) by the next and the
// last one a root: the portal refuses a chain that stops short of Apple's
// root. Only names are compared; Apple's root is signed with SHA-1, which
// crypto/x509 no longer verifies.
func checkChain(chain []*x509.Certificate) error {
	for i, c := range chain {
		next := c
		if i+1 < len(chain) {
			next = chain[i+1]
		}
		if !bytes.Equal(c.RawIssuer, next.RawSubject) {
			if i+1 == len(chain) {
				return fmt.Errorf("sign request: the chain ends at %q, not at a root certificate: add the intermediate and Apple's root", c.Subject.CommonName)
			}
			return fmt.Errorf("sign request: certificate %d (%q) is not issued by the next one (%q)", i+1, c.Subject.CommonName, next.Subject.CommonName)
		}
	}
	return nil
}
