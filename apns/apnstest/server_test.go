package apnstest_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"golang.org/x/net/http2"
)

func newCert(t *testing.T, opts ...apnstest.CertOption) *apnstest.Cert {
	t.Helper()
	c, err := apnstest.NewPushCert(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func client(s *apnstest.Server, c *apnstest.Cert) *http.Client {
	return &http.Client{Transport: &http2.Transport{TLSClientConfig: s.ClientTLSConfig(c.TLS)}}
}

const tok = "0a0b0c0d0e0f"

func TestFakeChecksRequests(t *testing.T) {
	c := newCert(t)
	s := apnstest.NewServer(c.Leaf)
	defer s.Close()
	hc := client(s, c)

	big := `{"mdm":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name, method, path, topic, pushType, priority, expiration, body string
		status                                                          int
		reason                                                          string
	}{
		{"valid", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "1700000000", `{"mdm":"magic"}`, 200, ""},
		{"headers optional", "POST", "/3/device/" + tok, c.Topic, "", "", "", `{"mdm":"magic"}`, 200, ""},
		{"GET", "GET", "/3/device/" + tok, c.Topic, "mdm", "10", "", ``, 405, "MethodNotAllowed"},
		{"bad path", "POST", "/2/device/" + tok, c.Topic, "mdm", "10", "", `{"mdm":"magic"}`, 404, "BadPath"},
		{"token not hex", "POST", "/3/device/zz", c.Topic, "mdm", "10", "", `{"mdm":"magic"}`, 400, "BadDeviceToken"},
		{"empty token", "POST", "/3/device/", c.Topic, "mdm", "10", "", `{"mdm":"magic"}`, 400, "BadDeviceToken"},
		{"no topic", "POST", "/3/device/" + tok, "", "mdm", "10", "", `{"mdm":"magic"}`, 400, "MissingTopic"},
		{"other topic", "POST", "/3/device/" + tok, "com.apple.mgmt.External.x", "mdm", "10", "", `{"mdm":"magic"}`, 400, "TopicDisallowed"},
		{"alert push type", "POST", "/3/device/" + tok, c.Topic, "alert", "10", "", `{"mdm":"magic"}`, 400, "InvalidPushType"},
		{"bad priority", "POST", "/3/device/" + tok, c.Topic, "mdm", "7", "", `{"mdm":"magic"}`, 400, "BadPriority"},
		{"bad expiration", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "soon", `{"mdm":"magic"}`, 400, "BadExpirationDate"},
		{"empty payload", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", ``, 400, "PayloadEmpty"},
		{"too large", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", big, 413, "PayloadTooLarge"},
		{"extra key", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", `{"mdm":"magic","aps":{}}`, 400, "BadPayload"},
		{"empty magic", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", `{"mdm":""}`, 400, "BadPayload"},
		{"magic not a string", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", `{"mdm":1}`, 400, "BadPayload"},
		{"trailing data", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", `{"mdm":"a"}{}`, 400, "BadPayload"},
		{"not JSON", "POST", "/3/device/" + tok, c.Topic, "mdm", "10", "", `mdm=magic`, 400, "BadPayload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			req, err := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]string{"apns-topic": tc.topic, "apns-push-type": tc.pushType, "apns-priority": tc.priority, "apns-expiration": tc.expiration} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || resp.Header.Get("apns-id") == "" {
				t.Fatalf("status %d apns-id %q body %s, want %d", resp.StatusCode, resp.Header.Get("apns-id"), body, tc.status)
			}
			if tc.status != 200 {
				var e struct{ Reason string }
				if err := json.Unmarshal(body, &e); err != nil || e.Reason != tc.reason {
					t.Errorf("body %s, want reason %s", body, tc.reason)
				}
			}
			pushes := s.Pushes()
			if len(pushes) != 1 || pushes[0].Status != tc.status || pushes[0].Reason != tc.reason {
				t.Fatalf("recorded %+v", pushes)
			}
			if tc.status == 200 && (pushes[0].PushMagic != "magic" || hex.EncodeToString(pushes[0].Token) != tok || pushes[0].Topic != c.Topic) {
				t.Errorf("recorded %+v", pushes[0])
			}
		})
	}
}

func TestFakeRefusesUntrustedAndExpiredCerts(t *testing.T) {
	trusted := newCert(t)
	stranger := newCert(t)
	expired := newCert(t, apnstest.WithValidity(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)))
	s := apnstest.NewServer(trusted.Leaf, expired.Leaf)
	defer s.Close()
	for _, tc := range []struct {
		name   string
		cert   *apnstest.Cert
		reason string
	}{
		{"stranger", stranger, "BadCertificate"},
		{"expired", expired, "ExpiredCertificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.URL()+"/3/device/"+tok, strings.NewReader(`{"mdm":"m"}`))
			req.Header.Set("apns-topic", tc.cert.Topic)
			resp, err := client(s, tc.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 403 || !bytes.Contains(body, []byte(tc.reason)) {
				t.Errorf("status %d body %s", resp.StatusCode, body)
			}
		})
	}
}

func TestFakeScripts(t *testing.T) {
	c := newCert(t)
	s := apnstest.NewServer(c.Leaf)
	defer s.Close()
	hc := client(s, c)
	push := func(token string) (int, string) {
		req, _ := http.NewRequest("POST", s.URL()+"/3/device/"+token, strings.NewReader(`{"mdm":"m"}`))
		req.Header.Set("apns-topic", c.Topic)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Reason    string
			Timestamp int64
		}
		body, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == 410 && e.Timestamp == 0 {
			t.Error("410 without timestamp")
		}
		return resp.StatusCode, e.Reason
	}
	a, b := "aa01", "bb02"
	s.Script([]byte{0xaa, 0x01}, apnstest.Unregistered, apnstest.TooManyRequests)
	s.ScriptAll(apnstest.ServiceUnavailable)
	s.SetDefault(apnstest.Answer{Status: 500})
	steps := []struct {
		token  string
		status int
		reason string
	}{
		{a, 410, "Unregistered"},
		{b, 503, "ServiceUnavailable"},
		{a, 429, "TooManyRequests"},
		{a, 500, "InternalServerError"},
		{b, 500, "InternalServerError"},
	}
	for i, st := range steps {
		if status, reason := push(st.token); status != st.status || reason != st.reason {
			t.Errorf("step %d: %d %s, want %d %s", i, status, reason, st.status, st.reason)
		}
	}
	s.Reset()
	if status, _ := push(a); status != 200 || len(s.Pushes()) != 1 {
		t.Errorf("after Reset: %d, %d pushes", status, len(s.Pushes()))
	}
}

func TestNewPushCert(t *testing.T) {
	c := newCert(t)
	if !strings.HasPrefix(c.Topic, "com.apple.mgmt.External.") || len(c.Topic) != len("com.apple.mgmt.External.")+36 {
		t.Errorf("topic %q", c.Topic)
	}
	if err := c.Leaf.CheckSignatureFrom(c.CA); err != nil {
		t.Errorf("leaf not signed by CA: %v", err)
	}
	if c.Key.N.BitLen() != 2048 {
		t.Errorf("key bits %d", c.Key.N.BitLen())
	}
	other := newCert(t)
	if other.Topic == c.Topic {
		t.Error("two certificates share a topic")
	}
}
