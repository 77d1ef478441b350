package metrics

import (
	"testing"
	"time"
)

// The expiry gauges follow what the funcs report at each scrape: a token
// deleted since the last scrape loses its series, no certificate means no
// series, and a token with no known expiry has none either.
func TestExpiryGauges(t *testing.T) {
	m := New()
	cert := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	haveCert := true
	tokens := []TokenExpiry{
		{ID: "t1", Name: "Main", NotAfter: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)},
		{ID: "t2", Name: "School"},
	}
	if err := m.SetExpiryFuncs(func() (time.Time, bool) { return cert, haveCert }, func() []TokenExpiry { return tokens }); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m)
	if v, ok := value(fams, "orchard_push_certificate_expiry_timestamp_seconds", nil); !ok || v != float64(cert.Unix()) {
		t.Errorf("push certificate expiry = %v %v, want %d", v, ok, cert.Unix())
	}
	if v, ok := value(fams, "orchard_dep_token_expiry_timestamp_seconds", map[string]string{"token": "t1", "name": "Main"}); !ok || v != float64(tokens[0].NotAfter.Unix()) {
		t.Errorf("token t1 expiry = %v %v", v, ok)
	}
	if _, ok := value(fams, "orchard_dep_token_expiry_timestamp_seconds", map[string]string{"token": "t2", "name": "School"}); ok {
		t.Error("a token without an expiry has a series")
	}

	haveCert, tokens = false, nil
	fams = scrape(t, m)
	if _, ok := fams["orchard_push_certificate_expiry_timestamp_seconds"]; ok {
		t.Error("no certificate, yet a push certificate expiry series")
	}
	if _, ok := fams["orchard_dep_token_expiry_timestamp_seconds"]; ok {
		t.Error("a deleted token keeps its series")
	}
	if err := m.SetExpiryFuncs(nil, nil); err == nil {
		t.Error("nil funcs accepted")
	}
}
