package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/scep/scepclient"
)

// The serve wiring: with -rate-limit 2, devices that enroll correctly are
// never limited, while wrong SCEP challenges and unknown enrollment links
// from the same address get a 429 on the third try, counted in /metrics.
func TestRateLimitsWired(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.RateLimit = 2 })
	for range 3 {
		s.EnrollOTA(t)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c, err := scepclient.New(s.URL+"/scep", s.Client)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "00000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for i := range 2 {
		var fe *scepclient.FailError
		if _, err := c.Enroll(context.Background(), key, pkix.Name{CommonName: "x"}, wrong); !errors.As(err, &fe) {
			t.Fatalf("wrong challenge %d: %v, want a SCEP failure", i+1, err)
		}
	}
	if _, err := c.Enroll(context.Background(), key, pkix.Name{CommonName: "x"}, wrong); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("third wrong challenge: %v, want HTTP 429", err)
	}

	get := func(path string) int {
		resp, err := s.Client.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 2 {
		if code := get("/enroll/no-such-link"); code != http.StatusNotFound {
			t.Fatalf("unknown link: %d, want 404", code)
		}
	}
	if code := get("/enroll/no-such-link"); code != http.StatusTooManyRequests {
		t.Fatalf("third unknown link: %d, want 429", code)
	}

	resp, err := s.Client.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`orchard_rate_limited_total{limit="scep_challenge"} 1`,
		`orchard_rate_limited_total{limit="enroll_token"} 1`,
		`orchard_scep_requests_total{kind="profile",outcome="issued"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
