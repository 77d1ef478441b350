package webhook

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the outbox's traffic; a nil *Metrics counts nothing.
type Metrics struct {
	queuedN    prometheus.Counter
	deliveries *prometheus.CounterVec
}

// Counter is what the outbox depth gauges read.
type Counter interface {
	CountWebhookDeliveries(ctx context.Context) (pending, dead int, err error)
}

// NewMetrics registers the webhook series in reg. The depth gauges read
// count at scrape time, reusing a count up to 15 seconds old (it may walk
// the outbox).
func NewMetrics(reg prometheus.Registerer, count Counter) (*Metrics, error) {
	m := &Metrics{
		queuedN: prometheus.NewCounter(prometheus.CounterOpts{Name: "orchard_webhook_events_queued_total",
			Help: "Webhook events written to the outbox, once per endpoint."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orchard_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered, failed (to be retried) or dead (dead-lettered)."}, []string{"outcome"}),
	}
	var mu sync.Mutex
	var at time.Time
	var pending, dead int
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 15*time.Second {
			if p, d, err := count.CountWebhookDeliveries(context.Background()); err == nil {
				pending, dead, at = p, d, time.Now()
			}
		}
		return pending, dead
	}
	for _, c := range []prometheus.Collector{m.queuedN, m.deliveries,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orchard_webhook_outbox_depth",
			Help: "Webhook events waiting for delivery (read at scrape time)."}, func() float64 { p, _ := counts(); return float64(p) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "orchard_webhook_dead_events",
			Help: "Dead-lettered webhook events kept for replay (read at scrape time)."}, func() float64 { _, d := counts(); return float64(d) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, o := range []string{"delivered", "failed", "dead"} {
		m.deliveries.WithLabelValues(o)
	}
	return m, nil
}

func (m *Metrics) queued(n int) {
	if m != nil {
		m.queuedN.Add(float64(n))
	}
}

func (m *Metrics) outcome(o string) {
	if m != nil {
		m.deliveries.WithLabelValues(o).Inc()
	}
}
