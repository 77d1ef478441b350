package apns

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sideshow/apns2/certificate"
	"software.sslmate.com/src/go-pkcs12"
)

// TopicPrefix starts the topic of every MDM push certificate.
const TopicPrefix = "com.apple.mgmt."

// ExpiryWarning is how long before NotAfter a certificate counts as Expiring.
const ExpiryWarning = 30 * 24 * time.Hour

// oidUID is the LDAP userID attribute that carries the push topic.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// ErrInvalidCert is wrapped by every reason an uploaded push certificate is
// refused; an API handler can map errors.Is(err, ErrInvalidCert) to 400.
var ErrInvalidCert = errors.New("invalid push certificate")

// Reasons a push certificate is refused. Each wraps ErrInvalidCert.
var (
	ErrMalformed      = fmt.Errorf("%w: cannot read certificate or key", ErrInvalidCert)
	ErrBadPassword    = fmt.Errorf("%w: wrong password for the PKCS#12 file", ErrInvalidCert)
	ErrUnsupportedP12 = fmt.Errorf("%w: the PKCS#12 file uses an encryption Orchard cannot read; upload the certificate and key as PEM", ErrInvalidCert)
	ErrNoTopic        = fmt.Errorf("%w: certificate subject has no UID (topic); this is not an MDM push certificate", ErrInvalidCert)
	ErrNotMDMTopic    = fmt.Errorf("%w: certificate topic does not start with %q; this is not an MDM push certificate", ErrInvalidCert, TopicPrefix)
	ErrKeyMismatch    = fmt.Errorf("%w: private key does not match the certificate", ErrInvalidCert)
	ErrExpired        = fmt.Errorf("%w: certificate has expired; renew it in the Apple Push Certificates Portal", ErrInvalidCert)
	ErrNotYetValid    = fmt.Errorf("%w: certificate is not valid yet", ErrInvalidCert)
)

// ErrTopicChanged refuses a renewal whose topic differs from the current one.
var ErrTopicChanged = errors.New("new push certificate has a different topic: every enrolled device is bound to the old topic and would stop answering pushes until it is enrolled again; renew the existing certificate in the Apple Push Certificates Portal, or force the replacement")

// Status is where a push certificate stands in its lifetime.
type Status int

// Certificate statuses.
const (
	StatusActive   Status = iota // valid for more than ExpiryWarning
	StatusExpiring               // valid, but ends within ExpiryWarning
	StatusExpired                // past NotAfter
)

func (s Status) String() string {
	switch s {
	case StatusActive:
		return "active"
	case StatusExpiring:
		return "expiring"
	case StatusExpired:
		return "expired"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText makes a Status appear as its name in JSON.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PushCert is a checked MDM push certificate with its private key.
// Its String method never prints the key.
type PushCert struct {
	Topic string            // com.apple.mgmt.External.<uuid>
	Leaf  *x509.Certificate // the push certificate itself
	TLS   tls.Certificate   // leaf (+chain) and key, ready for NewPusher
}

// ParseP12 reads a PKCS#12 (.p12/.pfx) push certificate and checks it.
func ParseP12(data []byte, password string) (*PushCert, error) {
	if err := checkP12Work(data); err != nil {
		return nil, err
	}
	// go-pkcs12 reads both Keychain's legacy exports and OpenSSL 3's AES
	// default, which apns2's reader (x/crypto/pkcs12) cannot open.
	key, leaf, _, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		var notImpl pkcs12.NotImplementedError
		switch {
		case errors.Is(err, pkcs12.ErrIncorrectPassword):
			return nil, ErrBadPassword
		case errors.As(err, &notImpl):
			return nil, ErrUnsupportedP12
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, oneLine(err))
	}
	tc := tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	return newPushCert(tc, time.Now())
}

// ParsePEM reads a PEM push certificate and its PEM private key and checks
// them. keyPEM may be empty when certPEM holds both; password decrypts a
// legacy encrypted PEM key and is "" otherwise.
func ParsePEM(certPEM, keyPEM []byte, password string) (*PushCert, error) {
	both := make([]byte, 0, len(certPEM)+len(keyPEM)+1)
	both = append(append(append(both, certPEM...), '\n'), keyPEM...)
	tc, err := certificate.FromPemBytes(both, password)
	if err != nil {
		if errors.Is(err, certificate.ErrFailedToDecryptKey) {
			return nil, fmt.Errorf("%w: wrong password for the private key", ErrInvalidCert)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, oneLine(err))
	}
	return newPushCert(tc, time.Now())
}

// maxP12Iterations bounds the key-derivation work a PKCS#12 file may ask
// for; real exports use a few thousand. Without it a crafted file can pin a
// CPU for minutes.
const maxP12Iterations = 100_000

// checkP12Work refuses a PKCS#12 file whose MAC asks for more than
// maxP12Iterations before any key derivation runs. Structural errors are
// left to the decoder, which reports them.
func checkP12Work(data []byte) error {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  struct {
			Mac        asn1.RawValue
			MacSalt    []byte
			Iterations int `asn1:"optional,default:1"`
		} `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(data, &pfx); err != nil {
		return nil
	}
	if n := pfx.MacData.Iterations; n > maxP12Iterations || n < 0 {
		return fmt.Errorf("%w: PKCS#12 asks for %d key-derivation iterations (at most %d)", ErrMalformed, n, maxP12Iterations)
	}
	return nil
}

func newPushCert(tc tls.Certificate, now time.Time) (*PushCert, error) {
	if tc.Leaf == nil {
		if len(tc.Certificate) == 0 {
			return nil, fmt.Errorf("%w: no certificate", ErrMalformed)
		}
		leaf, err := x509.ParseCertificate(tc.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, oneLine(err))
		}
		tc.Leaf = leaf
	}
	topic, err := TopicFromCert(tc.Leaf)
	if err != nil {
		return nil, err
	}
	if err := keyMatches(tc.Leaf, tc.PrivateKey); err != nil {
		return nil, err
	}
	switch {
	case now.After(tc.Leaf.NotAfter):
		return nil, ErrExpired
	case now.Before(tc.Leaf.NotBefore):
		return nil, ErrNotYetValid
	}
	return &PushCert{Topic: topic, Leaf: tc.Leaf, TLS: tc}, nil
}

// TopicFromCert returns the push topic in the certificate subject's UID
// attribute, refusing certificates that are not MDM push certificates.
func TopicFromCert(c *x509.Certificate) (string, error) {
	if c == nil {
		return "", ErrNoTopic
	}
	for _, atv := range c.Subject.Names {
		if !atv.Type.Equal(oidUID) {
			continue
		}
		topic, ok := atv.Value.(string)
		if !ok || topic == "" {
			return "", ErrNoTopic
		}
		if !strings.HasPrefix(topic, TopicPrefix) || len(topic) == len(TopicPrefix) {
			return "", ErrNotMDMTopic
		}
		return topic, nil
	}
	return "", ErrNoTopic
}

func keyMatches(leaf *x509.Certificate, key crypto.PrivateKey) error {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%w: unsupported private key type %T", ErrMalformed, key)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return ErrKeyMismatch
	}
	return nil
}

// Status reports whether the certificate is active, expiring or expired at now.
func (c *PushCert) Status(now time.Time) Status {
	switch left := c.Leaf.NotAfter.Sub(now); {
	case left < 0:
		return StatusExpired
	case left <= ExpiryWarning:
		return StatusExpiring
	}
	return StatusActive
}

// DaysLeft is the number of whole days until expiry, negative once expired.
func (c *PushCert) DaysLeft(now time.Time) int {
	left := c.Leaf.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	if left < 0 && left%(24*time.Hour) != 0 {
		days--
	}
	return days
}

// PEM returns the certificate (with any chain) and the private key in PEM,
// the form Orchard stores whatever the admin uploaded. keyPEM is a secret.
func (c *PushCert) PEM() (certPEM, keyPEM []byte, err error) {
	for _, der := range c.TLS.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.TLS.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode push certificate key: %w", err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// String describes the certificate without its key; safe to log.
func (c *PushCert) String() string {
	if c == nil || c.Leaf == nil {
		return "PushCert(<nil>)"
	}
	return fmt.Sprintf("PushCert(topic=%s serial=%s notAfter=%s)",
		c.Topic, c.Leaf.SerialNumber, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// CheckRenewal applies the renewal rule before next replaces current: the
// same topic always replaces; a different topic is refused with
// ErrTopicChanged unless force is set. current may be nil (first upload).
func CheckRenewal(current, next *PushCert, force bool) error {
	if next == nil {
		return fmt.Errorf("%w: no certificate", ErrMalformed)
	}
	if current == nil || current.Topic == next.Topic || force {
		return nil
	}
	return fmt.Errorf("%w (current topic %s, new topic %s)", ErrTopicChanged, current.Topic, next.Topic)
}

// oneLine keeps library error text to a single line for 4xx reasons.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
