package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// When every push fails, the log (debug level included) names devices by
// channel and shows at most a token's first 4 bytes, and no per-device
// warning comes from the APNs layer.
func TestFailedPushesLogNoTokens(t *testing.T) {
	cert, err := apnstest.NewPushCert()
	if err != nil {
		t.Fatal(err)
	}
	fake := apnstest.NewServer(cert.Leaf)
	t.Cleanup(fake.Close)
	fake.SetDefault(apnstest.Answer{Status: http.StatusBadRequest, Reason: "BadTopic"})
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, fake.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s := servertest.StartWithoutPushCert(t, func(c *server.Config) {
		c.APNsURL, c.APNsCA = fake.URL(), caFile
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	p12, err := cert.P12("pw")
	if err != nil {
		t.Fatal(err)
	}
	if code := s.API(t, "PUT", "/v1/push-certificate", map[string]any{"p12": base64.StdEncoding.EncodeToString(p12), "password": "pw"}, nil); code != 200 {
		t.Fatalf("upload = %d", code)
	}
	var udids []string
	var tokens [][]byte
	for range 3 {
		dev := s.NewDevice(t)
		dev.Topic = cert.Topic
		s.Enroll(t, dev) // its enrollment push fails too
		udids, tokens = append(udids, dev.UDID), append(tokens, dev.Token)
	}
	if code := s.API(t, "POST", "/v1/push", map[string]any{"targets": udids}, nil); code != http.StatusAccepted {
		t.Fatalf("push = %d", code)
	}
	waitPushes(t, fake, 6)
	for _, udid := range udids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var shown struct {
				Push struct {
					LastPushErr string `json:"last_push_error"`
				} `json:"push"`
			}
			s.API(t, "GET", "/v1/devices/"+udid, nil, &shown)
			if shown.Push.LastPushErr == "BadTopic" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: push failure never recorded", udid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Each failed push writes its debug line before its result is handed on.
	for deadline := time.Now().Add(10 * time.Second); strings.Count(logs.String(), `msg="apns push failed"`) < 6; {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 6 per-push debug lines:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "reason=BadTopic") {
		t.Fatalf("the failure reason is not logged:\n%s", out)
	}
	for i, tok := range tokens {
		for _, leak := range []string{hex.EncodeToString(tok), hex.EncodeToString(tok[:5])} {
			if strings.Contains(out, leak) {
				t.Errorf("device %d: the log holds %q, more than the token's first 4 bytes", i, leak)
			}
		}
	}
	if strings.Contains(out, `level=WARN msg="apns push`) {
		t.Errorf("the APNs layer wrote a per-device warning:\n%s", out)
	}
}
