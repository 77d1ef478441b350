package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/mdm/mdmhttp"
	"github.com/orchardmdm/orchard/scep"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics from a real loopback server and parses the text format.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value returns the counter/gauge value (or histogram count) of the series
// of family name with exactly the given labels; ok is false when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, mt := range f.GetMetric() {
		if len(mt.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range mt.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch {
		case mt.Counter != nil:
			return mt.GetCounter().GetValue(), true
		case mt.Gauge != nil:
			return mt.GetGauge().GetValue(), true
		case mt.Histogram != nil:
			return float64(mt.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestObserversExportCounts(t *testing.T) {
	m := New()
	var d dep.Metrics = m // compile-time and run-time: dep's interface
	m.Checkin("Authenticate", "ok")
	m.Checkin("Authenticate", "ok")
	m.Checkin("TokenUpdate", "forbidden")
	m.Connect("Idle", "ok")
	m.Connect("Acknowledged", "ok")
	m.Connect("Acknowledged", "ok")
	m.IdentityFailure("bad_signature")
	m.CommandsEnqueued("DeviceInformation", 500)
	m.CommandsEnqueued("DeviceInformation", 0)
	m.CommandDelivered("DeviceInformation")
	m.CommandResult("DeviceInformation", "Acknowledged")
	m.CommandResult("DeviceLock", "Error")
	m.SCEP("issued", "profile")
	m.SCEP("malformed_message", "")
	m.PushResult("sent")
	m.PushResult("sent")
	m.PushResult("bad_device_token")
	m.RateLimited(LimitSCEPChallenge)
	m.RateLimited(LimitEnrollToken)
	m.RateLimited(LimitEnrollToken)
	m.RateLimited("203.0.113.9") // never a free-form value
	d.SyncDone(dep.SyncFull, "ok", 1200, 3*time.Second)
	d.SyncDone(dep.SyncDelta, "ok", 3, 500*time.Millisecond)
	d.APIError("/server/devices", "EXPIRED_CURSOR")
	d.Throttled("/devices/sync")
	if err := m.SetQueueDepthFunc(func() float64 { return 42 }); err != nil {
		t.Fatal(err)
	}
	if err := m.SetEnrolledDevicesFunc(func() float64 { return 7 }); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"orchard_checkins_total", lbl("message_type", "Authenticate", "outcome", "ok"), 2},
		{"orchard_checkins_total", lbl("message_type", "TokenUpdate", "outcome", "forbidden"), 1},
		{"orchard_connects_total", lbl("status", "Idle", "outcome", "ok"), 1},
		{"orchard_connects_total", lbl("status", "Acknowledged", "outcome", "ok"), 2},
		{"orchard_identity_failures_total", lbl("reason", "bad_signature"), 1},
		{"orchard_commands_enqueued_total", lbl("request_type", "DeviceInformation"), 500},
		{"orchard_commands_delivered_total", lbl("request_type", "DeviceInformation"), 1},
		{"orchard_command_results_total", lbl("request_type", "DeviceInformation", "status", "Acknowledged"), 1},
		{"orchard_command_results_total", lbl("request_type", "DeviceLock", "status", "Error"), 1},
		{"orchard_scep_requests_total", lbl("outcome", "issued", "kind", "profile"), 1},
		{"orchard_scep_requests_total", lbl("outcome", "malformed_message", "kind", "none"), 1},
		{"orchard_pushes_total", lbl("outcome", "sent"), 2},
		{"orchard_pushes_total", lbl("outcome", "bad_device_token"), 1},
		{"orchard_rate_limited_total", lbl("limit", "scep_challenge"), 1},
		{"orchard_rate_limited_total", lbl("limit", "enroll_token"), 2},
		{"orchard_rate_limited_total", lbl("limit", Other), 1},
		{"orchard_dep_syncs_total", lbl("kind", "full", "outcome", "ok"), 1},
		{"orchard_dep_syncs_total", lbl("kind", "delta", "outcome", "ok"), 1},
		{"orchard_dep_sync_devices_total", lbl(), 1203},
		{"orchard_dep_sync_duration_seconds", lbl(), 2},
		{"orchard_dep_api_errors_total", lbl("endpoint", "/server/devices", "code", "EXPIRED_CURSOR"), 1},
		{"orchard_dep_throttled_total", lbl("endpoint", "/devices/sync"), 1},
		{"orchard_command_queue_depth", lbl(), 42},
		{"orchard_enrolled_devices", lbl(), 7},
	}
	for _, tt := range tests {
		got, ok := value(fams, tt.name, tt.labels)
		if !ok {
			t.Errorf("%s%v: series missing", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if h := fams["orchard_dep_sync_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() != 3.5 {
		t.Errorf("sync duration sum = %v, want 3.5", h.GetSampleSum())
	}
	for _, runtime := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[runtime] == nil {
			t.Errorf("%s missing: runtime/process collectors not registered", runtime)
		}
	}
}

func TestGaugeFuncReadAtScrape(t *testing.T) {
	m := New()
	depth := 1.0
	if err := m.SetQueueDepthFunc(func() float64 { return depth }); err != nil {
		t.Fatal(err)
	}
	depth = 10_000
	if got, _ := value(scrape(t, m), "orchard_command_queue_depth", lbl()); got != 10_000 {
		t.Errorf("queue depth = %v, want the value at scrape time 10000", got)
	}
	if err := m.SetQueueDepthFunc(func() float64 { return 0 }); err == nil {
		t.Error("second SetQueueDepthFunc accepted; want a duplicate registration error")
	}
	if err := m.SetEnrolledDevicesFunc(nil); err == nil {
		t.Error("nil func accepted")
	}
}

func TestLabelBounding(t *testing.T) {
	long := strings.Repeat("A", maxLabelLen+1)
	tests := []struct {
		name   string
		call   func(m *Metrics)
		family string
		labels map[string]string
	}{
		{"unknown message type", func(m *Metrics) { m.Checkin("Gimme/Everything", "ok") },
			"orchard_checkins_total", lbl("message_type", Other, "outcome", "ok")},
		{"made-up message type that looks fine", func(m *Metrics) { m.Checkin("Authenticat3", "bad_request") },
			"orchard_checkins_total", lbl("message_type", Other, "outcome", "bad_request")},
		{"unknown connect status", func(m *Metrics) { m.Connect("Yes", "ok") },
			"orchard_connects_total", lbl("status", Other, "outcome", "ok")},
		{"oversized request type", func(m *Metrics) { m.CommandDelivered(long) },
			"orchard_commands_delivered_total", lbl("request_type", Other)},
		{"request type with spaces", func(m *Metrics) { m.CommandDelivered("Device Information") },
			"orchard_commands_delivered_total", lbl("request_type", Other)},
		{"empty reason", func(m *Metrics) { m.IdentityFailure("") },
			"orchard_identity_failures_total", lbl("reason", Other)},
		{"newline in outcome", func(m *Metrics) { m.PushResult("ok\nfake_series 1") },
			"orchard_pushes_total", lbl("outcome", Other)},
		{"unknown scep kind", func(m *Metrics) { m.SCEP("issued", "mystery") },
			"orchard_scep_requests_total", lbl("outcome", "issued", "kind", Other)},
		{"unknown sync kind", func(m *Metrics) { m.SyncDone("sideways", "ok", 0, 0) },
			"orchard_dep_syncs_total", lbl("kind", Other, "outcome", "ok")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			tt.call(m)
			fams := scrape(t, m)
			if got, ok := value(fams, tt.family, tt.labels); !ok || got != 1 {
				t.Errorf("%s%v = %v (present %v), want 1", tt.family, tt.labels, got, ok)
			}
			if n := len(fams[tt.family].GetMetric()); n != 1 {
				t.Errorf("%s has %d series, want 1", tt.family, n)
			}
		})
	}
}

func TestDistinctValueBudget(t *testing.T) {
	m := New()
	for i := range maxDistinct + 50 {
		m.CommandDelivered(fmt.Sprintf("Type%d", i))
	}
	m.CommandDelivered("Type0") // admitted early: keeps its own series
	fams := scrape(t, m)
	if n := len(fams["orchard_commands_delivered_total"].GetMetric()); n != maxDistinct+1 {
		t.Errorf("%d series, want %d admitted values plus %q", n, maxDistinct, Other)
	}
	if got, _ := value(fams, "orchard_commands_delivered_total", lbl("request_type", Other)); got != 50 {
		t.Errorf("other = %v, want 50", got)
	}
	if got, _ := value(fams, "orchard_commands_delivered_total", lbl("request_type", "Type0")); got != 2 {
		t.Errorf("Type0 = %v, want 2", got)
	}
}

func TestInstrumentLabelsByPattern(t *testing.T) {
	m := New()
	inner := http.NewServeMux()
	inner.HandleFunc("GET /v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.PathValue("id"))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /mdm/connect", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	})
	mux.Handle("/v1/", inner)
	srv := httptest.NewServer(m.Instrument(mux))
	defer srv.Close()

	do := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i := range 5 {
		do("GET", fmt.Sprintf("/v1/devices/dev-%d", i))
	}
	do("PUT", "/mdm/connect")
	do("GET", "/random/path/one")
	do("GET", "/random/path/two")
	do("BREW", "/mdm/connect")

	fams := scrape(t, m)
	tests := []struct {
		labels map[string]string
		want   float64
	}{
		{lbl("route", "GET /v1/devices/{id}", "method", "GET", "code", "200"), 5},
		{lbl("route", "PUT /mdm/connect", "method", "PUT", "code", "403"), 1},
		{lbl("route", "unmatched", "method", "GET", "code", "404"), 2},
		{lbl("route", "unmatched", "method", Other, "code", "405"), 1},
	}
	for _, tt := range tests {
		if got, ok := value(fams, "orchard_http_request_duration_seconds", tt.labels); !ok || got != tt.want {
			t.Errorf("duration count %v = %v (present %v), want %v", tt.labels, got, ok, tt.want)
		}
	}
	if n := len(fams["orchard_http_request_duration_seconds"].GetMetric()); n != len(tests) {
		t.Errorf("%d series, want %d: raw paths must not become labels", n, len(tests))
	}
}

// The observers the server wires Metrics into.
var (
	_ mdmhttp.Observer = (*Metrics)(nil)
	_ dep.Metrics      = (*Metrics)(nil)
	_                  = scep.WithObserver((*Metrics)(nil).SCEP)
)

func TestConcurrentObservers(t *testing.T) {
	m := New()
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				m.CommandResult(fmt.Sprintf("T%d", (g*200+i)%100), "Acknowledged")
			}
		}()
	}
	for range 8 {
		<-done
	}
	fams := scrape(t, m)
	var total float64
	for _, mt := range fams["orchard_command_results_total"].GetMetric() {
		total += mt.GetCounter().GetValue()
	}
	if total != 1600 {
		t.Errorf("total results = %v, want 1600", total)
	}
	if n := len(fams["orchard_command_results_total"].GetMetric()); n != maxDistinct+1 {
		t.Errorf("%d series, want %d", n, maxDistinct+1)
	}
}
