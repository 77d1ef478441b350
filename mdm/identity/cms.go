package identity

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The DER fast path. smallstep/pkcs7 re-encodes every signature from BER to
// DER and parses it by reflection, certificates included, which was most of
// the CPU of an idle connect. The shape Apple devices (and most signers)
// send is plain DER, so parseDetached reads exactly that shape with
// cryptobyte and takes the signer's certificate from a cache. It only ever
// says "mine" for input the library parses to the same signer with the same
// verdict; anything else (BER, CRLs, unknown algorithms or attributes,
// trailing bytes, SignerInfo v3...) is declined and goes to the library.
// FuzzDetachedAgainstLibrary holds the two to this.

// Exact DER of the object identifiers the fast path knows.
var (
	oidSignedData   = mustOID(1, 2, 840, 113549, 1, 7, 2)
	oidData         = mustOID(1, 2, 840, 113549, 1, 7, 1)
	oidContentType  = mustOID(1, 2, 840, 113549, 1, 9, 3)
	oidMsgDigest    = mustOID(1, 2, 840, 113549, 1, 9, 4)
	oidSigningTime  = mustOID(1, 2, 840, 113549, 1, 9, 5)
	oidSMIMECaps    = mustOID(1, 2, 840, 113549, 1, 9, 15)
	oidAlgProtect   = mustOID(1, 2, 840, 113549, 1, 9, 52)
	oidSHA1         = mustOID(1, 3, 14, 3, 2, 26)
	oidSHA256       = mustOID(2, 16, 840, 1, 101, 3, 4, 2, 1)
	oidSHA384       = mustOID(2, 16, 840, 1, 101, 3, 4, 2, 2)
	oidSHA512       = mustOID(2, 16, 840, 1, 101, 3, 4, 2, 3)
	oidRSA          = mustOID(1, 2, 840, 113549, 1, 1, 1)
	oidRSASHA1      = mustOID(1, 2, 840, 113549, 1, 1, 5)
	oidRSASHA256    = mustOID(1, 2, 840, 113549, 1, 1, 11)
	oidRSASHA384    = mustOID(1, 2, 840, 113549, 1, 1, 12)
	oidRSASHA512    = mustOID(1, 2, 840, 113549, 1, 1, 13)
	oidECDSASHA1    = mustOID(1, 2, 840, 10045, 4, 1)
	oidECDSASHA256  = mustOID(1, 2, 840, 10045, 4, 3, 2)
	oidECDSASHA384  = mustOID(1, 2, 840, 10045, 4, 3, 3)
	oidECDSASHA512  = mustOID(1, 2, 840, 10045, 4, 3, 4)
	oidCurveP256    = mustOID(1, 2, 840, 10045, 3, 1, 7)
	oidCurveP384    = mustOID(1, 3, 132, 0, 34)
	oidCurveP521    = mustOID(1, 3, 132, 0, 35)
	knownSignedAttr = [][]byte{oidContentType, oidMsgDigest, oidSigningTime, oidSMIMECaps, oidAlgProtect}
)

// mustOID returns the content octets of an OBJECT IDENTIFIER.
func mustOID(arcs ...int) []byte {
	der, err := asn1.Marshal(asn1.ObjectIdentifier(arcs))
	if err != nil {
		panic(err)
	}
	return der[2:]
}

var errDeclined = errors.New("not the DER shape the fast path reads")

// Bounds on what the fast path reads; larger input goes to the library.
const (
	maxCMSCerts = 8
	maxDERDepth = 32
)

// detached is a detached SignedData with one signer, read on the fast path.
type detached struct {
	signer *cachedCert
	hash   crypto.Hash
	sigAlg x509.SignatureAlgorithm
	sig    []byte
	// With signed attributes: the DER the signature covers (the attributes
	// as a SET) and the raw values of message-digest and signing-time.
	attrs       []byte
	digest      []byte
	signingTime []byte
}

// parseDetached reads der on the fast path or returns errDeclined.
func parseDetached(der []byte, certs *certCache) (*detached, error) {
	if !derStable(der, 0, certs.stableAt) {
		return nil, errDeclined
	}
	in := cryptobyte.String(der)
	var ci, oid, explicit, sd cryptobyte.String
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !bytes.Equal(oid, oidSignedData) ||
		!ci.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!explicit.ReadASN1(&sd, cbasn1.SEQUENCE) || !explicit.Empty() {
		return nil, errDeclined
	}
	var version, algs, inner cryptobyte.String
	if !sd.ReadASN1(&version, cbasn1.INTEGER) || !bytes.Equal(version, []byte{1}) ||
		!sd.ReadASN1(&algs, cbasn1.SET) {
		return nil, errDeclined
	}
	for !algs.Empty() {
		var alg cryptobyte.String
		if !algs.ReadASN1(&alg, cbasn1.SEQUENCE) {
			return nil, errDeclined
		}
		if _, ok := digestAlgorithm(alg); !ok {
			return nil, errDeclined
		}
	}
	// Detached: the encapsulated content is Data, with no content.
	if !sd.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
		!bytes.Equal(oid, oidData) || !inner.Empty() {
		return nil, errDeclined
	}
	var rawCerts cryptobyte.String
	if !sd.ReadASN1(&rawCerts, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errDeclined
	}
	var list [maxCMSCerts]*cachedCert
	n := 0
	for !rawCerts.Empty() {
		var one cryptobyte.String
		if n == maxCMSCerts || !rawCerts.ReadASN1Element(&one, cbasn1.SEQUENCE) {
			return nil, errDeclined
		}
		c, err := certs.parse(one)
		if err != nil {
			return nil, errDeclined
		}
		list[n] = c
		n++
	}
	var infos, si cryptobyte.String
	if !sd.ReadASN1(&infos, cbasn1.SET) || !sd.Empty() || // no CRLs
		!infos.ReadASN1(&si, cbasn1.SEQUENCE) || !infos.Empty() { // one signer
		return nil, errDeclined
	}
	var ias, issuer, serial, digestAlg, encAlg, sig cryptobyte.String
	if !si.ReadASN1(&version, cbasn1.INTEGER) || !bytes.Equal(version, []byte{1}) ||
		!si.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadAnyASN1Element(&issuer, nil) ||
		!ias.ReadASN1(&serial, cbasn1.INTEGER) || !minimalInteger(serial) || !ias.Empty() ||
		!si.ReadASN1(&digestAlg, cbasn1.SEQUENCE) {
		return nil, errDeclined
	}
	d := &detached{}
	var ok bool
	if d.hash, ok = digestAlgorithm(digestAlg); !ok {
		return nil, errDeclined
	}
	if tag := cbasn1.Tag(0).Constructed().ContextSpecific(); si.PeekASN1Tag(tag) {
		var attrs cryptobyte.String
		if !si.ReadASN1Element(&attrs, tag) || !d.readAttrs(attrs) {
			return nil, errDeclined
		}
	}
	if !si.ReadASN1(&encAlg, cbasn1.SEQUENCE) || !si.ReadASN1(&sig, cbasn1.OCTET_STRING) || !si.Empty() {
		return nil, errDeclined // unsigned attributes included
	}
	if d.sigAlg, ok = signatureAlgorithm(encAlg, d.hash); !ok {
		return nil, errDeclined
	}
	d.sig = sig
	for _, p := range list[:n] {
		// Both serials are minimal two's complement (cryptobyte and x509
		// refuse others), so equal bytes are equal numbers.
		if p.serial != nil && bytes.Equal(p.serial, serial) && bytes.Equal(p.issuer, issuer) {
			d.signer = p
			return d, nil
		}
	}
	return nil, errDeclined
}

// readAttrs reads the signed attributes (the whole [0] element).
func (d *detached) readAttrs(elem cryptobyte.String) bool {
	var set cryptobyte.String
	if e := elem; !e.ReadASN1(&set, cbasn1.Tag(0).Constructed().ContextSpecific()) || set.Empty() {
		return false
	}
	var prev []byte
	seen := 0
	for !set.Empty() {
		var one, attr, typ, values cryptobyte.String
		// The library signs its own DER re-encoding, which sorts the SET
		// OF: only input already in that order is signed as received.
		if !set.ReadASN1Element(&one, cbasn1.SEQUENCE) || bytes.Compare(prev, one) > 0 {
			return false
		}
		prev = one
		if !one.ReadASN1(&attr, cbasn1.SEQUENCE) ||
			!attr.ReadASN1(&typ, cbasn1.OBJECT_IDENTIFIER) || !attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return false
		}
		i := 0
		for i < len(knownSignedAttr) && !bytes.Equal(typ, knownSignedAttr[i]) {
			i++
		}
		if i == len(knownSignedAttr) || seen&(1<<i) != 0 {
			return false // unknown or repeated
		}
		seen |= 1 << i
		switch i {
		case 1:
			d.digest = values
		case 2:
			d.signingTime = values
		}
	}
	if d.digest == nil {
		return false
	}
	d.attrs = bytes.Clone(elem)
	d.attrs[0] = 0x31 // signed as a SET, not as the [0] it is sent in
	return true
}

// verify checks the signature over body as the library's Verify does.
func (d *detached) verify(body []byte) error {
	signed := body
	if d.attrs != nil {
		// The value is one OCTET STRING, as asn1.Unmarshal into []byte
		// reads it (trailing values ignored), without its allocations.
		want, ok := readOctetString(d.digest)
		if !ok {
			return errors.New("message digest is not an OCTET STRING")
		}
		h := d.hash.New()
		h.Write(body)
		var sum [64]byte
		if subtle.ConstantTimeCompare(want, h.Sum(sum[:0])) != 1 {
			return errors.New("message digest mismatch")
		}
		if d.signingTime != nil {
			if at, err := parseSigningTime(d.signingTime); err == nil &&
				(at.After(d.signer.notAfter) || at.Before(d.signer.notBefore)) {
				return errors.New("signing time is outside the certificate's validity")
			}
		}
		signed = d.attrs
	}
	// The cache keeps only the signer's public key, not its parsed
	// certificate; a certificate holding just that key checks the
	// signature with the library's own rules (on the stack: no copy kept).
	c := x509.Certificate{PublicKey: d.signer.pub}
	return c.CheckSignature(d.sigAlg, signed, d.sig)
}

// digestAlgorithm reads an AlgorithmIdentifier of a digest Apple devices use.
func digestAlgorithm(alg cryptobyte.String) (crypto.Hash, bool) {
	oid, ok := algorithm(alg)
	switch {
	case !ok:
		return 0, false
	case bytes.Equal(oid, oidSHA1):
		return crypto.SHA1, true
	case bytes.Equal(oid, oidSHA256):
		return crypto.SHA256, true
	case bytes.Equal(oid, oidSHA384):
		return crypto.SHA384, true
	case bytes.Equal(oid, oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// signatureAlgorithm maps the SignerInfo's signature algorithm as the
// library does: an ECDSA-with-hash OID names its own hash; RSA and an EC
// curve OID take the digest algorithm's.
func signatureAlgorithm(alg cryptobyte.String, digest crypto.Hash) (x509.SignatureAlgorithm, bool) {
	oid, ok := algorithm(alg)
	if !ok {
		return 0, false
	}
	switch {
	case bytes.Equal(oid, oidECDSASHA1):
		return x509.ECDSAWithSHA1, true
	case bytes.Equal(oid, oidECDSASHA256):
		return x509.ECDSAWithSHA256, true
	case bytes.Equal(oid, oidECDSASHA384):
		return x509.ECDSAWithSHA384, true
	case bytes.Equal(oid, oidECDSASHA512):
		return x509.ECDSAWithSHA512, true
	case bytes.Equal(oid, oidRSA), bytes.Equal(oid, oidRSASHA1), bytes.Equal(oid, oidRSASHA256),
		bytes.Equal(oid, oidRSASHA384), bytes.Equal(oid, oidRSASHA512):
		return byDigest(digest, x509.SHA1WithRSA, x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA), true
	case bytes.Equal(oid, oidCurveP256), bytes.Equal(oid, oidCurveP384), bytes.Equal(oid, oidCurveP521):
		return byDigest(digest, x509.ECDSAWithSHA1, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512), true
	}
	return 0, false
}

func byDigest(h crypto.Hash, sha1, sha256, sha384, sha512 x509.SignatureAlgorithm) x509.SignatureAlgorithm {
	switch h {
	case crypto.SHA1:
		return sha1
	case crypto.SHA256:
		return sha256
	case crypto.SHA384:
		return sha384
	}
	return sha512
}

// algorithm reads an AlgorithmIdentifier's OID; parameters must be absent
// or NULL.
func algorithm(alg cryptobyte.String) ([]byte, bool) {
	var oid cryptobyte.String
	if !alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, false
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return nil, false
		}
	}
	return oid, true
}

// derStable reports whether b is one DER element, definite lengths in
// minimal form and low tag numbers throughout, whose every constructed
// element holds only whole elements: input the library's BER-to-DER pass
// returns unchanged, so both parsers see the same bytes. known, when set,
// may vouch for an element at the depth certificates sit in a SignedData,
// so a cached certificate is not walked again on every request.
func derStable(b []byte, depth int, known func(elem []byte, depth int) bool) bool {
	if depth > maxDERDepth {
		return false
	}
	if known != nil && depth == certDepth && known(b, depth) {
		return true
	}
	s := cryptobyte.String(b)
	var content cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&content, &tag) || !s.Empty() || b[0]&0x1f == 0x1f {
		return false
	}
	if tag&0x20 == 0 {
		return true
	}
	for !content.Empty() {
		var child cryptobyte.String
		if !content.ReadAnyASN1Element(&child, nil) || !derStable(child, depth+1, known) {
			return false
		}
	}
	return true
}

// certDepth is where certificates sit in a ContentInfo: SEQUENCE, [0],
// SignedData, certificates [0], certificate.
const certDepth = 4

// derHeight is the number of nesting levels of b (1 for a primitive
// element), which derStable has accepted.
func derHeight(b []byte) int {
	s := cryptobyte.String(b)
	var content cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&content, &tag) || tag&0x20 == 0 {
		return 1
	}
	h := 1
	for !content.Empty() {
		var child cryptobyte.String
		if !content.ReadAnyASN1Element(&child, nil) {
			break
		}
		h = max(h, 1+derHeight(child))
	}
	return h
}

// minimalInteger reports whether b is the content of an INTEGER that
// cryptobyte's ReadASN1Integer accepts: not empty, no redundant leading
// byte.
func minimalInteger(b []byte) bool {
	switch {
	case len(b) == 0:
		return false
	case len(b) == 1:
		return true
	}
	return !(b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 == 0x80)
}

// rawSerial is the content of the serial INTEGER in a certificate's TBS,
// or nil when it cannot be read (the signer then never matches here).
func rawSerial(rawTBS []byte) []byte {
	tbs := cryptobyte.String(rawTBS)
	var inner, serial cryptobyte.String
	if !tbs.ReadASN1(&inner, cbasn1.SEQUENCE) ||
		!inner.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!inner.ReadASN1(&serial, cbasn1.INTEGER) || !minimalInteger(serial) {
		return nil
	}
	return serial
}

// readOctetString reads the OCTET STRING at the start of b.
func readOctetString(b []byte) ([]byte, bool) {
	s := cryptobyte.String(b)
	var v cryptobyte.String
	if !s.ReadASN1(&v, cbasn1.OCTET_STRING) {
		return nil, false
	}
	return v, true
}

// parseSigningTime reads the time at the start of b as asn1.Unmarshal
// does. The shape devices send, a UTCTime of YYMMDDHHMMSSZ, is read
// directly (asn1 first tries a format without seconds, and pays for the
// error on every request); anything else goes to asn1.
func parseSigningTime(b []byte) (time.Time, error) {
	if len(b) >= 15 && b[0] == 0x17 && b[1] == 13 && b[14] == 'Z' {
		if t, ok := utcTime(b[2:14]); ok {
			return t, nil
		}
	}
	var at time.Time
	_, err := asn1.Unmarshal(b, &at)
	return at, err
}

// utcTime reads YYMMDDHHMMSS (UTC) when every field is in range; years
// 50-99 are 19xx, as in RFC 5280 and encoding/asn1.
func utcTime(d []byte) (time.Time, bool) {
	var f [6]int
	for i := range f {
		hi, lo := d[2*i], d[2*i+1]
		if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
			return time.Time{}, false
		}
		f[i] = int(hi-'0')*10 + int(lo-'0')
	}
	year := 2000 + f[0]
	if f[0] >= 50 {
		year -= 100
	}
	month, day, hour, minute, sec := f[1], f[2], f[3], f[4], f[5]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // past the month's last day
		return time.Time{}, false
	}
	return t, true
}

// maxCachedCerts bounds the certificate cache. An entry, the DER and the
// public key, is some 1.5 KiB, and outlives a device's connection sequence
// (a few requests within seconds) by far: past the bound, one entry is
// evicted per new certificate. What must be kept for every connected
// device (the chain verdict, the issuance record's state) the Verifier
// keeps apart, by fingerprint, in some 50 bytes.
const maxCachedCerts = 4096

// certCache holds what requests need of certificates by their DER, so a
// device's certificate is parsed, hashed and walked once, not on every
// request. It keeps no parsed *x509.Certificate (some 3 KiB more each):
// the rare caller that needs one has the DER parsed again (Identity.Cert).
type certCache struct {
	max int
	mu  sync.Mutex
	m   map[string]*cachedCert // keyed by the DER (the entry's own copy)
}

// cachedCert is what requests need of a certificate.
type cachedCert struct {
	der       []byte           // the certificate; the map key shares it
	pub       crypto.PublicKey // for the signature on the fast path
	notBefore time.Time
	notAfter  time.Time
	issuer    []byte   // RawIssuer (in der)
	serial    []byte   // the serial INTEGER's content (in der)
	sum       [32]byte // SHA-256 of der
	hexSum    string   // the same, in hex
	height    int      // DER nesting levels, for derStable's depth bound
	stable    bool     // derStable accepts the DER on its own
}

func newCertCache(max int) *certCache {
	return &certCache{max: max, m: map[string]*cachedCert{}}
}

func (c *certCache) get(der []byte) *cachedCert {
	c.mu.Lock()
	e := c.m[string(der)] // no copy: the compiler looks up in place
	c.mu.Unlock()
	return e
}

// stableAt vouches for a cached certificate at depth: derStable accepted
// it when it was cached and its depth bound holds there.
func (c *certCache) stableAt(der []byte, depth int) bool {
	e := c.get(der)
	return e != nil && e.stable && depth+e.height-1 <= maxDERDepth
}

// parse returns what requests need of der, a certificate
// x509.ParseCertificate accepts, from the cache when it can.
func (c *certCache) parse(der []byte) (*cachedCert, error) {
	if e := c.get(der); e != nil {
		return e, nil
	}
	// A copy: the entry keeps slices of its input, which is the request's
	// buffer.
	raw := bytes.Clone(der)
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return nil, err
	}
	e := &cachedCert{der: raw, pub: cert.PublicKey, notBefore: cert.NotBefore, notAfter: cert.NotAfter,
		issuer: cert.RawIssuer, serial: rawSerial(cert.RawTBSCertificate), sum: sha256.Sum256(raw), stable: derStable(raw, 0, nil)}
	e.hexSum = hex.EncodeToString(e.sum[:])
	if e.stable {
		e.height = derHeight(raw) // bounded: derStable walked it
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict one, arbitrary
			delete(c.m, k)
			break
		}
	}
	// The key shares raw, which nothing writes to once parsed.
	c.m[unsafe.String(unsafe.SliceData(raw), len(raw))] = e
	c.mu.Unlock()
	return e, nil
}
