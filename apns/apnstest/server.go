// Package apnstest provides a fake APNs for tests, in the spirit of
// net/http/httptest: a real HTTP/2 TLS server on loopback that demands a
// trusted client certificate, checks each MDM push the way APNs would,
// records it, and answers with scripted APNs statuses, reasons and delays.
// It also makes fake MDM push certificates (see NewPushCert).
package apnstest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/mdm"
)

// maxPayload is APNs' payload limit for regular pushes.
const maxPayload = 4096

// MaxConcurrentStreams is the HTTP/2 stream limit the fake announces per
// connection, as APNs does.
const MaxConcurrentStreams = 1000

// Answer is what the fake replies to one push. The zero Answer is 200 OK.
type Answer struct {
	Status int           // HTTP status; 0 means 200
	Reason string        // APNs reason; "" picks the usual one for Status
	Delay  time.Duration // wait before answering (or until the client gives up)
}

// Common answers.
var (
	OK                  = Answer{Status: http.StatusOK}
	Unregistered        = Answer{Status: http.StatusGone, Reason: "Unregistered"}
	BadDeviceToken      = Answer{Status: http.StatusBadRequest, Reason: "BadDeviceToken"}
	TooManyRequests     = Answer{Status: http.StatusTooManyRequests, Reason: "TooManyRequests"}
	InternalServerError = Answer{Status: http.StatusInternalServerError, Reason: "InternalServerError"}
	ServiceUnavailable  = Answer{Status: http.StatusServiceUnavailable, Reason: "ServiceUnavailable"}
)

// Slow is a 200 answer sent after d.
func Slow(d time.Duration) Answer { return Answer{Delay: d} }

// Push is one request the fake received.
type Push struct {
	Token     []byte      // from the path; nil if the path was bad
	Topic     string      // apns-topic header
	PushMagic string      // from the payload; "" if the payload was bad
	Header    http.Header // all request headers
	At        time.Time   // when it arrived
	Status    int         // what the fake answered
	Reason    string      // APNs reason answered, "" on 200
}

// Server is a fake APNs. Create it with NewServer and Close it when done.
type Server struct {
	srv *httptest.Server

	conns       atomic.Int64 // TCP connections accepted
	received    atomic.Int64 // pushes that arrived, recorded or not
	noRecord    atomic.Bool
	inFlight    atomic.Int64
	maxInFlight atomic.Int64

	mu       sync.Mutex
	trusted  [][]byte            // raw DER of trusted client certificates
	scripts  map[string][]Answer // hex token -> next answers
	global   []Answer            // next answers for any token
	fallback Answer
	pushes   []Push
	onPush   func(Push)
}

// NewServer starts a fake APNs that trusts the given client certificates.
func NewServer(trusted ...*x509.Certificate) *Server {
	s := &Server{scripts: make(map[string][]Answer)}
	for _, c := range trusted {
		s.Trust(c)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	// APNs lets a provider connection carry about 1,000 streams at once;
	// Go's default (250) would make the fake slower than Apple.
	s.srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: MaxConcurrentStreams}
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	// The TLS layer only demands a certificate; the handler decides whether
	// it is trusted, so a wrong one gets APNs' 403 BadCertificate.
	s.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	s.srv.StartTLS()
	return s
}

// URL is the base URL to give the pusher (apns.WithBaseURL).
func (s *Server) URL() string { return s.srv.URL }

// RootCAs is a pool that trusts the fake's server certificate.
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// CertPEM is the fake's server certificate as PEM, for a server's
// --apns-ca flag.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// ClientTLSConfig is a client configuration that presents cert and trusts
// the fake.
func (s *Server) ClientTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: s.RootCAs(), NextProtos: []string{"h2"}}
}

// Close shuts the fake down.
func (s *Server) Close() { s.srv.Close() }

// Trust accepts pushes authenticated with c.
func (s *Server) Trust(c *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trusted = append(s.trusted, c.Raw)
}

// Script makes the next pushes to token get answers, in order; later
// pushes get the global script, then the default.
func (s *Server) Script(token []byte, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := hex.EncodeToString(token)
	s.scripts[k] = append(s.scripts[k], answers...)
}

// ScriptAll makes the next valid pushes to any token without a script of
// its own get answers, in order.
func (s *Server) ScriptAll(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.global = append(s.global, answers...)
}

// SetDefault sets the answer once scripts are used up (initially OK).
func (s *Server) SetDefault(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = a
}

// Received is how many pushes arrived, valid or not, recorded or not.
func (s *Server) Received() int { return int(s.received.Load()) }

// StopRecording makes the fake count pushes (Received) without keeping
// them (Pushes), so a load run of 100,000 pushes does not hold every
// request's headers.
func (s *Server) StopRecording() { s.noRecord.Store(true) }

// Connections is how many TCP connections clients have opened.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// MaxInFlight is the largest number of requests handled at once.
func (s *Server) MaxInFlight() int { return int(s.maxInFlight.Load()) }

// Pushes returns a copy of every request received so far.
func (s *Server) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// Reset forgets recorded pushes, scripts and the in-flight peak.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes, s.global, s.fallback = nil, nil, Answer{}
	s.maxInFlight.Store(0)
	s.received.Store(0)
	clear(s.scripts)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxInFlight.Load(); n > m && !s.maxInFlight.CompareAndSwap(m, n); m = s.maxInFlight.Load() {
	}
	p := Push{Topic: r.Header.Get("apns-topic"), At: time.Now()}
	if !s.noRecord.Load() { // a load run keeps no headers
		p.Header = r.Header.Clone()
	}
	a := s.check(r, &p)
	if a.Status == 0 { // the push is valid: use the script
		a = s.next(p.Token)
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	if a.Status != http.StatusOK && a.Reason == "" {
		a.Reason = defaultReason(a.Status)
	}
	p.Status, p.Reason = a.Status, a.Reason
	s.record(p)

	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	id := r.Header.Get("apns-id")
	if id == "" {
		id = mdm.NewUUID()
	}
	w.Header().Set("apns-id", id)
	if a.Status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	body := map[string]any{"reason": a.Reason}
	if a.Status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	_ = json.NewEncoder(w).Encode(body) // the client may have gone; nothing to do
}

// check validates the request as APNs would; a non-zero Status refuses it.
func (s *Server) check(r *http.Request, p *Push) Answer {
	if r.Method != http.MethodPost {
		return Answer{Status: http.StatusMethodNotAllowed, Reason: "MethodNotAllowed"}
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || !s.trusts(r.TLS.PeerCertificates[0]) {
		return Answer{Status: http.StatusForbidden, Reason: "BadCertificate"}
	}
	leaf := r.TLS.PeerCertificates[0]
	if time.Now().After(leaf.NotAfter) {
		return Answer{Status: http.StatusForbidden, Reason: "ExpiredCertificate"}
	}
	hexToken, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok {
		return Answer{Status: http.StatusNotFound, Reason: "BadPath"}
	}
	token, err := hex.DecodeString(hexToken)
	if err != nil || len(token) == 0 {
		return Answer{Status: http.StatusBadRequest, Reason: "BadDeviceToken"}
	}
	p.Token = token
	certTopic, err := apns.TopicFromCert(leaf)
	switch {
	case p.Topic == "":
		return Answer{Status: http.StatusBadRequest, Reason: "MissingTopic"}
	case err != nil || p.Topic != certTopic:
		return Answer{Status: http.StatusBadRequest, Reason: "TopicDisallowed"}
	}
	if pt := r.Header.Get("apns-push-type"); pt != "" && pt != "mdm" {
		return Answer{Status: http.StatusBadRequest, Reason: "InvalidPushType"}
	}
	if pr := r.Header.Get("apns-priority"); pr != "" && pr != "10" && pr != "5" {
		return Answer{Status: http.StatusBadRequest, Reason: "BadPriority"}
	}
	if ex := r.Header.Get("apns-expiration"); ex != "" {
		if _, err := strconv.ParseInt(ex, 10, 64); err != nil {
			return Answer{Status: http.StatusBadRequest, Reason: "BadExpirationDate"}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	switch {
	case err != nil:
		return Answer{Status: http.StatusBadRequest, Reason: "BadPayload"}
	case len(body) == 0:
		return Answer{Status: http.StatusBadRequest, Reason: "PayloadEmpty"}
	case len(body) > maxPayload:
		return Answer{Status: http.StatusRequestEntityTooLarge, Reason: "PayloadTooLarge"}
	}
	magic, ok := mdmPayload(body)
	if !ok {
		// Not an APNs reason: APNs would deliver it, but a device would
		// ignore anything other than {"mdm":"<PushMagic>"}.
		return Answer{Status: http.StatusBadRequest, Reason: "BadPayload"}
	}
	p.PushMagic = magic
	return Answer{}
}

// mdmPayload accepts exactly {"mdm":"<non-empty string>"}.
func mdmPayload(body []byte) (string, bool) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || dec.More() || len(m) != 1 {
		return "", false
	}
	var magic string
	if err := json.Unmarshal(m["mdm"], &magic); err != nil || magic == "" {
		return "", false
	}
	return magic, true
}

func (s *Server) trusts(c *x509.Certificate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range s.trusted {
		if bytes.Equal(raw, c.Raw) {
			return true
		}
	}
	return false
}

func (s *Server) next(token []byte) Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := hex.EncodeToString(token)
	if q := s.scripts[k]; len(q) > 0 {
		s.scripts[k] = q[1:]
		return q[0]
	}
	if len(s.global) > 0 {
		a := s.global[0]
		s.global = s.global[1:]
		return a
	}
	return s.fallback
}

func (s *Server) record(p Push) {
	s.received.Add(1)
	if s.noRecord.Load() {
		return
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	fn := s.onPush
	s.mu.Unlock()
	if fn != nil && p.Status == http.StatusOK {
		fn(p)
	}
}

// OnPush calls fn with every push answered 200, as APNs would deliver it to
// the device: the demo wakes its simulated devices this way. fn runs on the
// push's request; it must not block.
func (s *Server) OnPush(fn func(Push)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPush = fn
}

func defaultReason(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadDeviceToken"
	case http.StatusForbidden:
		return "BadCertificate"
	case http.StatusGone:
		return "Unregistered"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	return "InternalServerError"
}
