package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/pki"
)

// Connection modes: how a device's requests meet the server.
const (
	// connH1: one keep-alive HTTP/1.1 connection per device.
	connH1 = "h1"
	// connH2: one HTTP/2 connection per device, as a device's URL session has.
	connH2 = "h2"
	// connWake: each wake opens a new connection (TLS resumed from the
	// device's session cache), sends Idle, answers what it gets, closes.
	connWake = "wake"
)

// tlsStats counts the TLS handshakes the devices' connections made.
type tlsStats struct {
	handshakes atomic.Int64
	resumed    atomic.Int64
	h2         atomic.Int64
}

// observe is every device connection's VerifyConnection hook: it runs on
// full and resumed handshakes alike, after the certificate checks.
func (s *tlsStats) observe(cs tls.ConnectionState) error {
	s.handshakes.Add(1)
	if cs.DidResume {
		s.resumed.Add(1)
	}
	if cs.NegotiatedProtocol == "h2" {
		s.h2.Add(1)
	}
	return nil
}

// tlsMark is a snapshot of the counters, to report one phase.
type tlsMark struct{ handshakes, resumed, h2 int64 }

func (s *tlsStats) mark() tlsMark {
	return tlsMark{s.handshakes.Load(), s.resumed.Load(), s.h2.Load()}
}

// transports builds the HTTP clients of one run: one per device (its own
// connection and TLS session cache) and one shared by the admin calls.
type transports struct {
	mode   string
	roots  *x509.CertPool // nil: the system roots
	stats  *tlsStats
	dialer *net.Dialer
}

func newTransports(mode string, roots *x509.CertPool) *transports {
	return &transports{mode: mode, roots: roots, stats: &tlsStats{}, dialer: &net.Dialer{Timeout: 5 * time.Second}}
}

// device is one device's client, with its own TLS session cache. Its
// transport keeps at most one idle connection per host, so the device's
// requests share one connection as a device's do; in wake mode closing
// its idle connections ends the wake (see wakeTransport).
func (t *transports) device() *http.Client {
	conf := &tls.Config{
		RootCAs:            t.roots,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
		VerifyConnection:   t.stats.observe,
	}
	var p http.Protocols
	switch t.mode {
	case connH1:
		p.SetHTTP1(true)
	case connH2:
		p.SetHTTP2(true)
	default: // wake: offer both and take what the server picks, as a URL session does
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	build := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
		return &http.Transport{
			DialContext:         dial,
			TLSClientConfig:     conf,
			Protocols:           &p,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     5 * time.Minute,
		}
	}
	var rt http.RoundTripper
	if t.mode == connWake {
		w := &wakeTransport{build: build, dialer: t.dialer}
		w.cur = w.fresh()
		rt = w
	} else {
		rt = build(t.dialer.DialContext)
	}
	return &http.Client{Timeout: time.Minute, Transport: rt}
}

// wakeTransport is a device's transport in wake mode. A wake's requests
// share one connection; CloseIdleConnections, at the end of every wake,
// closes every connection the wake opened (HTTP/2 may not have marked a
// finished one idle yet, and the next wake would reuse it) and starts the
// next wake on a fresh transport. The TLS config, and with it the
// device's session cache, carries over.
type wakeTransport struct {
	build  func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport
	dialer *net.Dialer

	mu    sync.Mutex
	cur   *http.Transport
	conns []net.Conn
}

func (w *wakeTransport) fresh() *http.Transport {
	return w.build(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := w.dialer.DialContext(ctx, network, addr)
		if err == nil {
			w.mu.Lock()
			w.conns = append(w.conns, c)
			w.mu.Unlock()
		}
		return c, err
	})
}

func (w *wakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	cur := w.cur
	w.mu.Unlock()
	return cur.RoundTrip(r)
}

// CloseIdleConnections ends the wake.
func (w *wakeTransport) CloseIdleConnections() {
	next := w.fresh()
	w.mu.Lock()
	old, conns := w.cur, w.conns
	w.cur, w.conns = next, nil
	w.mu.Unlock()
	old.CloseIdleConnections()
	for _, c := range conns {
		c.Close()
	}
}

// admin is the pooled client of profile fetches and command queueing.
func (t *transports) admin(concurrency int) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			DialContext:         t.dialer.DialContext,
			TLSClientConfig:     &tls.Config{RootCAs: t.roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency * 2,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// loadCA reads the PEM certificates the generator trusts for TLS.
func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	certs, err := pki.ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// rootsFor decides what the run trusts for TLS: --ca when given, else
// (Orchard over https) the root its enrollment profile installs.
func rootsFor(ctx context.Context, c *config) (*x509.CertPool, error) {
	switch {
	case c.CA != "":
		return loadCA(c.CA)
	case c.Target == targetOrchard && strings.HasPrefix(c.ProfileURL, "https://"):
		return trustFromProfile(ctx, c)
	}
	return nil, nil
}

// trustFromProfile does what a person enrolling a device does: fetch the
// enrollment profile before the device trusts the server, install the
// root it carries (com.apple.security.root), and trust the server from
// then on. The fetch itself cannot verify the server yet, so its
// certificate is checked afterwards: it must chain to the profile's root
// for the profile's host, or the run stops. Validation allows this only
// for loopback servers (a remote one needs --ca): the fetch sends the API
// key before the server is verified.
func trustFromProfile(ctx context.Context, c *config) (*x509.CertPool, error) {
	var mu sync.Mutex
	var seen []*x509.Certificate
	hc := &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{
				MinVersion:         tls.VersionTLS12,
				InsecureSkipVerify: true, // checked below, once the profile names its root
				VerifyConnection: func(cs tls.ConnectionState) error {
					mu.Lock()
					seen = cs.PeerCertificates
					mu.Unlock()
					return nil
				},
			},
		},
	}
	defer hc.CloseIdleConnections()
	raw, err := apiGet(ctx, hc, c.ProfileURL, c.APIKey)
	if err != nil {
		return nil, fmt.Errorf("profile for TLS trust: %w", err)
	}
	ps, err := simdevice.ReadProfile(raw)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	chain := seen
	mu.Unlock()
	if len(chain) == 0 {
		return nil, errors.New("profile for TLS trust: the server presented no certificate")
	}
	u, err := url.Parse(c.ProfileURL)
	if err != nil {
		return nil, err
	}
	var pool *x509.CertPool // nil: the system roots, for a server with a public certificate
	if len(ps.Roots) > 0 {
		pool = x509.NewCertPool()
		for _, r := range ps.Roots {
			pool.AddCert(r)
		}
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: u.Hostname()}); err != nil {
		if pool == nil {
			return nil, fmt.Errorf("the profile installs no root and the server certificate is not trusted (pass --ca): %w", err)
		}
		return nil, fmt.Errorf("the server certificate does not chain to the profile's root: %w", err)
	}
	return pool, nil
}
