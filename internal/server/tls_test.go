package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// A device woken again resumes its TLS session instead of a full
// handshake, over HTTP/2 as over HTTP/1.1, and the server key is ECDSA
// P-256: the two make a wake's handshake cheap for the server.
func TestTLSResumption(t *testing.T) {
	s := servertest.Start(t)
	leaf := s.TLSCertificate().Leaf
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("server key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, tc := range []struct {
		name  string
		h2    bool
		max   uint16
		proto int
	}{
		{"HTTP/2 TLS 1.3", true, tls.VersionTLS13, 2},
		{"HTTP/1.1 TLS 1.3", false, tls.VersionTLS13, 1},
		{"HTTP/1.1 TLS 1.2", false, tls.VersionTLS12, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tc.max,
					ClientSessionCache: tls.NewLRUClientSessionCache(4)},
				ForceAttemptHTTP2: tc.h2,
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for i, wantResumed := range []bool{false, true} {
				resp, err := c.Get(s.URL + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if resp.StatusCode != 200 || resp.ProtoMajor != tc.proto {
					t.Fatalf("request %d: %d over HTTP/%d, want 200 over HTTP/%d", i, resp.StatusCode, resp.ProtoMajor, tc.proto)
				}
				if resp.TLS.DidResume != wantResumed {
					t.Fatalf("request %d: resumed %v, want %v", i, resp.TLS.DidResume, wantResumed)
				}
				tr.CloseIdleConnections() // the next request is a new connection, as after a wake
			}
		})
	}
}
