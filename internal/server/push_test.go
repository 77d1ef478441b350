package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// Push end to end against the fake APNs: the admin uploads the push
// certificate, a queued command wakes the device exactly once with its
// token, push magic and topic; after APNs answers 410 the token is marked
// invalid and no further push is sent until the device's next TokenUpdate.
func testPushOnEnqueue(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	cert, err := apnstest.NewPushCert()
	if err != nil {
		t.Fatal(err)
	}
	fake := apnstest.NewServer(cert.Leaf)
	t.Cleanup(fake.Close)
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, fake.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := backend.StartWithoutPushCert(t, func(c *server.Config) { c.APNsURL, c.APNsCA = fake.URL(), caFile })

	// Nothing to show before an upload; then a p12 upload sets the topic.
	if code := s.API(t, "GET", "/v1/push-certificate", nil, nil); code != http.StatusNotFound {
		t.Fatalf("GET before upload = %d", code)
	}
	p12, err := cert.P12("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Topic  string `json:"topic"`
		Status string `json:"status"`
		Days   int    `json:"days_until_expiry"`
	}
	if code := s.API(t, "PUT", "/v1/push-certificate", map[string]any{
		"p12": base64.StdEncoding.EncodeToString(p12), "password": "s3cret", "apple_id": "mdm@example.com",
	}, &info); code != 200 || info.Topic != cert.Topic || info.Status != "active" {
		t.Fatalf("upload = %d %+v", code, info)
	}
	// A certificate for another topic is refused unless forced.
	other, _ := apnstest.NewPushCert()
	if code := s.API(t, "PUT", "/v1/push-certificate", map[string]any{"cert_pem": string(other.CertPEM), "key_pem": string(other.KeyPEM)}, nil); code != http.StatusConflict {
		t.Fatalf("other topic = %d, want 409", code)
	}

	dev := s.NewDevice(t)
	dev.Topic = "com.apple.mgmt.External.not-ours"
	if err := dev.Authenticate(ctx); err == nil {
		t.Fatal("Authenticate with a foreign topic was accepted")
	}
	dev.Topic = cert.Topic
	// Enrollment queues the inventory queries and pushes once for them.
	s.Enroll(t, dev)
	waitPushes(t, fake, 1)
	send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	pushes := waitPushes(t, fake, 2)
	if string(pushes[1].Token) != string(dev.Token) || pushes[1].PushMagic != dev.PushMagic || pushes[1].Topic != cert.Topic {
		t.Fatalf("push = %+v", pushes[1])
	}

	// APNs now says the token is gone.
	fake.Script(dev.Token, apnstest.Unregistered)
	send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "CertificateList"})
	waitPushes(t, fake, 3)
	deadline := time.Now().Add(10 * time.Second)
	var shown struct {
		Push struct {
			TokenInvalid bool   `json:"token_invalid"`
			LastPushErr  string `json:"last_push_error"`
		} `json:"push"`
	}
	for !shown.Push.TokenInvalid {
		if time.Now().After(deadline) {
			t.Fatal("token never marked invalid")
		}
		time.Sleep(20 * time.Millisecond)
		s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
	}
	if shown.Push.LastPushErr != "Unregistered" {
		t.Fatalf("last push error = %q", shown.Push.LastPushErr)
	}
	send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "SecurityInfo"})
	var direct struct {
		Targets []struct {
			Queued bool   `json:"queued"`
			Error  string `json:"error"`
		} `json:"targets"`
	}
	if code := s.API(t, "POST", "/v1/push", map[string]any{"targets": []string{dev.UDID}}, &direct); code != http.StatusAccepted || direct.Targets[0].Queued {
		t.Fatalf("push to an invalid token = %d %+v", code, direct)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(fake.Pushes()); n != 3 {
		t.Fatalf("%d pushes after the token was invalidated, want 3", n)
	}
	// The device still gets every queued command on its next connect.
	handled, err := dev.Drain(ctx, nil)
	if err != nil || len(handled) != 3 {
		t.Fatalf("drain after outage: %d commands, %v", len(handled), err)
	}
	// A new TokenUpdate makes the device pushable again.
	if err := dev.TokenUpdate(ctx); err != nil {
		t.Fatal(err)
	}
	if code := s.API(t, "POST", "/v1/push", map[string]any{"targets": []string{dev.UDID}}, &direct); code != http.StatusAccepted || !direct.Targets[0].Queued {
		t.Fatalf("push after TokenUpdate = %d %+v", code, direct)
	}
	waitPushes(t, fake, 4)
}

func waitPushes(t *testing.T, fake *apnstest.Server, n int) []apnstest.Push {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := fake.Pushes()
		if len(p) >= n {
			if len(p) > n {
				t.Fatalf("%d pushes, want %d", len(p), n)
			}
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pushes after 30s, want %d", len(p), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
