package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
	"github.com/smallstep/pkcs7"
)

// cmsSeed is one signature shape, with whether the fast path reads it.
type cmsSeed struct {
	name string
	der  []byte
	body []byte
	fast bool // the fast path reads it
	lib  bool // the library accepts it
}

func selfSigned(t testing.TB, key crypto.Signer) *x509.Certificate {
	t.Helper()
	cert, err := pki.SelfSigned(&x509.Certificate{
		SerialNumber: pki.RandomSerial(),
		Subject:      pkix.Name{CommonName: "device"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func libSign(t testing.TB, body []byte, cert *x509.Certificate, key crypto.Signer, edit func(*pkcs7.SignedData) error) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(sd); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// cmsSpec describes a SignedData built by hand, to reach shapes the
// library's signer never writes.
type cmsSpec struct {
	cert, issuer *x509.Certificate // issuer may be nil
	key          crypto.Signer
	digest       asn1.ObjectIdentifier // the SignerInfo's digest algorithm
	sigAlg       asn1.ObjectIdentifier // its signature algorithm
	hash         crypto.Hash           // the hash actually signed and digested
	noNull       bool                  // omit the NULL parameters
	unsorted     bool                  // signed attributes out of DER order
	signedAt     time.Time
	noAttrs      bool
	version      int // of the SignerInfo (default 1)
}

var (
	oidSHA256Digest = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncrypt   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)

// appleShaped signs as Apple devices do: SHA-256 and rsaEncryption, NULL
// parameters on the algorithms, the signer's certificate after its issuer.
func appleShaped(t testing.TB, body []byte, cert, issuer *x509.Certificate, key *rsa.PrivateKey, unsorted bool, signedAt time.Time) []byte {
	return buildCMS(t, body, cmsSpec{cert: cert, issuer: issuer, key: key, digest: oidSHA256Digest,
		sigAlg: oidRSAEncrypt, hash: crypto.SHA256, unsorted: unsorted, signedAt: signedAt})
}

func buildCMS(t testing.TB, body []byte, sp cmsSpec) []byte {
	t.Helper()
	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	type attr struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	var params asn1.RawValue
	if !sp.noNull {
		params = asn1.RawValue{Tag: asn1.TagNull}
	}
	digestID := algID{sp.digest, params}
	set := func(v any) asn1.RawValue {
		der, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: der}
	}
	digest := sp.hash.New()
	digest.Write(body)
	attrs := []attr{ // already in DER SET OF order
		{pkcs7.OIDAttributeContentType, set(pkcs7.OIDData)},
		{pkcs7.OIDAttributeSigningTime, set(sp.signedAt.UTC())},
		{pkcs7.OIDAttributeMessageDigest, set(digest.Sum(nil))},
	}
	signed := body
	if sp.noAttrs {
		attrs = nil
	} else {
		signedAttrs, err := asn1.Marshal(struct {
			A []attr `asn1:"set"`
		}{attrs})
		if err != nil {
			t.Fatal(err)
		}
		var outer asn1.RawValue
		if _, err := asn1.Unmarshal(signedAttrs, &outer); err != nil {
			t.Fatal(err)
		}
		signed = outer.Bytes
	}
	h := sp.hash.New()
	h.Write(signed)
	sig, err := sp.key.Sign(rand.Reader, h.Sum(nil), sp.hash)
	if err != nil {
		t.Fatal(err)
	}
	type signerInfo struct {
		Version int
		Issuer  struct {
			Name   asn1.RawValue
			Serial *big.Int
		}
		Digest    algID
		Attrs     []attr `asn1:"optional,omitempty,tag:0"`
		Algorithm algID
		Signature []byte
	}
	if sp.unsorted && len(attrs) == 3 {
		attrs[0], attrs[2] = attrs[2], attrs[0]
	}
	if sp.version == 0 {
		sp.version = 1
	}
	si := signerInfo{Version: sp.version, Digest: digestID, Attrs: attrs, Algorithm: algID{sp.sigAlg, params}, Signature: sig}
	si.Issuer.Name = asn1.RawValue{FullBytes: sp.cert.RawIssuer}
	si.Issuer.Serial = sp.cert.SerialNumber
	certs := sp.cert.Raw
	if sp.issuer != nil {
		certs = append(bytes.Clone(sp.issuer.Raw), sp.cert.Raw...)
	}
	sd, err := asn1.Marshal(struct {
		Version int
		Digests []algID `asn1:"set"`
		Content struct{ Type asn1.ObjectIdentifier }
		Certs   asn1.RawValue `asn1:"tag:0"`
		Signers []signerInfo  `asn1:"set"`
	}{
		Version: 1, Digests: []algID{digestID},
		Content: struct{ Type asn1.ObjectIdentifier }{pkcs7.OIDData},
		Certs:   asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		Signers: []signerInfo{si},
	})
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{pkcs7.OIDSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sd}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// indefinite re-encodes the outer SEQUENCE of der with an indefinite
// length: valid BER that the library reads and the fast path declines.
func indefinite(der []byte) []byte {
	s := der[2:]
	if der[1]&0x80 != 0 {
		s = der[2+int(der[1]&0x7f):]
	}
	out := append([]byte{0x30, 0x80}, s...)
	return append(out, 0, 0)
}

func cmsSeeds(t testing.TB) []cmsSeed {
	t.Helper()
	body := []byte("<plist><dict><key>Status</key><string>Idle</string></dict></plist>")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, ecCert := selfSigned(t, rsaKey), selfSigned(t, ecKey)
	// An issued certificate, for a signature carrying its chain.
	ca, err := pki.LoadOrCreateCA(t.(interface{ TempDir() string }).TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Sign(&x509.Certificate{SerialNumber: pki.RandomSerial(), Subject: pkix.Name{CommonName: "d"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}, rsaKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	sim, err := (&simdevice.Device{Cert: rsaCert, Key: rsaKey}).Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	simDER, _ := base64.StdEncoding.DecodeString(sim)
	detached := func(cert *x509.Certificate, key crypto.Signer, digest asn1.ObjectIdentifier) func(*pkcs7.SignedData) error {
		return func(sd *pkcs7.SignedData) error {
			if digest != nil {
				sd.SetDigestAlgorithm(digest)
			}
			sd.Detach()
			return sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{})
		}
	}
	return []cmsSeed{
		{"simdevice RSA SHA-1", simDER, body, true, true},
		{"Apple-shaped RSA SHA-256 with its issuer", appleShaped(t, body, issued, ca.Cert, rsaKey, false, time.Now()), body, true, true},
		{"signed attributes out of DER order", appleShaped(t, body, issued, ca.Cert, rsaKey, true, time.Now()), body, false, true},
		{"signing time before the certificate", appleShaped(t, body, issued, ca.Cert, rsaKey, false, issued.NotBefore.Add(-time.Hour)), body, true, false},
		{"RSA SHA-256", libSign(t, body, rsaCert, rsaKey, detached(rsaCert, rsaKey, pkcs7.OIDDigestAlgorithmSHA256)), body, true, true},
		{"RSA SHA-512", libSign(t, body, rsaCert, rsaKey, detached(rsaCert, rsaKey, pkcs7.OIDDigestAlgorithmSHA512)), body, true, true},
		{"ECDSA P-256 SHA-256", libSign(t, body, ecCert, ecKey, detached(ecCert, ecKey, pkcs7.OIDDigestAlgorithmSHA256)), body, true, true},
		{"ECDSA P-256 SHA-384", libSign(t, body, ecCert, ecKey, detached(ecCert, ecKey, pkcs7.OIDDigestAlgorithmSHA384)), body, true, true},
		{"without signed attributes", libSign(t, body, ecCert, ecKey, func(sd *pkcs7.SignedData) error {
			sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
			sd.Detach()
			return sd.SignWithoutAttr(ecCert, ecKey, pkcs7.SignerInfoConfig{})
		}), body, true, true},
		{"BER indefinite length", indefinite(simDER), body, false, true},
		{"trailing bytes", append(bytes.Clone(simDER), 0, 0), body, false, true},
		{"content embedded", libSign(t, body, rsaCert, rsaKey, func(sd *pkcs7.SignedData) error {
			return sd.AddSigner(rsaCert, rsaKey, pkcs7.SignerInfoConfig{})
		}), body, false, true},
		{"two signers", libSign(t, body, rsaCert, rsaKey, func(sd *pkcs7.SignedData) error {
			sd.Detach()
			if err := sd.AddSigner(rsaCert, rsaKey, pkcs7.SignerInfoConfig{}); err != nil {
				return err
			}
			return sd.AddSigner(ecCert, ecKey, pkcs7.SignerInfoConfig{})
		}), body, false, false},
		{"unsigned attribute", libSign(t, body, rsaCert, rsaKey, func(sd *pkcs7.SignedData) error {
			sd.Detach()
			return sd.AddSigner(rsaCert, rsaKey, pkcs7.SignerInfoConfig{
				ExtraUnsignedAttributes: []pkcs7.Attribute{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: "x"}}})
		}), body, false, true},
	}
}

// libraryVerdict is what smallstep/pkcs7 alone decides: the signer and
// whether the signature covers body.
func libraryVerdict(der, body []byte) (*x509.Certificate, bool) {
	p7, err := parseCMS(der)
	if err != nil {
		return nil, false
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, false
	}
	p7.Content = body
	return signer, p7.Verify() == nil
}

// checkAgainstLibrary fails when the fast path reads der to another signer
// or another verdict than the library.
func checkAgainstLibrary(t *testing.T, cache *certCache, der, body []byte) (read bool) {
	t.Helper()
	d, err := parseDetached(der, cache)
	if err != nil {
		return false
	}
	libSigner, libOK := libraryVerdict(der, body)
	if libSigner == nil || !bytes.Equal(libSigner.Raw, d.signer.der) {
		t.Fatalf("fast path read signer %x, the library %v", d.signer.sum, libSigner)
	}
	if fastErr := d.verify(body); (fastErr == nil) != libOK {
		t.Fatalf("fast path verdict %v, library accepts: %v", fastErr, libOK)
	}
	return true
}

func TestDetachedFastPath(t *testing.T) {
	cache := newCertCache(maxCachedCerts)
	for _, s := range cmsSeeds(t) {
		t.Run(s.name, func(t *testing.T) {
			if _, ok := libraryVerdict(s.der, s.body); ok != s.lib {
				t.Fatalf("the library accepts the seed: %v, want %v", ok, s.lib)
			}
			if read := checkAgainstLibrary(t, cache, s.der, s.body); read != s.fast {
				t.Fatalf("fast path read it: %v, want %v", read, s.fast)
			}
			tampered := append(bytes.Clone(s.body), ' ')
			if _, ok := libraryVerdict(s.der, tampered); ok {
				t.Fatal("the library accepts another body")
			}
			checkAgainstLibrary(t, cache, s.der, tampered)
		})
	}
}

// FuzzDetachedAgainstLibrary runs the fast path and the library on the same
// signatures and bodies: whenever the fast path reads a signature it must
// name the library's signer and reach the library's verdict.
func FuzzDetachedAgainstLibrary(f *testing.F) {
	for _, s := range cmsSeeds(f) {
		f.Add(s.der, s.body)
		f.Add(s.der, s.body[1:])
	}
	cache := newCertCache(64)
	f.Fuzz(func(t *testing.T, der, body []byte) {
		if len(der) > MaxSignatureLen {
			return
		}
		checkAgainstLibrary(t, cache, der, body)
	})
}

func TestCertCacheBounded(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cache := newCertCache(3)
	var first *x509.Certificate
	for i := range 5 {
		cert := selfSigned(t, key)
		e, err := cache.parse(cert.Raw)
		if err != nil || !bytes.Equal(e.der, cert.Raw) || !e.pub.(*ecdsa.PublicKey).Equal(cert.PublicKey) ||
			!e.notBefore.Equal(cert.NotBefore) || !e.notAfter.Equal(cert.NotAfter) || !bytes.Equal(e.issuer, cert.RawIssuer) ||
			e.sum != sha256.Sum256(cert.Raw) || e.hexSum != fingerprint(cert) || !e.stable {
			t.Fatalf("parse %d: %+v, %v", i, e, err)
		}
		if i == 0 {
			first = cert
		}
		if again, _ := cache.parse(cert.Raw); again != e {
			t.Fatal("a cached certificate was parsed again")
		}
		if n := len(cache.m); n > 3 {
			t.Fatalf("cache holds %d certificates, bound 3", n)
		}
	}
	// The cache keeps its own copy: a caller's buffer may be reused.
	buf := bytes.Clone(first.Raw)
	c, _ := cache.parse(buf)
	clear(buf)
	if c.der[0] != 0x30 || c.issuer[0] != 0x30 {
		t.Fatal("cached certificate shares the caller's buffer")
	}
	if _, err := cache.parse([]byte{0x30, 0}); err == nil {
		t.Fatal("garbage parsed as a certificate")
	}
}

// A refusal on the fast path is re-judged by the library: were the fast
// path ever wrong to refuse, the device would still be accepted.
func TestFastRefusalRejudged(t *testing.T) {
	s := cmsSeeds(t)[0]
	d, err := parseDetached(s.der, newCertCache(4))
	if err != nil {
		t.Fatal(err)
	}
	d.sig = bytes.Clone(d.sig)
	d.sig[0] ^= 0xff // the fast path now refuses every body
	sig := &Signature{der: s.der, fast: d, id: &Identity{Hash: d.signer.hexSum, der: d.signer.der}}
	if d.verify(s.body) == nil {
		t.Fatal("the damaged fast path still accepts")
	}
	if id, err := sig.Verify(s.body); err != nil || id != sig.id {
		t.Fatalf("the library's acceptance was lost: %v", err)
	}
	if _, err := sig.Verify(append(bytes.Clone(s.body), 'x')); err == nil {
		t.Fatal("another body accepted")
	}
}

// FuzzDetachedShapes builds signatures from fuzzed choices of algorithm
// identifiers (matching or not the key and the hash really used), NULL
// parameters, attribute order, signing time and SignerInfo version, and
// holds the fast path to the library on each.
func FuzzDetachedShapes(f *testing.F) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	keys := []crypto.Signer{rsaKey, ecKey}
	certs := []*x509.Certificate{selfSigned(f, rsaKey), selfSigned(f, ecKey)}
	digests := []asn1.ObjectIdentifier{pkcs7.OIDDigestAlgorithmSHA1, pkcs7.OIDDigestAlgorithmSHA256,
		pkcs7.OIDDigestAlgorithmSHA384, pkcs7.OIDDigestAlgorithmSHA512, pkcs7.OIDDigestAlgorithmSHA224,
		pkcs7.OIDDigestAlgorithmECDSASHA256, pkcs7.OIDEncryptionAlgorithmRSA}
	sigAlgs := []asn1.ObjectIdentifier{pkcs7.OIDEncryptionAlgorithmRSA, pkcs7.OIDEncryptionAlgorithmRSASHA1,
		pkcs7.OIDEncryptionAlgorithmRSASHA256, pkcs7.OIDEncryptionAlgorithmRSASHA512, pkcs7.OIDEncryptionAlgorithmRSAMD5,
		pkcs7.OIDDigestAlgorithmECDSASHA1, pkcs7.OIDDigestAlgorithmECDSASHA256, pkcs7.OIDDigestAlgorithmECDSASHA384,
		pkcs7.OIDEncryptionAlgorithmECDSAP256, pkcs7.OIDEncryptionAlgorithmECDSAP384, pkcs7.OIDDigestAlgorithmDSA}
	hashes := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}
	f.Add(uint8(0), uint8(1), uint8(0), uint8(1), uint8(0), int8(0), []byte("Idle"))
	f.Add(uint8(1), uint8(1), uint8(6), uint8(1), uint8(0), int8(0), []byte("Idle"))
	f.Add(uint8(1), uint8(0), uint8(6), uint8(1), uint8(0), int8(0), []byte("Idle"))
	f.Add(uint8(0), uint8(1), uint8(2), uint8(0), uint8(7), int8(-2), []byte("x"))
	f.Add(uint8(1), uint8(2), uint8(8), uint8(2), uint8(3), int8(3), []byte{})
	cache := newCertCache(8)
	f.Fuzz(func(t *testing.T, key, digest, sigAlg, hash, flags uint8, version int8, body []byte) {
		k := int(key) % len(keys)
		sp := cmsSpec{cert: certs[k], key: keys[k],
			digest: digests[int(digest)%len(digests)], sigAlg: sigAlgs[int(sigAlg)%len(sigAlgs)],
			hash: hashes[int(hash)%len(hashes)], noNull: flags&1 != 0, unsorted: flags&2 != 0,
			noAttrs: flags&4 != 0, signedAt: time.Now(), version: int(version)}
		if flags&8 != 0 {
			sp.signedAt = certs[k].NotAfter.Add(time.Duration(version) * time.Second)
		}
		der := buildCMS(t, body, sp)
		checkAgainstLibrary(t, cache, der, body)
		checkAgainstLibrary(t, cache, der, append(bytes.Clone(body), 0))
	})
}
