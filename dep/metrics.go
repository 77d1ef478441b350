package dep

import (
	"sync"
	"time"
)

// Metrics receives counts the server turns into Prometheus metrics.
// Implementations must be safe for concurrent use.
type Metrics interface {
	// APIError counts a failed call to Apple by endpoint and Apple's code.
	APIError(endpoint, code string)
	// Throttled counts a 429/503/THROTTLED answer.
	Throttled(endpoint string)
	// SyncDone reports one finished sync; outcome is "ok" or the error class.
	SyncDone(kind SyncKind, outcome string, devices int, took time.Duration)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) APIError(string, string)                       {}
func (NopMetrics) Throttled(string)                              {}
func (NopMetrics) SyncDone(SyncKind, string, int, time.Duration) {}

// Counters is an in-memory Metrics for tests and debugging.
type Counters struct {
	mu        sync.Mutex
	APIErrors map[string]int // "endpoint code"
	Throttles map[string]int
	Syncs     map[string]int // "kind outcome"
	Devices   int
}

// NewCounters returns empty counters.
func NewCounters() *Counters {
	return &Counters{APIErrors: map[string]int{}, Throttles: map[string]int{}, Syncs: map[string]int{}}
}

func (c *Counters) APIError(endpoint, code string) {
	c.mu.Lock()
	c.APIErrors[endpoint+" "+code]++
	c.mu.Unlock()
}

func (c *Counters) Throttled(endpoint string) {
	c.mu.Lock()
	c.Throttles[endpoint]++
	c.mu.Unlock()
}

func (c *Counters) SyncDone(kind SyncKind, outcome string, devices int, _ time.Duration) {
	c.mu.Lock()
	c.Syncs[string(kind)+" "+outcome]++
	c.Devices += devices
	c.mu.Unlock()
}

// Get reads one counter of m ("APIErrors", "Throttles" or "Syncs") safely.
func (c *Counters) Get(m, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m {
	case "APIErrors":
		return c.APIErrors[key]
	case "Throttles":
		return c.Throttles[key]
	case "Syncs":
		return c.Syncs[key]
	}
	return 0
}
