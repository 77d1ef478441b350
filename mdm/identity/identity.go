// Package identity decides who a device request comes from: it verifies the
// device identity certificate (from the Mdm-Signature CMS signature or the
// TLS client certificate) against Orchard's CA and issuance records. Binding
// the certificate to an enrollment is the service's job, not this package's.
package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchardmdm/orchard/storage"
	"github.com/smallstep/pkcs7"
)

// ErrIdentity is wrapped by every identity failure; Reason says which.
var ErrIdentity = errors.New("device identity refused")

// Error is an identity failure with a metric-friendly reason.
type Error struct {
	Reason string // missing, bad_signature, untrusted, expired, revoked, unknown_cert, client_auth
	Detail string
}

func (e *Error) Error() string { return "device identity refused: " + e.Reason + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrIdentity) true.
func (e *Error) Unwrap() error { return ErrIdentity }

func fail(reason, format string, args ...any) error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Identity is a verified device certificate.
type Identity struct {
	Hash string // hex SHA-256 of the DER

	// The certificate: parsed, or its DER until Cert is first called (the
	// fast path keeps no parsed certificates; most requests need none).
	cert atomic.Pointer[x509.Certificate]
	der  []byte

	record *storage.CertRecord // when the verifier read it for this request
	certs  CertLookup          // else where Record reads it
}

// New is the identity of cert, whose fingerprint is hash, for a caller
// that verified cert itself (tests of what comes after the verifier).
func New(cert *x509.Certificate, hash string) *Identity {
	id := &Identity{Hash: hash}
	id.cert.Store(cert)
	return id
}

// Cert returns the certificate, parsed on the first call when the
// verifier read it on the fast path. Callers must not modify it.
func (id *Identity) Cert() (*x509.Certificate, error) {
	if c := id.cert.Load(); c != nil {
		return c, nil
	}
	c, err := x509.ParseCertificate(id.der)
	if err != nil { // it was parsed before: not expected
		return nil, fmt.Errorf("identity: parse the device certificate again: %w", err)
	}
	id.cert.Store(c)
	return c, nil
}

// raw is the certificate's DER.
func (id *Identity) raw() []byte {
	if c := id.cert.Load(); c != nil {
		return c.Raw
	}
	return id.der
}

// Record returns the certificate's issuance record. The verifier keeps
// only what it checks on every request (known, revoked), not whole
// records of every device, so Record may read storage: call it where the
// record matters (Authenticate), not on every connect.
func (id *Identity) Record(ctx context.Context) (*storage.CertRecord, error) {
	if id.record != nil || id.certs == nil {
		return id.record, nil
	}
	return id.certs.Cert(ctx, id.Hash)
}

// CertLookup is what the verifier needs from storage.
type CertLookup interface {
	Cert(ctx context.Context, hash string) (*storage.CertRecord, error)
}

// DefaultClockSkew tolerates device clocks a little ahead of or behind ours.
const DefaultClockSkew = 5 * time.Minute

// Verifier checks device certificates. It caches chain verification per
// certificate; expiry and revocation are checked on every request.
type Verifier struct {
	roots  *x509.CertPool
	certs  CertLookup
	parsed *certCache // certificates from Mdm-Signature, by DER hash
	skew   time.Duration
	now    func() time.Time

	// known holds every device that connected, so it is compact: one
	// entry of some 50 bytes per certificate, keyed by the 32 bytes of
	// the fingerprint, not its hex, with the chain verdict and of the
	// issuance record only what every request checks.
	mu      sync.Mutex
	known   map[[32]byte]certState
	seed    maphash.Seed // of certState.serial
	epoch   uint64       // counts ForgetAll: a record state read before one is not used or kept
	through bool         // ForgetAll(true): read every record from storage
}

// certState is what the verifier keeps of a certificate.
type certState struct {
	// serial is CertRecord.Serial hashed, for Forget: a collision only
	// forgets more than asked.
	serial uint64
	epoch  uint64 // Verifier.epoch when the record was read
	flags  certFlags
}

type certFlags uint8

const (
	chainKnown  certFlags = 1 << iota // the chain was verified: chainOK says how
	chainOK                           // chains to roots with client auth
	recordKnown                       // issued by us (at epoch): revoked says how it stands
	revoked
)

// hasRecord reports whether st holds the issuance record's state, read at
// the verifier's current epoch.
func (st certState) hasRecord(epoch uint64) bool {
	return st.flags&recordKnown != 0 && st.epoch == epoch
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithClockSkew sets the tolerated clock skew.
func WithClockSkew(d time.Duration) Option { return func(v *Verifier) { v.skew = d } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// NewVerifier trusts certificates issued under roots and recorded in certs.
func NewVerifier(roots *x509.CertPool, certs CertLookup, opts ...Option) (*Verifier, error) {
	if roots == nil || certs == nil {
		return nil, errors.New("identity: roots and cert records are required")
	}
	v := &Verifier{roots: roots, certs: certs, parsed: newCertCache(maxCachedCerts), skew: DefaultClockSkew, now: time.Now,
		known: map[[32]byte]certState{}, seed: maphash.MakeSeed()}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// MaxSignatureLen bounds the Mdm-Signature header before decoding.
const MaxSignatureLen = 16 << 10

// VerifySignature checks an Mdm-Signature header (base64 CMS detached
// signature) over body and returns the signer's identity.
func (v *Verifier) VerifySignature(ctx context.Context, body []byte, header string) (*Identity, error) {
	sig, err := v.VerifySigner(ctx, header)
	if err != nil {
		return nil, err
	}
	return sig.Verify(body)
}

// Signature is an Mdm-Signature whose signer certificate is verified but
// whose signature over the body is not yet: it lets a server refuse an
// unknown signer before reading the body the signature covers.
type Signature struct {
	der  []byte
	fast *detached    // read on the DER fast path, or
	p7   *pkcs7.PKCS7 // read by the library
	id   *Identity
}

// Signer is the verified signer; it speaks for the body only after Verify.
func (s *Signature) Signer() *Identity { return s.id }

// VerifySigner parses an Mdm-Signature header and checks its signer's
// certificate as VerifyCert does. Verify must follow once the body is read.
func (v *Verifier) VerifySigner(ctx context.Context, header string) (*Signature, error) {
	if header == "" {
		return nil, fail("missing", "no Mdm-Signature header and no client certificate")
	}
	if len(header) > MaxSignatureLen {
		return nil, fail("bad_signature", "Mdm-Signature too long")
	}
	der, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return nil, fail("bad_signature", "Mdm-Signature is not base64")
	}
	s := &Signature{der: der}
	if s.fast, err = parseDetached(der, v.parsed); err == nil {
		c := s.fast.signer
		s.id = &Identity{Hash: c.hexSum, der: c.der}
		err = v.verifyCert(ctx, s.id, c.sum, c.notBefore, c.notAfter)
	} else {
		if s.p7, err = parseCMS(der); err != nil {
			return nil, fail("bad_signature", "Mdm-Signature is not CMS: %v", err)
		}
		signer := s.p7.GetOnlySigner()
		if signer == nil {
			return nil, fail("bad_signature", "Mdm-Signature must have exactly one signer with its certificate")
		}
		s.id, err = v.VerifyCert(ctx, signer)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Verify checks the signature over body and returns the signer's identity.
func (s *Signature) Verify(body []byte) (*Identity, error) {
	if s.fast != nil {
		if s.fast.verify(body) == nil {
			return s.id, nil
		}
		// The library has the last word on a refusal: never refuse what
		// it would accept. Its signer must be the one already verified.
		p7, err := parseCMS(s.der)
		if err != nil {
			return nil, fail("bad_signature", "Mdm-Signature is not CMS: %v", err)
		}
		if signer := p7.GetOnlySigner(); signer == nil || !bytes.Equal(signer.Raw, s.id.raw()) {
			return nil, fail("bad_signature", "Mdm-Signature signer is ambiguous")
		}
		s.p7 = p7
	}
	s.p7.Content = body
	if err := s.p7.Verify(); err != nil {
		return nil, fail("bad_signature", "signature does not match the body: %v", err)
	}
	return s.id, nil
}

// parseCMS guards the parser: a malformed signature must never crash the server.
func parseCMS(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("malformed CMS")
		}
	}()
	return pkcs7.Parse(der)
}

// VerifyCert checks a certificate presented by a device (the CMS signer or
// the TLS client certificate).
func (v *Verifier) VerifyCert(ctx context.Context, cert *x509.Certificate) (*Identity, error) {
	sum := sha256.Sum256(cert.Raw)
	id := New(cert, hex.EncodeToString(sum[:]))
	if err := v.verifyCert(ctx, id, sum, cert.NotBefore, cert.NotAfter); err != nil {
		return nil, err
	}
	return id, nil
}

// fingerprint is the hex SHA-256 of cert's DER.
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// verifyCert checks id's certificate (SHA-256 sum, valid from notBefore
// to notAfter) as VerifyCert does, and fills in what it read of its
// issuance record.
func (v *Verifier) verifyCert(ctx context.Context, id *Identity, sum [32]byte, notBefore, notAfter time.Time) error {
	now := v.now()
	if now.Add(v.skew).Before(notBefore) {
		return fail("expired", "certificate is not valid yet")
	}
	if now.Add(-v.skew).After(notAfter) {
		return fail("expired", "certificate expired at %s", notAfter.UTC().Format(time.RFC3339))
	}
	if !v.chainOK(sum, id, now) {
		return fail("untrusted", "certificate is not a client certificate issued by Orchard's CA")
	}
	isRevoked, rec, err := v.record(ctx, sum, id.Hash)
	if errors.Is(err, storage.ErrNotFound) {
		return fail("unknown_cert", "certificate %s was not issued by this server", id.serial())
	}
	if err != nil {
		return fmt.Errorf("identity: look up certificate: %w", err)
	}
	if isRevoked {
		return fail("revoked", "certificate %s was revoked", id.serial())
	}
	id.record, id.certs = rec, v.certs
	return nil
}

// serial is the certificate's serial number in hex, for refusals.
func (id *Identity) serial() string {
	c, err := id.Cert()
	if err != nil {
		return "(unreadable)"
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}

// maxCached bounds the per-certificate cache; past it the cache starts over.
const maxCached = 200_000

// record reports whether the certificate was revoked, from the cache
// (records change only by revocation, which must go through Forget), and
// returns the whole issuance record when it had to read it.
func (v *Verifier) record(ctx context.Context, sum [32]byte, hash string) (bool, *storage.CertRecord, error) {
	v.mu.Lock()
	st := v.known[sum]
	epoch := v.epoch
	v.mu.Unlock()
	if st.hasRecord(epoch) {
		return st.flags&revoked != 0, nil, nil
	}
	rec, err := v.certs.Cert(ctx, hash)
	if err != nil {
		return false, nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.through || v.epoch != epoch {
		return rec.Revoked, rec, nil
	}
	v.trim()
	st = v.known[sum] // the chain verdict, kept
	st.serial, st.epoch = maphash.String(v.seed, rec.Serial), epoch
	st.flags = st.flags&^revoked | recordKnown
	if rec.Revoked {
		st.flags |= revoked
	}
	v.known[sum] = st
	return rec.Revoked, rec, nil
}

// trim starts the cache over once it is full; v.mu is held.
func (v *Verifier) trim() {
	if len(v.known) >= maxCached {
		clear(v.known) // bounded; refilled on demand
	}
}

// Forget drops what the verifier cached of the issuance record of the
// certificate with this serial (hex, as in CertRecord.Serial). Call it
// after revoking one.
func (v *Verifier) Forget(serial string) {
	h := maphash.String(v.seed, serial)
	v.mu.Lock()
	defer v.mu.Unlock()
	for sum, st := range v.known {
		if st.flags&recordKnown != 0 && st.serial == h {
			st.flags &^= recordKnown | revoked
			v.known[sum] = st
		}
	}
}

// ForgetAll drops every cached issuance record, for revocations another
// replica made. With readThrough the verifier also stops caching records
// until the next ForgetAll without it: for when revocations may have been
// missed.
func (v *Verifier) ForgetAll(readThrough bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.epoch++ // every record state read before is now unknown
	v.through = readThrough
}

func (v *Verifier) chainOK(sum [32]byte, id *Identity, now time.Time) bool {
	v.mu.Lock()
	st := v.known[sum]
	v.mu.Unlock()
	if st.flags&chainKnown != 0 {
		return st.flags&chainOK != 0
	}
	cert, err := id.Cert()
	if err != nil {
		return false
	}
	// Verify at a time inside the certificate's validity: expiry has its
	// own check above, with the clock skew allowance.
	at := now
	if at.Before(cert.NotBefore) {
		at = cert.NotBefore
	} else if at.After(cert.NotAfter) {
		at = cert.NotAfter
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	ok := err == nil
	v.mu.Lock()
	v.trim()
	st = v.known[sum] // a record state read meanwhile, kept
	st.flags |= chainKnown
	if ok {
		st.flags |= chainOK
	}
	v.known[sum] = st
	v.mu.Unlock()
	return ok
}
