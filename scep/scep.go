// Package scep owns device identity certificates: Orchard's SCEP service
// (GetCACaps, GetCACert, PKIOperation) that signs certificates with the
// pki.CA, and the challenges that authorize it. Only a PKCSReq carrying a
// valid challenge, or a RenewalReq signed by a valid Orchard certificate,
// is ever signed; everything else gets a SCEP failure and nothing is issued.
package scep

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/smallstep/pkcs7"
	scep "github.com/smallstep/scep"
)

func init() {
	// RFC 8894 makes AES-128-CBC mandatory to implement; DES (the library
	// default) is broken. Requests in any supported cipher still decrypt.
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC
}

// Store is what the SCEP service needs from storage.
type Store interface {
	Challenge(ctx context.Context, id string) (*storage.Challenge, error)
	RedeemChallenge(ctx context.Context, id string, hash []byte, now time.Time, cert *storage.CertRecord) (*storage.Challenge, error)
	Cert(ctx context.Context, hash string) (*storage.CertRecord, error)
	PutCert(ctx context.Context, rec *storage.CertRecord) error
}

// Outcome labels: "issued" or a refusal reason, for metrics.
const (
	OutcomeIssued           = "issued"
	ReasonMalformed         = "malformed_message"
	ReasonUnsupportedType   = "unsupported_message_type"
	ReasonBadCSR            = "bad_csr"
	ReasonWeakKey           = "weak_key"
	ReasonChallengeInvalid  = "challenge_invalid"
	ReasonChallengeUsed     = "challenge_used"
	ReasonChallengeExpired  = "challenge_expired"
	ReasonChallengeRevoked  = "challenge_revoked"
	ReasonRenewalForeign    = "renewal_foreign_cert"
	ReasonRenewalRevoked    = "renewal_revoked_cert"
	ReasonRenewalExpired    = "renewal_expired_cert"
	ReasonInternal          = "internal_error"
	ReasonRateLimited       = "rate_limited"
	maxMessageBytes         = 256 << 10
	defaultValidity         = 365 * 24 * time.Hour
	clockSkewAllowance      = 5 * time.Minute
	contentTypePKIMessage   = "application/x-pki-message"
	contentTypeCACert       = "application/x-x509-ca-cert"
	capabilities            = "AES\nPOSTPKIOperation\nRenewal\nSHA-256\nSCEPStandard\n"
	challengePasswordMaxLen = 256
)

// Server is the SCEP endpoint. It is an http.Handler for /scep.
type Server struct {
	ca       *pki.CA
	store    Store
	log      *slog.Logger
	now      func() time.Time
	validity time.Duration
	observe  func(outcome, kind string)
	limit    Limiter
	refusals RefusalRecorder

	mu     sync.Mutex
	counts map[string]uint64
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithValidity sets how long issued certificates are valid (default one year).
func WithValidity(d time.Duration) Option { return func(s *Server) { s.validity = d } }

// WithObserver receives every PKIOperation outcome: OutcomeIssued or a
// Reason*, and the authorization kind ("" when refused before one was known).
// The lead maps it to a Prometheus counter.
func WithObserver(fn func(outcome, kind string)) Option { return func(s *Server) { s.observe = fn } }

// Limiter rations PKIOperations per source address. Only wrong challenges
// spend, so a fleet enrolling from behind one NAT is never slowed by its
// own successes (internal/ratelimit provides one).
type Limiter interface {
	Check(key string) (retryAfter time.Duration, ok bool)
	Spend(key string)
}

// WithLimiter answers 429 to a source whose wrong challenges used up l's
// budget, before its message is even read.
func WithLimiter(l Limiter) Option { return func(s *Server) { s.limit = l } }

// Refusal is one certificate request refused for its challenge, for the
// enrollment-failures report. It never holds the challenge secret.
type Refusal struct {
	At     time.Time
	Reason string // ReasonChallengeInvalid, ReasonChallengeUsed, ReasonChallengeExpired or ReasonChallengeRevoked
	Source string // the source address (ratelimit.SourceKey)
	// What the challenge named was issued for, when Orchard issued one by
	// that ID (a wrong secret still names it).
	Kind, Ref, User, ForUDID, ForSerial string
}

// RefusalRecorder is told of every challenge refusal. It is called on the
// request's path, before any authentication: it must be quick and bound
// what it keeps, whatever the number of calls.
type RefusalRecorder interface {
	SCEPRefused(Refusal)
}

// WithRefusals tells r of every request refused for its challenge.
func WithRefusals(r RefusalRecorder) Option { return func(s *Server) { s.refusals = r } }

// New returns a SCEP server signing with ca and recording into store.
func New(ca *pki.CA, store Store, opts ...Option) (*Server, error) {
	if ca == nil || ca.Cert == nil || ca.Signer == nil {
		return nil, errors.New("scep: a CA is required")
	}
	if _, ok := ca.Signer.(crypto.Decrypter); !ok {
		return nil, errors.New("scep: the CA key must decrypt (RSA)")
	}
	if store == nil {
		return nil, errors.New("scep: a store is required")
	}
	s := &Server{ca: ca, store: store, log: slog.New(slog.DiscardHandler), now: time.Now,
		validity: defaultValidity, counts: map[string]uint64{}}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil || s.now == nil || s.validity <= 0 {
		return nil, errors.New("scep: invalid option (nil logger or clock, or non-positive validity)")
	}
	return s, nil
}

// Counts returns how many PKIOperations ended in each outcome so far.
func (s *Server) Counts() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

func (s *Server) record(outcome, kind string) {
	s.mu.Lock()
	s.counts[outcome]++
	s.mu.Unlock()
	if s.observe != nil {
		s.observe(outcome, kind)
	}
}

// ServeHTTP answers GET and POST /scep?operation=...
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.URL.Query().Get("operation")
	switch {
	case op == "GetCACaps" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, capabilities)
	case op == "GetCACert" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", contentTypeCACert)
		w.Write(s.ca.Cert.Raw)
	case op == "PKIOperation" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		key := ratelimit.SourceKey(r)
		if s.limit != nil {
			if wait, ok := s.limit.Check(key); !ok {
				s.record(ReasonRateLimited, "")
				w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
				http.Error(w, "too many wrong challenges from this address; retry later", http.StatusTooManyRequests)
				return
			}
		}
		raw, err := readMessage(w, r)
		if err != nil {
			s.record(ReasonMalformed, "")
			status := http.StatusBadRequest
			if errors.Is(err, errTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, err.Error(), status)
			return
		}
		reply, status, outcome := s.pkiOperation(r.Context(), raw, key)
		if outcome == ReasonChallengeInvalid && s.limit != nil {
			s.limit.Spend(key)
		}
		if status != http.StatusOK {
			http.Error(w, string(reply), status)
			return
		}
		w.Header().Set("Content-Type", contentTypePKIMessage)
		w.Write(reply)
	case op == "GetCACaps" || op == "GetCACert" || op == "PKIOperation":
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed for "+op, http.StatusMethodNotAllowed)
	default:
		http.Error(w, "unknown or missing SCEP operation", http.StatusBadRequest)
	}
}

// errTooLarge marks a message over maxMessageBytes (413, not 400).
var errTooLarge = fmt.Errorf("SCEP message larger than %d bytes", maxMessageBytes)

func readMessage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method == http.MethodPost {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMessageBytes))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, errTooLarge
		case err != nil:
			return nil, errors.New("SCEP message unreadable")
		}
		return data, nil
	}
	msg := r.URL.Query().Get("message")
	if len(msg) > maxMessageBytes*4/3+4 {
		return nil, errTooLarge
	}
	if msg == "" {
		return nil, errors.New("missing message parameter")
	}
	// A '+' not percent-encoded arrives as a space.
	msg = strings.ReplaceAll(msg, " ", "+")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if data, err := enc.DecodeString(msg); err == nil {
			return data, nil
		}
	}
	return nil, errors.New("message parameter is not base64")
}

// refusal is why a request gets a SCEP failure.
type refusal struct {
	reason string
	info   scep.FailInfo
	err    error
	// challenge: refused for its challenge; claimed is the challenge
	// stored under the ID it named, nil when none.
	challenge bool
	claimed   *storage.Challenge
}

func (r *refusal) Error() string { return r.reason + ": " + r.err.Error() }

func refuse(reason string, info scep.FailInfo, format string, args ...any) *refusal {
	return &refusal{reason: reason, info: info, err: fmt.Errorf(format, args...)}
}

// PKIOperation handles one SCEP PKI message and returns the reply body and
// HTTP status. Authorization failures are CertRep failures with status 200
// (as SCEP requires); undecodable messages are 400.
func (s *Server) PKIOperation(ctx context.Context, raw []byte) ([]byte, int) {
	reply, status, _ := s.pkiOperation(ctx, raw, "")
	return reply, status
}

// pkiOperation is PKIOperation from a source address that also returns
// the outcome recorded.
func (s *Server) pkiOperation(ctx context.Context, raw []byte, source string) ([]byte, int, string) {
	msg, p7, ref, err := decode(raw)
	if err != nil {
		s.record(ReasonMalformed, "")
		s.log.Info("scep: refused undecodable message", "err", err)
		return []byte("malformed SCEP message"), http.StatusBadRequest, ReasonMalformed
	}
	var (
		cert *x509.Certificate
		kind string
	)
	if ref == nil {
		cert, kind, ref = s.authorizeAndIssue(ctx, msg, p7)
	}
	var reply *scep.PKIMessage
	outcome := OutcomeIssued
	if ref != nil {
		outcome = ref.reason
		s.record(ref.reason, kind)
		s.log.Info("scep: refused", "reason", ref.reason, "message_type", string(msg.MessageType), "err", ref.err)
		if ref.challenge && s.refusals != nil {
			x := Refusal{At: s.now(), Reason: ref.reason, Source: source}
			if ch := ref.claimed; ch != nil {
				x.Kind, x.Ref, x.User, x.ForUDID, x.ForSerial = ch.Kind, ch.Ref, ch.User, ch.ForUDID, ch.ForSerial
			}
			s.refusals.SCEPRefused(x)
		}
		reply, err = msg.Fail(s.ca.Cert, s.ca.Signer, ref.info)
	} else {
		s.record(OutcomeIssued, kind)
		s.log.Info("scep: issued certificate", "kind", kind, "serial", SerialString(cert), "subject", cert.Subject.String())
		reply, err = msg.Success(s.ca.Cert, s.ca.Signer, cert)
	}
	if err != nil {
		s.log.Error("scep: build reply", "err", err)
		return []byte("could not build SCEP reply"), http.StatusInternalServerError, ReasonInternal
	}
	return reply.Raw, http.StatusOK, outcome
}

var (
	oidSCEPmessageType   = []int{2, 16, 840, 1, 113733, 1, 9, 2}
	oidSCEPsenderNonce   = []int{2, 16, 840, 1, 113733, 1, 9, 5}
	oidSCEPtransactionID = []int{2, 16, 840, 1, 113733, 1, 9, 7}
)

// decode parses and verifies a PKI message. A message the library will
// not parse (unknown or unimplemented type, signer outside its validity)
// but whose SCEP attributes are readable still gets a failure reply: it
// comes back with the refusal to send and no usable p7.
func decode(raw []byte) (msg *scep.PKIMessage, p7 *pkcs7.PKCS7, ref *refusal, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, p7, ref, err = nil, nil, nil, fmt.Errorf("decoder panic: %v", p)
		}
	}()
	if len(raw) == 0 {
		return nil, nil, nil, errors.New("empty message")
	}
	p7, err = pkcs7.Parse(raw)
	if err != nil {
		return nil, nil, nil, err
	}
	if p7.GetOnlySigner() == nil {
		return nil, nil, nil, errors.New("message must have exactly one signer with its certificate")
	}
	msg, err = scep.ParsePKIMessage(raw)
	if err == nil {
		return msg, p7, nil, nil
	}
	var timeErr *pkcs7.SigningTimeNotValidError
	switch verr := p7.Verify(); {
	case errors.As(verr, &timeErr):
		ref = refuse(ReasonRenewalExpired, scep.BadTime, "signer certificate not valid at signing time")
	case verr != nil:
		return nil, nil, nil, verr
	default:
		ref = refuse(ReasonUnsupportedType, scep.BadRequest, "message type not accepted")
	}
	fallback := &scep.PKIMessage{Raw: raw}
	if p7.UnmarshalSignedAttribute(oidSCEPtransactionID, &fallback.TransactionID) != nil ||
		p7.UnmarshalSignedAttribute(oidSCEPmessageType, &fallback.MessageType) != nil ||
		p7.UnmarshalSignedAttribute(oidSCEPsenderNonce, &fallback.SenderNonce) != nil ||
		len(fallback.SenderNonce) == 0 || fallback.MessageType == scep.CertRep {
		return nil, nil, nil, err
	}
	return fallback, nil, ref, nil
}

// authorizeAndIssue decides, signs and records. It returns the
// authorization kind for metrics.
func (s *Server) authorizeAndIssue(ctx context.Context, msg *scep.PKIMessage, p7 *pkcs7.PKCS7) (*x509.Certificate, string, *refusal) {
	switch msg.MessageType {
	case scep.PKCSReq, scep.RenewalReq:
	default:
		// UpdateReq included: Orchard has no authorization rule for it, so
		// it is never parsed as a certificate request.
		return nil, "", refuse(ReasonUnsupportedType, scep.BadRequest, "message type %q is not accepted", string(msg.MessageType))
	}
	signer := p7.GetOnlySigner()
	if _, ok := signer.PublicKey.(*rsa.PublicKey); !ok {
		// The reply is encrypted to the signer's certificate, which needs RSA.
		return nil, "", refuse(ReasonBadCSR, scep.BadAlg, "signer certificate key is not RSA")
	}
	now := s.now()
	var renewed *storage.CertRecord
	if msg.MessageType == scep.RenewalReq {
		rec, ref := s.checkRenewalSigner(ctx, signer, now)
		if ref != nil {
			return nil, storage.KindRenewal, ref
		}
		renewed = rec
	}
	if err := msg.DecryptPKIEnvelope(s.ca.Cert, s.ca.Signer); err != nil {
		return nil, "", refuse(ReasonMalformed, scep.BadMessageCheck, "decrypt request: %w", err)
	}
	csr := msg.CSRReqMessage.CSR
	if err := checkCSR(csr); err != nil {
		reason := ReasonBadCSR
		if errors.Is(err, errWeakKey) {
			reason = ReasonWeakKey
		}
		return nil, "", refuse(reason, scep.BadRequest, "%w", err)
	}

	if renewed != nil {
		auth := storage.CertAuthorization{Kind: storage.KindRenewal, Ref: renewed.Authorization.Ref,
			ForUDID: renewed.Authorization.ForUDID, ForSerial: renewed.Authorization.ForSerial, RenewalOf: renewed.Hash}
		cert, rec, err := s.sign(csr.PublicKey, auth, now)
		if err == nil {
			err = s.store.PutCert(ctx, rec)
		}
		if err != nil {
			return nil, storage.KindRenewal, refuse(ReasonInternal, scep.BadRequest, "issue renewal: %w", err)
		}
		return cert, storage.KindRenewal, nil
	}

	secret := msg.CSRReqMessage.ChallengePassword
	id, ok := challengeID(secret)
	if !ok || len(secret) > challengePasswordMaxLen {
		return nil, "", challengeRefusal(storage.ErrChallengeInvalid, nil)
	}
	hash := ChallengeHash(secret)
	ch, err := s.store.Challenge(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		err = storage.ErrChallengeInvalid
	}
	if err == nil {
		err = ch.Check(hash, now)
	}
	if err != nil {
		return nil, "", challengeRefusal(err, ch)
	}
	auth := storage.CertAuthorization{Kind: ch.Kind, ChallengeID: ch.ID, Ref: ch.Ref, ForUDID: ch.ForUDID, ForSerial: ch.ForSerial,
		AppleVerified: ch.AppleVerified, RenewalOf: ch.RenewalOf, User: ch.User, ForCategory: ch.ForCategory,
		ForSession: ch.ForSession}
	cert, rec, err := s.sign(csr.PublicKey, auth, now)
	if err != nil {
		return nil, ch.Kind, refuse(ReasonInternal, scep.BadRequest, "sign: %w", err)
	}
	// Checked above; the redeem re-checks in the same write that records the
	// certificate, so of two concurrent users of a single-use challenge only
	// one gets a certificate (the loser's is never recorded nor returned).
	if _, err := s.store.RedeemChallenge(ctx, id, hash, now, rec); err != nil {
		return nil, ch.Kind, challengeRefusal(err, ch)
	}
	return cert, ch.Kind, nil
}

// challengeRefusal is the refusal of a challenge that check or redeem
// refused with err; ch is the challenge stored under its ID (or nil).
func challengeRefusal(err error, ch *storage.Challenge) *refusal {
	reason := ReasonInternal
	switch {
	case errors.Is(err, storage.ErrChallengeInvalid):
		reason = ReasonChallengeInvalid
	case errors.Is(err, storage.ErrChallengeUsed):
		reason = ReasonChallengeUsed
	case errors.Is(err, storage.ErrChallengeExpired):
		reason = ReasonChallengeExpired
	case errors.Is(err, storage.ErrChallengeRevoked):
		reason = ReasonChallengeRevoked
	}
	r := refuse(reason, scep.BadRequest, "%w", err)
	r.challenge, r.claimed = reason != ReasonInternal, ch
	return r
}

// checkRenewalSigner accepts only a valid, unrevoked certificate this CA
// issued and Orchard recorded.
func (s *Server) checkRenewalSigner(ctx context.Context, signer *x509.Certificate, now time.Time) (*storage.CertRecord, *refusal) {
	if err := signer.CheckSignatureFrom(s.ca.Cert); err != nil {
		return nil, refuse(ReasonRenewalForeign, scep.BadCertID, "renewal signer not issued by Orchard's CA")
	}
	rec, err := s.store.Cert(ctx, pki.Fingerprint(signer))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, refuse(ReasonRenewalForeign, scep.BadCertID, "renewal signer is not a recorded Orchard certificate")
	}
	if err != nil {
		return nil, refuse(ReasonInternal, scep.BadRequest, "look up renewal signer: %w", err)
	}
	if rec.Revoked {
		return nil, refuse(ReasonRenewalRevoked, scep.BadCertID, "renewal signer %s is revoked", rec.Serial)
	}
	if now.Before(signer.NotBefore) || !now.Before(signer.NotAfter) || !now.Before(rec.NotAfter) {
		return nil, refuse(ReasonRenewalExpired, scep.BadTime, "renewal signer %s is not valid now", rec.Serial)
	}
	return rec, nil
}

var errWeakKey = errors.New("key too weak")

// checkCSR verifies the CSR's self-signature and key strength. Nothing
// else of the CSR (subject, SANs, extensions) is used.
func checkCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return errors.New("no certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("certificate request signature: %w", err)
	}
	return CheckKey(csr.PublicKey)
}

// CheckKey accepts RSA keys of 2048 to 8192 bits and P-256/P-384/P-521 keys.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Errorf("%w: RSA %d bits, need at least 2048", errWeakKey, n)
		} else if n > 8192 {
			return fmt.Errorf("RSA key of %d bits is too large", n)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("%w: unsupported curve", errWeakKey)
	}
	return fmt.Errorf("%w: unsupported key type %T", errWeakKey, pub)
}

// sign issues a device identity certificate whose subject and extensions
// Orchard chooses; nothing is copied from the request but its key.
func (s *Server) sign(pub crypto.PublicKey, auth storage.CertAuthorization, now time.Time) (*x509.Certificate, *storage.CertRecord, error) {
	serial := pki.RandomSerial()
	subject := pkix.Name{Organization: []string{"Orchard"}}
	switch {
	case auth.ForUDID != "":
		subject.CommonName = "Orchard device " + auth.ForUDID
	case auth.ForSerial != "":
		subject.CommonName = "Orchard device " + auth.ForSerial
	default:
		subject.CommonName = "Orchard device " + serial.Text(16)[:min(12, len(serial.Text(16)))]
	}
	subject.SerialNumber = auth.ForSerial
	notBefore := now.Add(-clockSkewAllowance)
	tmpl := pki.DeviceTemplate(serial, subject, pub, notBefore, notBefore.Add(s.validity))
	cert, err := s.ca.Sign(tmpl, pub)
	if err != nil {
		return nil, nil, err
	}
	return cert, &storage.CertRecord{
		Hash: pki.Fingerprint(cert), Serial: SerialString(cert), Subject: cert.Subject.String(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IssuedAt: now, Authorization: auth,
	}, nil
}

// SerialString is the form CertRecord.Serial and RevokeCert use:
// lowercase hex without leading zeros.
func SerialString(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }
