// Package metrics owns Orchard's Prometheus metrics: one registry of its
// own (with the Go runtime and process collectors), the /metrics handler,
// HTTP request instrumentation, and the observer methods the device,
// MDM service, command, SCEP, DEP and push packages call. Every label value that comes from the
// outside world is bounded so no client can grow the series count.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every Orchard series. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration *prometheus.HistogramVec

	checkins         *prometheus.CounterVec
	connects         *prometheus.CounterVec
	identityFailures *prometheus.CounterVec

	commandsEnqueued  *prometheus.CounterVec
	commandsDelivered *prometheus.CounterVec
	commandResults    *prometheus.CounterVec

	scepRequests *prometheus.CounterVec
	pushes       *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec

	depSyncs        *prometheus.CounterVec
	depSyncDevices  prometheus.Counter
	depSyncDuration prometheus.Histogram
	depAPIErrors    *prometheus.CounterVec
	depThrottled    *prometheus.CounterVec

	// Free-form label values (request types, outcomes, reasons, Apple
	// endpoints and codes) are admitted up to a fixed number per label.
	requestTypes, outcomes, reasons, routes, endpoints, codes *boundedSet
}

var _ dep.Metrics = (*Metrics)(nil)

// New builds the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orchard_http_request_duration_seconds",
			Help:    "HTTP request duration by ServeMux route pattern, method and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		checkins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_checkins_total",
			Help: "Device check-in requests by message type and outcome.",
		}, []string{"message_type", "outcome"}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_connects_total",
			Help: "Device connect (command report) requests by reported status and outcome.",
		}, []string{"status", "outcome"}),
		identityFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_identity_failures_total",
			Help: "Device requests refused because the device identity did not verify, by reason.",
		}, []string{"reason"}),
		commandsEnqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_commands_enqueued_total",
			Help: "Commands queued, counted once per target channel, by request type.",
		}, []string{"request_type"}),
		commandsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_commands_delivered_total",
			Help: "Commands handed to devices, by request type.",
		}, []string{"request_type"}),
		commandResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_command_results_total",
			Help: "Command results devices reported, by request type and status.",
		}, []string{"request_type", "status"}),
		scepRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_scep_requests_total",
			Help: "SCEP PKIOperation requests by outcome and authorization kind.",
		}, []string{"outcome", "kind"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_pushes_total",
			Help: "APNs push notifications sent, by outcome.",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_rate_limited_total",
			Help: "Unauthenticated requests refused with 429 by a per-address limit, by limit.",
		}, []string{"limit"}),
		depSyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_dep_syncs_total",
			Help: "Apple Business Manager device syncs by kind (full, delta) and outcome.",
		}, []string{"kind", "outcome"}),
		depSyncDevices: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orchard_dep_sync_devices_total",
			Help: "Device records received from Apple Business Manager syncs.",
		}),
		depSyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "orchard_dep_sync_duration_seconds",
			Help:    "Duration of Apple Business Manager syncs.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		depAPIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_dep_api_errors_total",
			Help: "Failed calls to Apple's device assignment service by endpoint and Apple's error code.",
		}, []string{"endpoint", "code"}),
		depThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orchard_dep_throttled_total",
			Help: "Calls to Apple's device assignment service that were throttled, by endpoint.",
		}, []string{"endpoint"}),

		requestTypes: newBoundedSet(maxDistinct, wellFormed),
		outcomes:     newBoundedSet(maxDistinct, wellFormed),
		reasons:      newBoundedSet(maxDistinct, wellFormed),
		routes:       newBoundedSet(maxDistinct, wellFormedPattern),
		endpoints:    newBoundedSet(maxDistinct, wellFormed),
		codes:        newBoundedSet(maxDistinct, wellFormed),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpDuration, m.checkins, m.connects, m.identityFailures,
		m.commandsEnqueued, m.commandsDelivered, m.commandResults,
		m.scepRequests, m.pushes, m.rateLimited,
		m.depSyncs, m.depSyncDevices, m.depSyncDuration, m.depAPIErrors, m.depThrottled,
	)
	return m
}

// Registry is the registry the metrics live on (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetQueueDepthFunc exports orchard_command_queue_depth from fn, called at
// scrape time. Call it once.
func (m *Metrics) SetQueueDepthFunc(fn func() float64) error {
	return m.gaugeFunc("orchard_command_queue_depth", "Commands waiting in device queues.", fn)
}

// SetEnrolledDevicesFunc exports orchard_enrolled_devices from fn, called
// at scrape time. Call it once.
func (m *Metrics) SetEnrolledDevicesFunc(fn func() float64) error {
	return m.gaugeFunc("orchard_enrolled_devices", "Devices currently enrolled.", fn)
}

// SetIdentitiesExpiringFunc exports orchard_identity_certs_expiring_soon
// from fn (enrolled devices whose identity certificate expires within 30
// days, as the last renewal scan counted them). Call it once.
func (m *Metrics) SetIdentitiesExpiringFunc(fn func() float64) error {
	return m.gaugeFunc("orchard_identity_certs_expiring_soon",
		"Enrolled devices whose identity certificate expires within 30 days (last renewal scan).", fn)
}

func (m *Metrics) gaugeFunc(name, help string, fn func() float64) error {
	if fn == nil {
		return errNilFunc
	}
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Checkin implements mdmhttp.Observer.
func (m *Metrics) Checkin(messageType, outcome string) {
	m.checkins.WithLabelValues(known(messageType, checkinMessageTypes), m.outcomes.label(outcome)).Inc()
}

// Connect implements mdmhttp.Observer.
func (m *Metrics) Connect(status, outcome string) {
	m.connects.WithLabelValues(known(status, connectStatuses), m.outcomes.label(outcome)).Inc()
}

// IdentityFailure implements mdmhttp.Observer.
func (m *Metrics) IdentityFailure(reason string) {
	m.identityFailures.WithLabelValues(m.reasons.label(reason)).Inc()
}

// CommandsEnqueued counts a command queued for n channels.
func (m *Metrics) CommandsEnqueued(requestType string, n int) {
	if n > 0 {
		m.commandsEnqueued.WithLabelValues(m.requestTypes.label(requestType)).Add(float64(n))
	}
}

// Observe counts the MDM service's command deliveries and results; pass
// it to service.WithObserver.
func (m *Metrics) Observe(_ context.Context, ev service.Event) {
	switch ev := ev.(type) {
	case service.CommandDelivered:
		m.CommandDelivered(ev.Command.RequestType)
	case service.ResultStored:
		m.CommandResult(ev.Result.RequestType, string(ev.Result.Status))
	}
}

// CommandDelivered counts one command handed to a device.
func (m *Metrics) CommandDelivered(requestType string) {
	m.commandsDelivered.WithLabelValues(m.requestTypes.label(requestType)).Inc()
}

// CommandResult counts one result a device reported.
func (m *Metrics) CommandResult(requestType, status string) {
	m.commandResults.WithLabelValues(m.requestTypes.label(requestType), known(status, connectStatuses)).Inc()
}

// SCEP counts one PKIOperation; pass it to scep.WithObserver.
func (m *Metrics) SCEP(outcome, kind string) {
	if kind == "" {
		kind = "none"
	}
	m.scepRequests.WithLabelValues(m.outcomes.label(outcome), known(kind, scepKinds)).Inc()
}

// PushResult counts one push notification by outcome.
func (m *Metrics) PushResult(outcome string) {
	m.pushes.WithLabelValues(m.outcomes.label(outcome)).Inc()
}

// RateLimited counts one 429 from the named limiter; pass it to
// ratelimit.WithObserver.
func (m *Metrics) RateLimited(limit string) {
	m.rateLimited.WithLabelValues(known(limit, rateLimits)).Inc()
}

// SyncDone implements dep.Metrics: one finished Apple Business Manager sync.
func (m *Metrics) SyncDone(kind dep.SyncKind, outcome string, devices int, took time.Duration) {
	m.depSyncs.WithLabelValues(known(string(kind), depSyncKinds), m.outcomes.label(outcome)).Inc()
	if devices > 0 {
		m.depSyncDevices.Add(float64(devices))
	}
	m.depSyncDuration.Observe(took.Seconds())
}

// APIError implements dep.Metrics: a failed call to Apple by endpoint and Apple's code.
func (m *Metrics) APIError(endpoint, code string) {
	m.depAPIErrors.WithLabelValues(m.endpoints.label(endpoint), m.codes.label(code)).Inc()
}

// Throttled implements dep.Metrics: a throttled call to Apple.
func (m *Metrics) Throttled(endpoint string) {
	m.depThrottled.WithLabelValues(m.endpoints.label(endpoint)).Inc()
}
