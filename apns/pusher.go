package apns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"golang.org/x/net/http2"
)

// APNs endpoints for certificate-based providers.
const (
	ProductionURL = "https://api.push.apple.com"
	SandboxURL    = "https://api.sandbox.push.apple.com"
)

// assumedStreams is the stream limit golang.org/x/net/http2 assumes for a
// new connection before the server's SETTINGS arrive.
const assumedStreams = 100

// idleConnTimeout is how long an unused connection to APNs stays open.
const idleConnTimeout = 10 * time.Minute

// Defaults for a Pusher; see the matching options.
const (
	DefaultConcurrency = 100
	DefaultTimeout     = 10 * time.Second
	DefaultExpiration  = 72 * time.Hour
	DefaultAttempts    = 4
	DefaultBaseDelay   = 250 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
)

// maxErrorBody bounds how much of an APNs error body is read.
const maxErrorBody = 4 << 10

// Notification is one MDM wake-up: push {"mdm":PushMagic} to Token.
type Notification struct {
	Token     []byte // device token from TokenUpdate (raw bytes)
	PushMagic string // PushMagic from TokenUpdate
	Topic     string // push topic; "" uses the certificate's topic
	ID        string // caller's key (e.g. enrollment ID), copied to the Result
}

// Result is the outcome of one Notification.
type Result struct {
	ID           string    // Notification.ID
	Token        []byte    // Notification.Token, so callers need not carry it in ID
	Sent         bool      // APNs accepted the push (200)
	TokenInvalid bool      // token is dead for this topic: stop pushing until a new TokenUpdate
	Status       int       // HTTP status of the last answer, 0 if none
	Reason       string    // APNs reason or local error; "" when Sent
	APNsID       string    // apns-id of the last answer
	At           time.Time // when the last attempt finished
	Attempts     int       // HTTP requests made
}

// Pusher sends MDM pushes to APNs over one HTTP/2 client. It is safe for
// concurrent use.
type Pusher struct {
	client      *http.Client
	baseURL     string
	topic       string
	concurrency int
	timeout     time.Duration
	expiration  time.Duration
	attempts    int
	baseDelay   time.Duration
	maxDelay    time.Duration
	roots       *x509.CertPool
	log         *slog.Logger

	// lastAnswer is when APNs last answered (UnixNano; 0 never): a recent
	// answer means a connection that knows the server's stream limit.
	lastAnswer atomic.Int64
}

// Option configures a Pusher.
type Option func(*Pusher) error

// WithBaseURL sends to url instead of the production endpoint (proxies, tests).
func WithBaseURL(url string) Option {
	return func(p *Pusher) error {
		if !strings.HasPrefix(url, "https://") {
			return fmt.Errorf("apns: base URL %q must be https", url)
		}
		p.baseURL = strings.TrimRight(url, "/")
		return nil
	}
}

// WithSandbox sends to the APNs development endpoint.
func WithSandbox() Option { return WithBaseURL(SandboxURL) }

// WithConcurrency bounds the number of pushes in flight (default 100).
func WithConcurrency(n int) Option {
	return func(p *Pusher) error {
		if n < 1 {
			return fmt.Errorf("apns: concurrency %d must be at least 1", n)
		}
		p.concurrency = n
		return nil
	}
}

// WithRetry sets how many attempts a push gets on 429, 5xx and network
// errors, and the exponential backoff (with jitter) between them.
func WithRetry(attempts int, baseDelay, maxDelay time.Duration) Option {
	return func(p *Pusher) error {
		if attempts < 1 || baseDelay < 0 || maxDelay < baseDelay {
			return fmt.Errorf("apns: bad retry policy (attempts %d, delays %s..%s)", attempts, baseDelay, maxDelay)
		}
		p.attempts, p.baseDelay, p.maxDelay = attempts, baseDelay, maxDelay
		return nil
	}
}

// WithTimeout bounds each HTTP request, answer included (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(p *Pusher) error {
		if d <= 0 {
			return fmt.Errorf("apns: timeout %s must be positive", d)
		}
		p.timeout = d
		return nil
	}
}

// WithExpiration sets how long APNs keeps trying to deliver (default 72h).
func WithExpiration(d time.Duration) Option {
	return func(p *Pusher) error {
		if d <= 0 {
			return fmt.Errorf("apns: expiration %s must be positive", d)
		}
		p.expiration = d
		return nil
	}
}

// WithRootCAs trusts roots for the APNs server certificate instead of the
// system pool (for a fake APNs or a TLS-intercepting proxy).
func WithRootCAs(roots *x509.CertPool) Option {
	return func(p *Pusher) error {
		if roots == nil {
			return errors.New("apns: nil root pool")
		}
		p.roots = roots
		return nil
	}
}

// WithLogger logs through l (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(p *Pusher) error {
		if l == nil {
			return errors.New("apns: nil logger")
		}
		p.log = l
		return nil
	}
}

// NewPusher returns a Pusher that authenticates to APNs with cert. The
// default topic comes from the certificate's UID when it has one.
func NewPusher(cert tls.Certificate, opts ...Option) (*Pusher, error) {
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, errors.New("apns: push certificate and key are required")
	}
	p := &Pusher{
		baseURL:     ProductionURL,
		concurrency: DefaultConcurrency,
		timeout:     DefaultTimeout,
		expiration:  DefaultExpiration,
		attempts:    DefaultAttempts,
		baseDelay:   DefaultBaseDelay,
		maxDelay:    DefaultMaxDelay,
		log:         slog.Default(),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("apns: nil option")
		}
		if err := o(p); err != nil {
			return nil, err
		}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if l, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			leaf = l
		}
	}
	p.topic, _ = TopicFromCert(leaf) // "" means each Notification names its topic

	// golang.org/x/net/http2 (already required by apns2) rather than
	// net/http's Transport: its pool dials once for concurrent first
	// requests, so a burst within the stream limit shares ONE connection.
	p.client = &http.Client{Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      p.roots,
			MinVersion:   tls.VersionTLS12,
		},
		// Not strict: beyond the server's stream limit (APNs starts some
		// connections at 1) open another connection instead of queueing;
		// strict mode left queued requests hanging until their timeout.
		StrictMaxConcurrentStreams: false,
		IdleConnTimeout:            idleConnTimeout,
		ReadIdleTimeout:            time.Minute,
		PingTimeout:                15 * time.Second,
	}}
	return p, nil
}

// Topic is the default topic, taken from the push certificate.
func (p *Pusher) Topic() string { return p.topic }

// Close releases idle connections.
func (p *Pusher) Close() {
	p.lastAnswer.Store(0)
	p.client.CloseIdleConnections()
}

// Push sends every notification, at most the configured number in flight,
// and returns one Result per notification in the same order. It returns
// when all are done or ctx ends (the rest then carry ctx's error).
func (p *Pusher) Push(ctx context.Context, ns []Notification) []Result {
	results := make([]Result, len(ns))
	first := 0
	if p.concurrency > assumedStreams && len(ns) > assumedStreams && !p.warm() {
		// Until a connection has the server's SETTINGS, the HTTP/2 client
		// assumes 100 streams and dials more connections for a larger
		// burst. One push ahead of the burst sets the real limit (APNs
		// allows 1,000), so the burst shares one connection; it costs one
		// round trip, and only when no connection is likely open.
		results[0] = p.pushOne(ctx, &ns[0])
		first = 1
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(p.concurrency, len(ns)-first) {
		wg.Go(func() {
			for i := range jobs {
				results[i] = p.pushOne(ctx, &ns[i])
			}
		})
	}
	for i := first; i < len(ns); i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	var sent, invalid int
	for i := range results {
		if results[i].Sent {
			sent++
		} else if results[i].TokenInvalid {
			invalid++
		}
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "apns push batch",
		slog.Int("total", len(ns)), slog.Int("sent", sent), slog.Int("token_invalid", invalid),
		slog.Int("failed", len(ns)-sent-invalid))
	return results
}

// warm reports whether APNs answered recently enough (within half the idle
// connection timeout) that a connection with its SETTINGS is still open.
func (p *Pusher) warm() bool {
	last := p.lastAnswer.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < idleConnTimeout/2
}

// verdict classifies one APNs answer.
type verdict int

const (
	vSent verdict = iota
	vInvalidToken
	vRetry
	vFail
)

// pushOne logs each failure at debug level only: one failed push per
// device of a large fleet would flood the log; Push logs the batch totals
// and callers (internal/push) aggregate reasons.
func (p *Pusher) pushOne(ctx context.Context, n *Notification) Result {
	res := Result{ID: n.ID, Token: n.Token}
	topic := n.Topic
	if topic == "" {
		topic = p.topic
	}
	switch {
	case len(n.Token) == 0:
		res.Reason = "empty device token"
	case n.PushMagic == "":
		res.Reason = "empty push magic"
	case topic == "":
		res.Reason = "no topic: certificate has none and the notification names none"
	}
	if res.Reason != "" {
		res.At = time.Now()
		return res
	}
	body, err := json.Marshal(struct {
		MDM string `json:"mdm"`
	}{n.PushMagic})
	if err != nil { // cannot happen for a string; handled for completeness
		res.Reason, res.At = "encode payload: "+err.Error(), time.Now()
		return res
	}
	url := p.baseURL + "/3/device/" + hex.EncodeToString(n.Token)
	expiry := strconv.FormatInt(time.Now().Add(p.expiration).Unix(), 10)
	// One apns-id for every attempt: a retry after a lost answer is the
	// same notification to APNs, not another one.
	id := newAPNsID()

	for {
		res.Attempts++
		v := p.attempt(ctx, url, topic, expiry, id, body, &res)
		res.At = time.Now()
		switch v {
		case vSent:
			res.Sent, res.Reason = true, ""
			return res
		case vInvalidToken:
			res.TokenInvalid = true
			p.log.LogAttrs(ctx, slog.LevelDebug, "apns token invalid",
				slog.String("id", n.ID), slog.String("token", RedactToken(n.Token)), slog.String("reason", res.Reason))
			return res
		case vFail:
			p.log.LogAttrs(ctx, slog.LevelDebug, "apns push failed",
				slog.String("id", n.ID), slog.String("token", RedactToken(n.Token)),
				slog.Int("status", res.Status), slog.String("reason", res.Reason))
			return res
		}
		if res.Attempts >= p.attempts || ctx.Err() != nil {
			p.log.LogAttrs(ctx, slog.LevelDebug, "apns push gave up",
				slog.String("id", n.ID), slog.String("token", RedactToken(n.Token)),
				slog.Int("attempts", res.Attempts), slog.Int("status", res.Status), slog.String("reason", res.Reason))
			return res
		}
		select {
		case <-ctx.Done():
			res.Reason = ctx.Err().Error()
			return res
		case <-time.After(p.backoff(res.Attempts)):
		}
	}
}

// attempt makes one HTTP request and records its outcome in res.
func (p *Pusher) attempt(ctx context.Context, url, topic, expiry, id string, body []byte, res *Result) verdict {
	if err := ctx.Err(); err != nil {
		res.Status, res.Reason = 0, err.Error()
		return vFail
	}
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		res.Reason = "build request: " + err.Error()
		return vFail
	}
	req.Header.Set("apns-id", id)
	req.Header.Set("apns-topic", topic)
	req.Header.Set("apns-push-type", "mdm")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-expiration", expiry)
	req.Header.Set("Content-Type", "application/json")

	resp, err := p.client.Do(req)
	if err != nil {
		res.Status = 0
		switch {
		case ctx.Err() != nil:
			res.Reason = ctx.Err().Error()
			return vFail
		case errors.Is(err, context.DeadlineExceeded):
			res.Reason = fmt.Sprintf("timeout after %s", p.timeout)
		default:
			res.Reason = "network: " + oneLine(err)
		}
		return vRetry
	}
	defer resp.Body.Close()
	p.lastAnswer.Store(time.Now().UnixNano())
	res.Status, res.APNsID = resp.StatusCode, resp.Header.Get("apns-id")
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return vSent
	}
	var apnsErr struct {
		Reason string `json:"reason"`
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err == nil {
		_ = json.Unmarshal(raw, &apnsErr) // a missing reason falls back to the status text
	}
	res.Reason = apnsErr.Reason
	if res.Reason == "" {
		res.Reason = http.StatusText(resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusGone,
		res.Reason == "Unregistered", res.Reason == "BadDeviceToken", res.Reason == "DeviceTokenNotForTopic":
		return vInvalidToken
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return vRetry
	}
	return vFail
}

// newAPNsID is a random UUID in the lowercase form Apple documents for apns-id.
func newAPNsID() string { return strings.ToLower(mdm.NewUUID()) }

// backoff is the wait after the given failed attempt: exponential, capped,
// with jitter over its upper half so a fleet of retries spreads out.
func (p *Pusher) backoff(attempt int) time.Duration {
	d := p.baseDelay << min(attempt-1, 30)
	if d > p.maxDelay || d <= 0 {
		d = p.maxDelay
	}
	if half := d / 2; half > 0 {
		d = half + rand.N(half+1)
	}
	return d
}

// RedactToken is a loggable stand-in for a device token: a short hex prefix.
func RedactToken(token []byte) string {
	const keep = 4
	if len(token) <= keep {
		return strings.Repeat("*", len(token)*2)
	}
	return hex.EncodeToString(token[:keep]) + "…"
}
