package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TokenExpiry is one ABM/ASM server token's end of validity.
type TokenExpiry struct {
	ID, Name string
	NotAfter time.Time
}

// SetExpiryFuncs exports when the push certificate and each ABM token
// expire, as Unix-time gauges read at scrape time, so an alert can fire
// ahead: orchard_push_certificate_expiry_timestamp_seconds - time() < 30 * 86400.
// push reports false when no certificate is uploaded; then, like a token
// without a known expiry, it has no series. Call it once.
func (m *Metrics) SetExpiryFuncs(push func() (time.Time, bool), tokens func() []TokenExpiry) error {
	if push == nil || tokens == nil {
		return errNilFunc
	}
	return m.reg.Register(&expiryCollector{push: push, tokens: tokens})
}

var (
	pushExpiryDesc = prometheus.NewDesc("orchard_push_certificate_expiry_timestamp_seconds",
		"When the MDM push certificate expires (Unix time); absent without a certificate.", nil, nil)
	tokenExpiryDesc = prometheus.NewDesc("orchard_dep_token_expiry_timestamp_seconds",
		"When each Apple Business Manager / School Manager server token expires (Unix time).", []string{"token", "name"}, nil)
)

// expiryCollector reads the expiries at each scrape: tokens come and go, so
// a fixed gauge vector would keep series of deleted ones.
type expiryCollector struct {
	push   func() (time.Time, bool)
	tokens func() []TokenExpiry
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pushExpiryDesc
	ch <- tokenExpiryDesc
}

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	if at, ok := c.push(); ok {
		ch <- prometheus.MustNewConstMetric(pushExpiryDesc, prometheus.GaugeValue, unixSeconds(at))
	}
	for _, t := range c.tokens() {
		if t.NotAfter.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(tokenExpiryDesc, prometheus.GaugeValue, unixSeconds(t.NotAfter), t.ID, t.Name)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }
