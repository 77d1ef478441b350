package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// stats collects one latency per request and errors by kind.
type stats struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    map[string]int
	answered  atomic.Int64
	wakes     atomic.Int64 // completed wakes (wake mode)
	// redelivered counts commands a device was offered again after it had
	// been offered them once (should stay 0).
	redelivered atomic.Int64
	router      *router // nil: every device talks to its enrollment URL
}

func newStats() *stats { return &stats{errors: map[string]int{}} }

// count is how many requests have been sent and answered or failed.
func (s *stats) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.latencies)
	for _, v := range s.errors {
		n += v
	}
	return n
}

func (s *stats) observe(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors[errorKind(err)]++
		return
	}
	s.latencies = append(s.latencies, d)
}

// percentile returns the nearest-rank q-th percentile of sorted (0 < q <= 100).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q/100*float64(len(sorted)) + 0.999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// phase is one timed part of a run, with the server's CPU time over it.
type phase struct {
	Wall       time.Duration `json:"wall_ns"`
	WallS      float64       `json:"wall_s"`
	ServerCPUS float64       `json:"server_cpu_s,omitempty"`
	// DBCPUS is the database server's CPU time (--db-pid and its children).
	DBCPUS float64 `json:"db_cpu_s,omitempty"`
	// ClientCPUS is the load generator's own CPU time: on a shared
	// machine it competes with the server for the same cores.
	ClientCPUS float64 `json:"client_cpu_s,omitempty"`
}

// procs are the processes whose CPU a run reports: the server's (one per
// replica, summed) and the database server's.
type procs struct {
	server []int
	db     int
}

// procMark is the CPU time of the servers, the database and this process
// at a point.
type procMark struct {
	server, db time.Duration
	client     procStat
}

func markProc(ps procs) procMark {
	var m procMark
	for _, pid := range ps.server {
		if p, err := readProc(pid); err == nil {
			m.server += p.cpu
		}
	}
	if ps.db > 0 {
		m.db = treeCPU(ps.db)
	}
	m.client, _ = readProc(os.Getpid())
	return m
}

// plus adds the wall and CPU times of another part of the same phase (a
// round of the roundtrip).
func (p phase) plus(q phase) phase {
	w := p.Wall + q.Wall
	return phase{Wall: w, WallS: w.Seconds(), ServerCPUS: p.ServerCPUS + q.ServerCPUS, DBCPUS: p.DBCPUS + q.DBCPUS,
		ClientCPUS: p.ClientCPUS + q.ClientCPUS}
}

func phaseOf(wall time.Duration, before procMark, ps procs) phase {
	p := phase{Wall: wall, WallS: wall.Seconds()}
	after := markProc(ps)
	if len(ps.server) > 0 {
		p.ServerCPUS = (after.server - before.server).Seconds()
	}
	if ps.db > 0 {
		p.DBCPUS = (after.db - before.db).Seconds()
	}
	p.ClientCPUS = (after.client.cpu - before.client.cpu).Seconds()
	return p
}

// How a run's devices sign, as reports label it.
const (
	signingFresh    = "fresh"
	signingIdleOnce = "idle-once"
)

// report is what a run prints; JSON field names are stable for scripts.
type report struct {
	Label    string `json:"label"`
	Target   string `json:"target"`
	Scenario string `json:"scenario"`
	Conn     string `json:"conn"`
	TLS      bool   `json:"tls"`
	// Signing is signingFresh (every message signed) or signingIdleOnce.
	Signing     string         `json:"signing"`
	Devices     int            `json:"devices"`
	Concurrency int            `json:"concurrency"`
	Backlog     int            `json:"backlog,omitempty"`
	Enroll      phase          `json:"enroll"`
	Load        phase          `json:"load"`
	Requests    int            `json:"requests"`
	Answered    int64          `json:"commands_answered"`
	PerSecond   float64        `json:"connects_per_s"`
	P50Ms       float64        `json:"p50_ms"`
	P90Ms       float64        `json:"p90_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	Errors      map[string]int `json:"errors"`
	ErrorCount  int            `json:"error_count"`
	// CPU per successful connect, in server CPU milliseconds.
	CPUPerConnectMs float64 `json:"cpu_per_connect_ms,omitempty"`
	// Database server CPU per successful connect (--db-pid), ms.
	DBCPUPerConnectMs float64 `json:"db_cpu_per_connect_ms,omitempty"`
	// Load generator CPU per successful connect (signing, plist), ms.
	ClientCPUPerConnectMs float64 `json:"client_cpu_per_connect_ms,omitempty"`
	PeakRSSBytes          int64   `json:"peak_rss_bytes,omitempty"`
	// Wake mode: completed wakes and the CPU per wake.
	Wakes              int64   `json:"wakes,omitempty"`
	CPUPerWakeMs       float64 `json:"cpu_per_wake_ms,omitempty"`
	ClientCPUPerWakeMs float64 `json:"client_cpu_per_wake_ms,omitempty"`
	CPUPerCommandMs    float64 `json:"cpu_per_command_ms,omitempty"` // server CPU / commands answered (roundtrip)
	TLSHandshakes      int64   `json:"tls_handshakes"`               // in the measured phase
	TLSResumed         int64   `json:"tls_resumed"`
	TLSResumedPct      float64 `json:"tls_resumed_pct"`
	HTTP2Connections   int64   `json:"http2_connections"`
	// Replicas is how many servers the devices were spread over (0: one).
	Replicas int `json:"replicas,omitempty"`
	// Kill is what --kill-pid did; Delivery checks every queued command
	// (roundtrip on Orchard).
	Kill     *killResult `json:"kill,omitempty"`
	Delivery *delivery   `json:"delivery,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *report) fill(s *stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat := slices.Clone(s.latencies)
	slices.Sort(lat)
	r.Requests = len(lat)
	r.Answered = s.answered.Load()
	r.Errors = map[string]int{}
	for k, v := range s.errors {
		r.Errors[k] = v
		r.ErrorCount += v
	}
	if r.Load.Wall > 0 {
		r.PerSecond = float64(len(lat)) / r.Load.Wall.Seconds()
	}
	r.P50Ms, r.P90Ms, r.P99Ms = ms(percentile(lat, 50)), ms(percentile(lat, 90)), ms(percentile(lat, 99))
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	if len(lat) > 0 && r.Load.ServerCPUS > 0 {
		r.CPUPerConnectMs = r.Load.ServerCPUS * 1000 / float64(len(lat))
	}
	if len(lat) > 0 && r.Load.DBCPUS > 0 {
		r.DBCPUPerConnectMs = r.Load.DBCPUS * 1000 / float64(len(lat))
	}
	if len(lat) > 0 && r.Load.ClientCPUS > 0 {
		r.ClientCPUPerConnectMs = r.Load.ClientCPUS * 1000 / float64(len(lat))
	}
	r.Wakes = s.wakes.Load()
	if r.Wakes > 0 {
		r.CPUPerWakeMs = r.Load.ServerCPUS * 1000 / float64(r.Wakes)
		r.ClientCPUPerWakeMs = r.Load.ClientCPUS * 1000 / float64(r.Wakes)
	}
	if r.Answered > 0 && r.Scenario == scenarioRoundtrip {
		r.CPUPerCommandMs = r.Load.ServerCPUS * 1000 / float64(r.Answered)
	}
}

// fillTLS records the handshakes the devices made between two marks.
func (r *report) fillTLS(before, after tlsMark) {
	r.TLSHandshakes = after.handshakes - before.handshakes
	r.TLSResumed = after.resumed - before.resumed
	r.HTTP2Connections = after.h2 - before.h2
	if r.TLSHandshakes > 0 {
		r.TLSResumedPct = 100 * float64(r.TLSResumed) / float64(r.TLSHandshakes)
	}
}

// transport names how the devices met the server, for tables.
func (r *report) transport() string {
	t := "plain HTTP"
	if r.TLS {
		t = "TLS"
	}
	if r.Conn == "" {
		return t
	}
	return t + " " + r.Conn
}

func (r *report) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s (%s, %s)\n", r.Label, r.Target, r.Scenario)
	fmt.Fprintf(tw, "devices\t%d (concurrency %d, backlog %d)\n", r.Devices, r.Concurrency, r.Backlog)
	fmt.Fprintf(tw, "transport\t%s, signing %s\n", r.transport(), signingText(r.Signing))
	fmt.Fprintf(tw, "enroll\t%.2fs wall, %.2fs server CPU\n", r.Enroll.WallS, r.Enroll.ServerCPUS)
	if r.Requests+r.ErrorCount > 0 {
		fmt.Fprintf(tw, "connects\t%d ok in %.2fs = %.1f/s (%d commands answered)\n", r.Requests, r.Load.WallS, r.PerSecond, r.Answered)
		fmt.Fprintf(tw, "latency ms\tp50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs)
		fmt.Fprintf(tw, "errors\t%d %s\n", r.ErrorCount, formatErrors(r.Errors))
		fmt.Fprintf(tw, "server CPU\t%.2fs (%.3f ms per connect)\n", r.Load.ServerCPUS, r.CPUPerConnectMs)
		if r.Load.DBCPUS > 0 {
			fmt.Fprintf(tw, "database CPU\t%.2fs (%.3f ms per connect)\n", r.Load.DBCPUS, r.DBCPUPerConnectMs)
		}
		fmt.Fprintf(tw, "generator CPU\t%.2fs (%.3f ms per connect)\n", r.Load.ClientCPUS, r.ClientCPUPerConnectMs)
		if r.Wakes > 0 {
			fmt.Fprintf(tw, "wakes\t%d (%.3f ms server CPU, %.3f ms generator CPU per wake)\n", r.Wakes, r.CPUPerWakeMs, r.ClientCPUPerWakeMs)
		}
		if r.Answered > 0 {
			fmt.Fprintf(tw, "command round trip\t%.3f ms server CPU per command answered\n", r.CPUPerCommandMs)
		}
		if r.Replicas > 1 {
			fmt.Fprintf(tw, "replicas\t%d (devices spread over them, moved to the next on a failed request)\n", r.Replicas)
		}
		if k := r.Kill; k != nil {
			fmt.Fprintf(tw, "kill\tSIGKILL of pid %d after %d requests", k.PID, k.AfterRequests)
			if k.Restarted {
				fmt.Fprintf(tw, ", restarted and ready in %.2fs", k.RestartS)
			}
			fmt.Fprintln(tw)
		}
		if d := r.Delivery; d != nil {
			fmt.Fprintf(tw, "delivery\t%d commands queued, %d acknowledged once, %d lost, %d stored twice, %d offered again\n",
				d.Queued, d.Acknowledged, d.Lost, d.StoredTwice, d.Redelivered)
		}
		if r.TLS {
			fmt.Fprintf(tw, "TLS handshakes\t%d (%d resumed, %.0f%%; %d HTTP/2)\n", r.TLSHandshakes, r.TLSResumed, r.TLSResumedPct, r.HTTP2Connections)
		}
	}
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(tw, "peak RSS\t%.1f MiB\n", float64(r.PeakRSSBytes)/(1<<20))
	}
	tw.Flush()
}

func signingText(s string) string {
	switch s {
	case signingIdleOnce:
		return "Idle once per device, resent (--sign-idle-once)"
	case signingFresh:
		return "every message afresh"
	}
	return "unknown"
}

func formatErrors(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := "("
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, m[k])
	}
	return out + ")"
}

func (r *report) writeJSON(path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
