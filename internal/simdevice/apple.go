package simdevice

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
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
	// sha1 makes device certificates RSA keys signed with SHA-1 and the
	// MachineInfo digest SHA-1, as Apple's iPhone device CA does.
	sha1 bool
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
	ca := testCA
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

// NewAppleChainSHA1 makes a fresh test chain shaped like Apple's real
// device chain: RSA keys, the intermediate and every device certificate
// signed with sha1WithRSAEncryption (which crypto/x509 no longer verifies),
// valid from an hour ago for a year.
func NewAppleChainSHA1() (*AppleChain, error) {
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	interKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	rootTmpl := testCA(1, "Test Apple Root CA")
	root, err := issue(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, err := IssueSHA1(testCA(2, "Test Apple iPhone Device CA"), root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	return &AppleChain{Root: root, Intermediate: inter, interKey: interKey, sha1: true}, nil
}

// SHA1 reports whether the chain signs with SHA-1 (NewAppleChainSHA1).
func (a *AppleChain) SHA1() bool { return a.sha1 }

func testCA(serial int64, cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"Test Apple"}, CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
}

// IssueSHA1 issues tmpl for pub, signed by parent's key with
// sha1WithRSAEncryption. x509.CreateCertificate refuses SHA-1, so the
// certificate is made with SHA-256 and then its to-be-signed part is
// rewritten to name SHA-1 and signed again.
func IssueSHA1(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey *rsa.PrivateKey) (*x509.Certificate, error) {
	t := *tmpl
	tmpl = &t
	tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	made, err := issue(tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	der, err := ResignSHA1(made.Raw, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// sha1WithRSA is the DER AlgorithmIdentifier of sha1WithRSAEncryption
// (1.2.840.113549.1.1.5, NULL parameters).
var sha1WithRSA = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00}

// ResignSHA1 returns certificate der with its signature algorithm (in the
// to-be-signed part and outside it) set to sha1WithRSAEncryption and a
// fresh signature by key over the rewritten part.
func ResignSHA1(der []byte, key *rsa.PrivateKey) ([]byte, error) {
	var cert struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, fmt.Errorf("resign: %w", err)
	}
	var fields []asn1.RawValue
	for rest := cert.TBS.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return nil, fmt.Errorf("resign: %w", err)
		}
		fields = append(fields, f)
	}
	alg := 1 // after the serial number, or after the version and the serial
	if len(fields) > 0 && fields[0].Class == asn1.ClassContextSpecific && fields[0].Tag == 0 {
		alg = 2
	}
	if len(fields) <= alg {
		return nil, errors.New("resign: short TBSCertificate")
	}
	fields[alg] = asn1.RawValue{FullBytes: sha1WithRSA}
	var body []byte
	for _, f := range fields {
		body = append(body, f.FullBytes...)
	}
	tbs, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(tbs)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, sum[:])
	if err != nil {
		return nil, fmt.Errorf("resign: %w", err)
	}
	cert.TBS = asn1.RawValue{FullBytes: tbs}
	cert.Alg = asn1.RawValue{FullBytes: sha1WithRSA}
	cert.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	return asn1.Marshal(cert)
}

// Roots is the chain's root alone, the trust a server under test puts in
// place of Apple's.
func (a *AppleChain) Roots() []*x509.Certificate { return []*x509.Certificate{a.Root} }

// DeviceCert issues a device's leaf certificate and its key.
func (a *AppleChain) DeviceCert(serial string) (*x509.Certificate, crypto.Signer, error) {
	if a.sha1 {
		return a.deviceCertSHA1(serial)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	cert, err := issue(deviceTemplate(serial), a.Intermediate, &key.PublicKey, a.interKey)
	return cert, key, err
}

func (a *AppleChain) deviceCertSHA1(serial string) (*x509.Certificate, crypto.Signer, error) {
	// 1024 bits, as Apple's device keys: the smallest crypto/rsa accepts.
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return nil, nil, err
	}
	cert, err := IssueSHA1(deviceTemplate(serial), a.Intermediate, &key.PublicKey, a.interKey.(*rsa.PrivateKey))
	return cert, key, err
}

func deviceTemplate(serial string) *x509.Certificate {
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)) // crypto/rand does not fail
	return &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: "Test Apple Device " + serial},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

func issue(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("test apple chain: %w", err)
	}
	return x509.ParseCertificate(der)
}
