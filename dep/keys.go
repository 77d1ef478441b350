// Package dep owns Orchard's Automated Device Enrollment link with Apple
// Business Manager and Apple School Manager: the key pair ABM encrypts server
// tokens to, the client of Apple's device assignment service, the syncer that
// keeps devices current per token, and ADE enrollment profiles.
package dep

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/orchardmdm/orchard/pki"
)

// KeyPair is the certificate uploaded to ABM/ASM and the key that decrypts
// the server tokens Apple encrypts to it.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LoadOrCreateKeyPair loads <dir>/dep.pem and <dir>/dep.key, creating an
// RSA-2048 self-signed pair on first use (Apple encrypts tokens with RSA key
// transport, so the key must be RSA).
func LoadOrCreateKeyPair(dir string) (*KeyPair, error) {
	certPath, keyPath := filepath.Join(dir, "dep.pem"), filepath.Join(dir, "dep.key")
	cert, key, err := pki.LoadPair(certPath, keyPath)
	if err == nil {
		return NewKeyPair(cert, key)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dep: load key pair: %w", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          pki.RandomSerial(),
		Subject:               pkix.Name{CommonName: "Orchard MDM ADE token key", Organization: []string{"Orchard MDM"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	if cert, err = pki.SelfSigned(tmpl, rsaKey); err != nil {
		return nil, fmt.Errorf("dep: create certificate: %w", err)
	}
	if err := pki.SavePair(certPath, keyPath, cert, rsaKey); err != nil {
		return nil, fmt.Errorf("dep: save key pair: %w", err)
	}
	return NewKeyPair(cert, rsaKey)
}

// NewKeyPair checks that key matches cert and is RSA.
func NewKeyPair(cert *x509.Certificate, key crypto.Signer) (*KeyPair, error) {
	if cert == nil || key == nil {
		return nil, errors.New("dep: key pair needs a certificate and a key")
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("dep: token key must be RSA")
	}
	if !pub.Equal(cert.PublicKey) {
		return nil, errors.New("dep: token key does not match its certificate")
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// CertPEM is the public key file the admin uploads to ABM/ASM.
func (k *KeyPair) CertPEM() []byte { return pki.EncodeCertPEM(k.Cert) }

// Credentials are the OAuth 1.0a secrets inside a server token.
type Credentials struct {
	ConsumerKey       string    `json:"consumer_key"`
	ConsumerSecret    string    `json:"consumer_secret"`
	AccessToken       string    `json:"access_token"`
	AccessSecret      string    `json:"access_secret"`
	AccessTokenExpiry time.Time `json:"access_token_expiry"`
}

// String never reveals a secret.
func (c Credentials) String() string {
	return fmt.Sprintf("dep.Credentials{consumer_key:%q, expires:%s}", c.ConsumerKey, c.AccessTokenExpiry.Format(time.RFC3339))
}

// ErrBadToken wraps every reason a server token file is refused.
var ErrBadToken = errors.New("invalid server token")

const maxTokenFile = 64 << 10

// DecryptToken opens a .p7m server token downloaded from ABM/ASM: an S/MIME
// message whose base64 body is PKCS#7 enveloped data encrypted to k.
func (k *KeyPair) DecryptToken(p7m []byte) (Credentials, error) {
	var c Credentials
	if len(p7m) > maxTokenFile {
		return c, fmt.Errorf("%w: file larger than %d bytes", ErrBadToken, maxTokenFile)
	}
	der, err := smimeBody(p7m)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return c, fmt.Errorf("%w: not PKCS#7 enveloped data: %v", ErrBadToken, err)
	}
	plain, err := p7.Decrypt(k.Cert, k.Key)
	if err != nil {
		return c, fmt.Errorf("%w: cannot decrypt with this server's public key (was the token made for another MDM server?): %v", ErrBadToken, err)
	}
	return parseTokenMessage(plain)
}

// smimeBody returns the DER inside an S/MIME file; it also accepts a bare
// base64 body or raw DER.
func smimeBody(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty file")
	}
	if trimmed[0] == 0x30 { // DER SEQUENCE
		return trimmed, nil
	}
	body := trimmed
	if msg, err := mail.ReadMessage(bytes.NewReader(append(trimmed, '\n', '\n'))); err == nil && len(msg.Header) > 0 {
		if enc := msg.Header.Get("Content-Transfer-Encoding"); enc != "" && !strings.EqualFold(enc, "base64") {
			return nil, fmt.Errorf("unsupported transfer encoding %q", enc)
		}
		b := new(bytes.Buffer)
		if _, err := b.ReadFrom(msg.Body); err != nil {
			return nil, err
		}
		body = b.Bytes()
	}
	clean := bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, errors.New("body is not base64 S/MIME")
	}
	return der, nil
}

func parseTokenMessage(plain []byte) (Credentials, error) {
	var c Credentials
	const begin, end = "-----BEGIN MESSAGE-----", "-----END MESSAGE-----"
	s := string(plain)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return c, fmt.Errorf("%w: no BEGIN/END MESSAGE block in the decrypted token", ErrBadToken)
	}
	var raw struct {
		ConsumerKey       string `json:"consumer_key"`
		ConsumerSecret    string `json:"consumer_secret"`
		AccessToken       string `json:"access_token"`
		AccessSecret      string `json:"access_secret"`
		AccessTokenExpiry string `json:"access_token_expiry"`
	}
	if err := json.Unmarshal([]byte(s[i+len(begin):j]), &raw); err != nil {
		return c, fmt.Errorf("%w: token message is not JSON: %v", ErrBadToken, err)
	}
	if raw.ConsumerKey == "" || raw.ConsumerSecret == "" || raw.AccessToken == "" || raw.AccessSecret == "" {
		return c, fmt.Errorf("%w: token lacks consumer_key, consumer_secret, access_token or access_secret", ErrBadToken)
	}
	exp, err := parseAppleTime(raw.AccessTokenExpiry)
	if err != nil {
		return c, fmt.Errorf("%w: access_token_expiry: %v", ErrBadToken, err)
	}
	return Credentials{raw.ConsumerKey, raw.ConsumerSecret, raw.AccessToken, raw.AccessSecret, exp}, nil
}

// parseAppleTime reads Apple's timestamps ("2024-01-02T03:04:05Z", with or
// without fractional seconds or a numeric zone).
func parseAppleTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}

// pemCerts returns the DER of every CERTIFICATE block in data.
func pemCerts(data []byte) ([][]byte, error) {
	var out [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			out = append(out, block.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}
