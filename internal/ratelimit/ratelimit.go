// Package ratelimit is a per-key token bucket for the endpoints that need
// no credentials. Callers decide what costs a token (Orchard charges only
// failures and anonymous lookups), so a fleet behind one NAT that enrolls
// correctly is never slowed. The number of tracked keys is bounded: the
// limiter cannot itself be used to exhaust memory.
package ratelimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the tracked keys unless WithMaxKeys says otherwise.
const DefaultMaxKeys = 100_000

// Limiter allows each key a burst of attempts, refilled at a steady rate.
// Its methods are safe for concurrent use.
type Limiter struct {
	name    string
	burst   float64
	perSec  float64
	maxKeys int
	now     func() time.Time
	refused func(name string)

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time // last full sweep, so a flood of new keys is not a flood of sweeps
}

// bucket holds what is left of a key's burst as of at.
type bucket struct {
	tokens float64
	at     time.Time
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithMaxKeys bounds how many keys are tracked at once.
func WithMaxKeys(n int) Option { return func(l *Limiter) { l.maxKeys = n } }

// WithObserver is told the limiter's name each time Check refuses (metrics).
func WithObserver(fn func(name string)) Option { return func(l *Limiter) { l.refused = fn } }

// New returns a limiter named name (for metrics) allowing burst attempts
// per key, refilled at perMinute a minute.
func New(name string, burst, perMinute int, opts ...Option) (*Limiter, error) {
	if burst < 1 || perMinute < 1 {
		return nil, fmt.Errorf("ratelimit %s: burst %d and rate %d/min must be at least 1", name, burst, perMinute)
	}
	l := &Limiter{name: name, burst: float64(burst), perSec: float64(perMinute) / 60,
		maxKeys: DefaultMaxKeys, now: time.Now, refused: func(string) {}, buckets: map[string]*bucket{}}
	for _, o := range opts {
		o(l)
	}
	if l.now == nil || l.refused == nil || l.maxKeys < 1 {
		return nil, fmt.Errorf("ratelimit %s: nil clock or observer, or max keys below 1", name)
	}
	return l, nil
}

// Check reports whether key may make an attempt now; when it may not, it
// also says how long until it may. Check spends nothing.
func (l *Limiter) Check(key string) (retryAfter time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0, true
	}
	now := l.now()
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0, true
	}
	l.refused(l.name)
	return time.Duration(math.Ceil((1 - b.tokens) / l.perSec * float64(time.Second))), false
}

// Spend charges one attempt to key.
func (l *Limiter) Spend(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.makeRoom(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens = max(b.tokens-1, 0)
}

// Take is Check then, when allowed, Spend: for attempts that always cost.
func (l *Limiter) Take(key string) (retryAfter time.Duration, ok bool) {
	if d, ok := l.Check(key); !ok {
		return d, false
	}
	l.Spend(key)
	return 0, true
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.perSec)
	}
	b.at = now
}

// makeRoom drops every key whose bucket has refilled (it behaves exactly
// like an untracked key), at most once a second; if that frees nothing it
// drops an arbitrary key, so a flood of new addresses costs the flooders
// their own history, not memory or CPU.
func (l *Limiter) makeRoom(now time.Time) {
	if now.Sub(l.swept) >= time.Second {
		l.swept = now
		for k, b := range l.buckets {
			l.refill(b, now)
			if b.tokens >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.maxKeys {
			break
		}
		delete(l.buckets, k)
	}
}

// SourceKey is the key for a request's source: the host of RemoteAddr,
// for IPv6 its /64 (one subscriber usually holds a whole /64). Behind a
// reverse proxy every device shares the proxy's address.
func SourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() != nil {
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// RetryAfter is the Retry-After header value for d: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	return fmt.Sprint(max(int64(math.Ceil(d.Seconds())), 1))
}
