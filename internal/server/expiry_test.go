package server_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// /metrics carries the uploaded push certificate's and ABM token's expiry
// as Unix times, the series alerts 30 days ahead are built on; the token's
// consumer secret never shows.
func TestExpiryMetrics(t *testing.T) {
	tok := deptest.NewToken()
	apple := deptest.NewServer(t, tok, 1)
	s := servertest.StartWithoutPushCert(t, func(c *server.Config) { c.DEPURL = apple.URL })
	scrape := func() string {
		t.Helper()
		return string(s.Get(t, "/metrics"))
	}
	if text := scrape(); strings.Contains(text, "orchard_push_certificate_expiry_timestamp_seconds ") {
		t.Error("an expiry series before any push certificate")
	}

	notAfter := time.Now().Add(20 * 24 * time.Hour).Truncate(time.Second)
	cert, err := apnstest.NewPushCert(apnstest.WithValidity(time.Now().Add(-time.Hour), notAfter))
	if err != nil {
		t.Fatal(err)
	}
	if code := s.API(t, "PUT", "/v1/push-certificate", map[string]any{"cert_pem": string(cert.CertPEM), "key_pem": string(cert.KeyPEM)}, nil); code != http.StatusOK {
		t.Fatalf("upload push certificate = %d", code)
	}
	block, _ := pem.Decode(s.Get(t, "/v1/dep/public-key"))
	depCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var token struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/dep/tokens", map[string]any{"name": "Main", "token": string(deptest.P7M(t, depCert, tok))}, &token); code != http.StatusCreated {
		t.Fatalf("upload token = %d", code)
	}

	text := scrape()
	for _, want := range []string{
		fmt.Sprintf("orchard_push_certificate_expiry_timestamp_seconds %g", float64(notAfter.Unix())),
		fmt.Sprintf(`orchard_dep_token_expiry_timestamp_seconds{name="Main",token="%s"} %g`, token.ID, float64(tok.Expiry.Unix())),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, tok.ConsumerSecret) || strings.Contains(text, tok.AccessSecret) {
		t.Error("/metrics shows a token secret")
	}
}
