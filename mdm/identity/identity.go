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
	"sync"
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
	Cert *x509.Certificate
	Hash string // hex SHA-256 of the DER

	record *storage.CertRecord // when the verifier read it for this request
	certs  CertLookup          // else where Record reads it
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

	// Both caches hold every device that connected, so they are compact:
	// keyed by the 32 bytes of the fingerprint, not its hex, and keeping
	// of an issuance record only what every request checks.
	mu      sync.Mutex
	chained map[[32]byte]bool      // chains to roots with client auth
	records map[[32]byte]certState // issued by us, until Forget
	epoch   uint64                 // counts ForgetAll: a record read before one is not kept
	through bool                   // ForgetAll(true): read every record from storage
}

// certState is what the verifier keeps of an issuance record.
type certState struct {
	serial  string // CertRecord.Serial, for Forget
	revoked bool
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
		chained: map[[32]byte]bool{}, records: map[[32]byte]certState{}}
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
	var signer *x509.Certificate
	var sum [32]byte
	var hash string
	if s.fast, err = parseDetached(der, v.parsed); err == nil {
		signer, sum, hash = s.fast.signer, s.fast.sum, s.fast.hexSum
	} else {
		if s.p7, err = parseCMS(der); err != nil {
			return nil, fail("bad_signature", "Mdm-Signature is not CMS: %v", err)
		}
		if signer = s.p7.GetOnlySigner(); signer == nil {
			return nil, fail("bad_signature", "Mdm-Signature must have exactly one signer with its certificate")
		}
		sum = sha256.Sum256(signer.Raw)
		hash = hex.EncodeToString(sum[:])
	}
	if s.id, err = v.verifyCert(ctx, signer, sum, hash); err != nil {
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
		if signer := p7.GetOnlySigner(); signer == nil || !bytes.Equal(signer.Raw, s.id.Cert.Raw) {
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
	return v.verifyCert(ctx, cert, sum, hex.EncodeToString(sum[:]))
}

// fingerprint is the hex SHA-256 of cert's DER.
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// verifyCert is VerifyCert with cert's SHA-256 (sum, and hash in hex)
// already known.
func (v *Verifier) verifyCert(ctx context.Context, cert *x509.Certificate, sum [32]byte, hash string) (*Identity, error) {
	now := v.now()
	if now.Add(v.skew).Before(cert.NotBefore) {
		return nil, fail("expired", "certificate is not valid yet")
	}
	if now.Add(-v.skew).After(cert.NotAfter) {
		return nil, fail("expired", "certificate expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !v.chainOK(sum, cert, now) {
		return nil, fail("untrusted", "certificate is not a client certificate issued by Orchard's CA")
	}
	st, rec, err := v.record(ctx, sum, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail("unknown_cert", "certificate %x was not issued by this server", cert.SerialNumber)
	}
	if err != nil {
		return nil, fmt.Errorf("identity: look up certificate: %w", err)
	}
	if st.revoked {
		return nil, fail("revoked", "certificate %s was revoked", st.serial)
	}
	return &Identity{Cert: cert, Hash: hash, record: rec, certs: v.certs}, nil
}

// maxCached bounds each per-certificate cache; past it the cache starts over.
const maxCached = 200_000

// record returns what the verifier keeps of a certificate's issuance
// record, cached (records change only by revocation, which must go
// through Forget), and the whole record when it had to read it.
func (v *Verifier) record(ctx context.Context, sum [32]byte, hash string) (certState, *storage.CertRecord, error) {
	v.mu.Lock()
	st, ok := v.records[sum]
	epoch := v.epoch
	v.mu.Unlock()
	if ok {
		return st, nil, nil
	}
	rec, err := v.certs.Cert(ctx, hash)
	if err != nil {
		return certState{}, nil, err
	}
	st = certState{serial: rec.Serial, revoked: rec.Revoked}
	v.mu.Lock()
	if v.through || v.epoch != epoch {
		v.mu.Unlock()
		return st, rec, nil
	}
	if len(v.records) >= maxCached {
		clear(v.records)
	}
	v.records[sum] = st
	v.mu.Unlock()
	return st, rec, nil
}

// Forget drops what the verifier cached of the certificate with this
// serial (hex, as in CertRecord.Serial). Call it after revoking one.
func (v *Verifier) Forget(serial string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for h, st := range v.records {
		if st.serial == serial {
			delete(v.records, h)
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
	v.epoch++
	v.through = readThrough
	clear(v.records)
}

func (v *Verifier) chainOK(sum [32]byte, cert *x509.Certificate, now time.Time) bool {
	v.mu.Lock()
	ok, seen := v.chained[sum]
	v.mu.Unlock()
	if seen {
		return ok
	}
	// Verify at a time inside the certificate's validity: expiry has its
	// own check above, with the clock skew allowance.
	at := now
	if at.Before(cert.NotBefore) {
		at = cert.NotBefore
	} else if at.After(cert.NotAfter) {
		at = cert.NotAfter
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       v.roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	ok = err == nil
	v.mu.Lock()
	if len(v.chained) >= maxCached {
		clear(v.chained) // bounded; refilled on demand
	}
	v.chained[sum] = ok
	v.mu.Unlock()
	return ok
}
