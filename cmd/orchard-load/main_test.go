package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/storage"
)

func TestLoopbackOnly(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"https://127.0.0.5/mdm", true},
		{"http://[::1]:9000", true},
		{"http://localhost:1", true},
		{"http://10.0.0.1:8080", false},
		{"https://mdm.example.com", false},
		{"http://127.0.0.1.example.com", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		if err := loopbackOnly(tt.url); (err == nil) != tt.ok {
			t.Errorf("loopbackOnly(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

func TestFlagValidation(t *testing.T) {
	tests := []struct {
		args []string
		want string // substring of the error; "" for success
	}{
		{nil, ""},
		{[]string{"--server", "http://192.0.2.1"}, "not a loopback"},
		{[]string{"--server", "http://192.0.2.1", "--allow-remote"}, ""},
		{[]string{"--devices", "0"}, "--devices"},
		{[]string{"--devices", "100001"}, "--devices"},
		{[]string{"--connects", "0"}, "--connects"},
		{[]string{"--concurrency", "5000"}, "--concurrency"},
		{[]string{"--scenario", "storm"}, "--scenario"},
		{[]string{"--target", "micromdm"}, "--target"},
		{[]string{"--target", "nanomdm"}, "--scep-url"},
		{[]string{"--target", "nanomdm", "--scep-url", "http://127.0.0.1:1/scep", "--challenge", "x", "--backlog", "5"}, "orchard only"},
		{[]string{"--target", "nanomdm", "--scep-url", "http://203.0.113.9/scep", "--challenge", "x"}, "not a loopback"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--first", "-1"}, "--first"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--conn", "h3"}, "--conn"},
		{[]string{"--conn", "h2"}, "needs an https"},
		{[]string{"--conn", "h2", "--server", "https://127.0.0.1:8443"}, ""},
		{[]string{"--conn", "wake"}, ""},
		{[]string{"--sign-fresh", "--sign-idle-once"}, "pick one"},
		{[]string{"--server", "https://192.0.2.1", "--allow-remote"}, "needs --ca"},
		{[]string{"--server", "https://192.0.2.1", "--allow-remote", "--ca", "x.pem"}, ""},
		{[]string{"--rounds", "0"}, "--rounds"},
		{[]string{"--rounds", "3"}, "goes with --scenario roundtrip"},
		{[]string{"--rounds", "3", "--scenario", "roundtrip"}, ""},
	}
	for _, tt := range tests {
		_, err := parseLoadFlags(tt.args, io.Discard)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
	c, err := parseLoadFlags([]string{"--target", "nanomdm", "--server", "http://127.0.0.1:9000/", "--scep-url", "http://127.0.0.1:8080/scep", "--challenge", "c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.CheckinURL != "http://127.0.0.1:9000/checkin" || c.ServerURL != "http://127.0.0.1:9000/mdm" {
		t.Errorf("nanomdm defaults: checkin %q, server %q", c.CheckinURL, c.ServerURL)
	}
	// Every message is signed afresh unless asked otherwise.
	for _, tt := range []struct {
		args []string
		once bool
	}{{nil, false}, {[]string{"--sign-idle-once"}, true}, {[]string{"--sign-fresh=false"}, true}, {[]string{"--sign-fresh"}, false}} {
		c, err := parseLoadFlags(tt.args, io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
		} else if c.SignIdleOnce != tt.once || c.Conn != connH1 {
			t.Errorf("%v: sign-idle-once %v, conn %q; want %v, h1", tt.args, c.SignIdleOnce, c.Conn, tt.once)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 90, 4 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("p%v of %d values = %v, want %v", tt.q, len(tt.sorted), got, tt.want)
		}
	}
}

func TestParseProc(t *testing.T) {
	stat, err := os.ReadFile("testdata/proc-stat")
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("testdata/proc-status")
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseProc(stat, status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (1234 + 567) * 10 * time.Millisecond; p.cpu != want {
		t.Errorf("cpu = %v, want %v (utime+stime ticks at 100 Hz)", p.cpu, want)
	}
	if p.peakRSS != 48128<<10 {
		t.Errorf("peak RSS = %d, want %d", p.peakRSS, 48128<<10)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 12 13"} {
		if _, err := parseProc([]byte(bad), status); err == nil {
			t.Errorf("parseProc(%q) accepted", bad)
		}
	}
	self, err := readProc(os.Getpid())
	if err != nil || self.peakRSS <= 0 {
		t.Errorf("readProc(self) = %+v, %v", self, err)
	}
}

// testConfig is a run against a servertest server over its TLS, which the
// generator trusts from the enrollment profile's root payload.
func testConfig(t *testing.T, s *servertest.Server, mutate func(*config)) *config {
	t.Helper()
	c, err := parseLoadFlags([]string{"--server", s.URL, "--api-key", s.APIKey(), "--rebase=false",
		"--key-cache", filepath.Join(t.TempDir(), "keys"), "--concurrency", "4", "--timeout", "1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mutate(c)
	return c
}

func TestRoundtripAgainstOrchard(t *testing.T) {
	s := servertest.Start(t)
	c := testConfig(t, s, func(c *config) { c.Devices, c.Scenario = 4, scenarioRoundtrip })
	rep, err := runLoad(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Each device: Idle (gets DeviceInformation), then the answer (gets nothing).
	if rep.Requests != 8 || rep.Answered != 4 || rep.ErrorCount != 0 {
		t.Errorf("requests %d, answered %d, errors %d %v; want 8, 4, 0", rep.Requests, rep.Answered, rep.ErrorCount, rep.Errors)
	}
	ctx := context.Background()
	for i := range 4 {
		udid := newDevice(i, nil).UDID
		e, err := s.Store().Enrollment(ctx, udid)
		if err != nil || !e.Enrolled || e.EnrollmentMethod != storage.KindProfile || len(e.Token) == 0 {
			t.Fatalf("device %d: enrollment %+v, %v; want enrolled by profile with a push token", i, e, err)
		}
		if n, err := s.Store().QueueDepth(ctx, udid); err != nil || n != 0 {
			t.Errorf("device %d: queue depth %d, %v; want 0", i, n, err)
		}
	}
	// The answers reached the server as DeviceInformation results.
	var devs struct {
		Devices []struct {
			ID     string `json:"id"`
			Device struct {
				DeviceName string `json:"device_name"`
			} `json:"device"`
		} `json:"devices"`
	}
	if code := s.API(t, "GET", "/v1/devices", nil, &devs); code != 200 || len(devs.Devices) != 4 {
		t.Errorf("GET /v1/devices = %d with %d devices, want 200 with 4", code, len(devs.Devices))
	}
}

// Rounds queue again once every queue is empty; the drains are measured
// and every round's commands are checked.
func TestRoundtripRounds(t *testing.T) {
	s := servertest.Start(t)
	c := testConfig(t, s, func(c *config) { c.Devices, c.Scenario, c.Rounds, c.Commands = 3, scenarioRoundtrip, 3, 2 })
	rep, err := runLoad(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Per device and round: Idle, then two answers.
	if rep.Requests != 27 || rep.Answered != 18 || rep.ErrorCount != 0 {
		t.Errorf("requests %d, answered %d, errors %d %v; want 27, 18, 0", rep.Requests, rep.Answered, rep.ErrorCount, rep.Errors)
	}
	if d := rep.Delivery; d == nil || d.Queued != 18 || d.Acknowledged != 18 || d.Lost != 0 || d.Redelivered != 0 {
		t.Errorf("delivery %+v; want 18 queued and acknowledged once, none lost or offered again", d)
	}
}

func TestIdleWithBacklog(t *testing.T) {
	for _, once := range []bool{true, false} {
		t.Run(fmt.Sprintf("sign-idle-once=%v", once), func(t *testing.T) {
			s := servertest.Start(t)
			c := testConfig(t, s, func(c *config) { c.Devices, c.Connects, c.Backlog, c.First, c.SignIdleOnce = 2, 3, 5, 10, once })
			rep, err := runLoad(context.Background(), c, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			// 3 devices x 3 connects; the backlog device answers 2 of its 5 commands.
			if rep.Requests != 9 || rep.Answered != 2 || rep.ErrorCount != 0 {
				t.Errorf("requests %d, answered %d, errors %d %v; want 9, 2, 0", rep.Requests, rep.Answered, rep.ErrorCount, rep.Errors)
			}
			backlogged := newDevice(12, nil).UDID
			if n, err := s.Store().QueueDepth(context.Background(), backlogged); err != nil || n != 3 {
				t.Errorf("backlog device queue depth %d, %v; want 3", n, err)
			}
			if rep.P50Ms <= 0 || rep.MaxMs < rep.P99Ms || rep.P99Ms < rep.P50Ms {
				t.Errorf("latencies out of order: %+v", rep)
			}
		})
	}
}

func TestEnrollFailureStopsTheRun(t *testing.T) {
	s := servertest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // nothing listens there now
	c := testConfig(t, s, func(c *config) {
		c.Devices, c.Connects = 2, 2
		c.ProfileURL = "http://" + ln.Addr().String() + "/v1/enrollment/profile"
	})
	if _, err := runLoad(context.Background(), c, io.Discard); err == nil || !strings.Contains(err.Error(), "enroll device") {
		t.Errorf("enrollment against a closed port: %v, want an enroll error", err)
	}
	c = testConfig(t, s, func(c *config) { c.Devices, c.APIKey = 1, "wrong-key-wrong-key" })
	if _, err := runLoad(context.Background(), c, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong API key: %v, want the 401 in the error", err)
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&simdevice.StatusError{Code: 403}, "http_403"},
		{fmt.Errorf("put: %w", &simdevice.StatusError{Code: 500}), "http_500"},
		{context.DeadlineExceeded, "timeout"},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "network"},
		{errors.New("decode command: bad plist"), "other"},
	}
	for _, tt := range tests {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	st := newStats()
	st.observe(time.Millisecond, nil)
	st.observe(0, &simdevice.StatusError{Code: 403})
	st.observe(0, &simdevice.StatusError{Code: 403})
	var r report
	r.fill(st)
	if r.Requests != 1 || r.ErrorCount != 2 || r.Errors["http_403"] != 2 {
		t.Errorf("report %+v: want 1 ok request and 2 http_403 errors", r)
	}
}

func TestSeedThenServe(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicURL: "https://127.0.0.1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := seed(context.Background(), dir, 0, 30); err != nil {
		t.Fatal(err)
	}
	if err := seed(context.Background(), dir, 30, 20); err != nil { // a second seed adds, as the cost curve does
		t.Fatal(err)
	}
	s := servertest.Start(t, func(c *server.Config) { c.DataDir = dir })
	ctx := context.Background()
	all, err := s.Store().ListEnrollments(ctx, "", 1000)
	if err != nil || len(all) != 50 {
		t.Fatalf("%d enrollments, %v; want 50", len(all), err)
	}
	for _, e := range all {
		if !e.Enrolled || e.CertHash == "" || len(e.Token) == 0 {
			t.Fatalf("seeded enrollment %s: %+v", e.ID, e)
		}
		if dev, err := s.Store().DeviceForCert(ctx, e.CertHash); err != nil || dev != e.ID {
			t.Fatalf("cert of %s bound to %q, %v", e.ID, dev, err)
		}
		if _, err := s.Store().Cert(ctx, e.CertHash); err != nil {
			t.Fatalf("cert record of %s: %v", e.ID, err)
		}
	}
	// Seeded devices are real enrollments: commands can be queued for them.
	var out any
	body := map[string]any{"targets": []string{all[0].ID, all[49].ID}, "request_type": "DeviceInformation",
		"payload": map[string]any{"Queries": []string{"OSVersion"}}}
	if code := s.API(t, "POST", "/v1/commands", body, &out); code/100 != 2 {
		t.Errorf("queue for seeded devices = %d %v", code, out)
	}
	if n, _ := s.Store().QueueDepth(ctx, all[49].ID); n != 1 {
		t.Errorf("seeded device queue depth %d, want 1", n)
	}
	if err := seed(ctx, t.TempDir(), 0, 1); err == nil {
		t.Error("seeding a dir without a CA succeeded")
	}
}

func TestReportTables(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r report) string {
		b, _ := json.Marshal(r)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.json", report{Label: "Orchard", PerSecond: 300, P50Ms: 2, CPUPerConnectMs: 0.5, Load: phase{ServerCPUS: 2}, PeakRSSBytes: 32 << 20})
	b := write("b.json", report{Label: "NanoMDM", PerSecond: 200, P50Ms: 4, CPUPerConnectMs: 1, Load: phase{ServerCPUS: 4}, PeakRSSBytes: 16 << 20})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"report", "compare", a, b}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| figure | Orchard | NanoMDM | ratio Orchard/NanoMDM |",
		"| connects/s | 300.0 | 200.0 | 1.50 |",
		"| latency p50 (ms) | 2.00 | 4.00 | 0.50 |",
		"| server CPU per connect (ms) | 0.500 | 1.000 | 0.50 |",
		"| peak RSS (MiB) | 32.0 | 16.0 | 2.00 |",
		"| errors | 0 | 0 | = |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare table lacks %q:\n%s", want, out.String())
		}
	}
	// Several runs: a column each, then each one's ratio to the last.
	w := write("w.json", report{Label: "Wake", Conn: connWake, TLS: true, Signing: signingFresh, PerSecond: 150, Wakes: 40, CPUPerWakeMs: 0.25, TLSHandshakes: 40, TLSResumedPct: 100})
	out.Reset()
	if err := run(context.Background(), []string{"report", "compare", a, w, b}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| figure | Orchard | Wake | NanoMDM | ratio Orchard/NanoMDM | ratio Wake/NanoMDM |",
		"|---|---:|---:|---:|---:|---:|",
		"| transport | plain HTTP | TLS wake | plain HTTP | | |",
		"| signing | unknown | every message afresh | unknown | | |",
		"| connects/s | 300.0 | 150.0 | 200.0 | 1.50 | 0.75 |",
		"| server CPU per wake (ms) | 0.000 | 0.250 | 0.000 | = | n/a |",
		"| TLS handshakes resumed (%) | 0 | 100 | 0 | = | n/a |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("three-way compare table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"report", "curve", a, b}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out.String(), "\n"); lines != 4 {
		t.Errorf("curve table has %d lines, want header, rule and 2 rows:\n%s", lines, out.String())
	}
	for _, args := range [][]string{{"report", "compare", a}, {"report", "pie", a, b}, {"report", "curve", filepath.Join(dir, "missing.json")}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestConnModes runs the command round trip and idle wakes in every
// connection mode against a real server over TLS, and checks how the
// devices' connections met it: one connection per device in h1 and h2
// (HTTP/2 negotiated in h2), a new resumed handshake per wake in wake mode.
func TestConnModes(t *testing.T) {
	const devices = 3
	for _, mode := range []string{connH1, connH2, connWake} {
		t.Run(mode, func(t *testing.T) {
			s := servertest.Start(t)
			c := testConfig(t, s, func(c *config) { c.Devices, c.Scenario, c.Conn = devices, scenarioRoundtrip, mode })
			rep, err := runLoad(context.Background(), c, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 2*devices || rep.Answered != devices || rep.ErrorCount != 0 {
				t.Errorf("requests %d, answered %d, errors %d %v; want %d, %d, 0", rep.Requests, rep.Answered, rep.ErrorCount, rep.Errors, 2*devices, devices)
			}
			for i := range devices {
				if n, err := s.Store().QueueDepth(context.Background(), newDevice(i, nil).UDID); err != nil || n != 0 {
					t.Errorf("device %d: queue depth %d, %v; want 0 (result stored)", i, n, err)
				}
			}
			if !rep.TLS || rep.Conn != mode || rep.Signing != signingFresh {
				t.Errorf("report says tls=%v conn=%q signing=%q", rep.TLS, rep.Conn, rep.Signing)
			}
			// Every device reconnects once for the measured phase (in h1
			// and h2 just before it); each resumes the session its
			// enrollment left in its cache.
			if rep.TLSHandshakes != devices || rep.TLSResumed != devices {
				t.Errorf("%d TLS handshakes, %d resumed; want %d, all resumed", rep.TLSHandshakes, rep.TLSResumed, devices)
			}
			wantH2 := int64(0)
			if mode != connH1 {
				wantH2 = devices // wake offers h2 and the server picks it
			}
			if rep.HTTP2Connections != wantH2 {
				t.Errorf("%d HTTP/2 connections, want %d", rep.HTTP2Connections, wantH2)
			}
			if mode == connWake && rep.Wakes != devices {
				t.Errorf("%d wakes, want %d (one wake answers the command)", rep.Wakes, devices)
			}
		})
	}
}

// TestWakeResumesSessions: every wake is a new TLS connection, and every
// one after enrollment resumes the device's session.
func TestWakeResumesSessions(t *testing.T) {
	const devices, wakes = 2, 4
	s := servertest.Start(t)
	c := testConfig(t, s, func(c *config) { c.Devices, c.Connects, c.Conn = devices, wakes, connWake })
	rep, err := runLoad(context.Background(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Wakes != devices*wakes || rep.Requests != devices*wakes || rep.ErrorCount != 0 {
		t.Fatalf("wakes %d, requests %d, errors %v; want %d, %d, none", rep.Wakes, rep.Requests, rep.Errors, devices*wakes, devices*wakes)
	}
	if rep.TLSHandshakes != devices*wakes {
		t.Errorf("%d handshakes for %d wakes: a wake must open its own connection", rep.TLSHandshakes, rep.Wakes)
	}
	if rep.TLSResumed != rep.TLSHandshakes || rep.TLSResumedPct != 100 {
		t.Errorf("%d of %d handshakes resumed (%.0f%%); want all", rep.TLSResumed, rep.TLSHandshakes, rep.TLSResumedPct)
	}
}

// TestTLSTrust: without --ca the generator trusts what the enrollment
// profile installs, and only when the server's certificate chains to it;
// --ca replaces the profile's root.
func TestTLSTrust(t *testing.T) {
	s := servertest.Start(t)
	ctx := context.Background()

	pool, err := rootsFor(ctx, testConfig(t, s, func(*config) {}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TLSCertificate().Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("the profile's root does not verify the server: %v", err)
	}

	// A server that hands out Orchard's profile with its own certificate
	// is not the server the profile names.
	profile := s.Get(t, "/v1/enrollment/profile")
	impostor := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(profile) }))
	defer impostor.Close()
	c := testConfig(t, s, func(c *config) { c.ProfileURL = impostor.URL + "/v1/enrollment/profile" })
	if _, err := rootsFor(ctx, c); err == nil || !strings.Contains(err.Error(), "does not chain to the profile's root") {
		t.Errorf("impostor accepted: %v", err)
	}

	// --ca with the server's certificate: a whole run, no profile root needed.
	c = testConfig(t, s, func(c *config) { c.Devices, c.Connects, c.CA = 1, 2, filepath.Join(s.Dir, "tls.pem") })
	if rep, err := runLoad(ctx, c, io.Discard); err != nil || rep.Requests != 2 {
		t.Errorf("--ca run: %v, %+v", err, rep)
	}
	// --ca with another root: the run stops at the first TLS handshake.
	other := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: impostor.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c = testConfig(t, s, func(c *config) { c.Devices, c.CA = 1, other })
	var unknown x509.UnknownAuthorityError
	if _, err := runLoad(ctx, c, io.Discard); !errors.As(err, &unknown) {
		t.Errorf("--ca with a foreign root: %v, want an unknown authority error", err)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(s.Dir, "tls.key")} {
		if _, err := loadCA(bad); err == nil {
			t.Errorf("loadCA(%s) accepted", bad)
		}
	}
}

// TestStartServerReadyOnTLS: --server-cmd's readiness poll takes an
// answer from a server with a certificate nobody trusts yet (Orchard's
// self-signed one), which the run then checks against the profile.
func TestStartServerReadyOnTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := startServer(ctx, "sleep 60", ts.URL+"/", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
}
