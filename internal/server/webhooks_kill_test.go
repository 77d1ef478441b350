package server_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/webhook"
)

// buildOrchard compiles cmd/orchard into a temp dir.
func buildOrchard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "orchard")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/orchardmdm/orchard/cmd/orchard").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/orchard: %v\n%s", err, out)
	}
	return bin
}

// Events a killed `orchard serve` answered 200 for, but never delivered,
// are delivered after the restart: the receiver is down while one device
// enrolls on an in-process server and another on an `orchard serve`
// subprocess, which then gets SIGKILL; once the receiver is up, the next
// server on the same data dir delivers every event of both, in order.
func TestWebhooksSurviveKill(t *testing.T) {
	ctx := context.Background()
	bin := buildOrchard(t)
	dataDir := t.TempDir()
	recv := downAddress(t)
	onDir := func(c *server.Config) { c.DataDir, c.OpenStore = dataDir, server.OpenBolt }

	first := servertest.Start(t, onDir, fastRetries)
	var hook hookView
	if code := first.API(t, "POST", "/v1/webhooks", map[string]any{"url": "http://" + recv + "/hook", "secret": "k1ll-me",
		"topics": []string{"mdm.*"}}, &hook); code != 201 {
		t.Fatalf("create webhook = %d", code)
	}
	a := first.NewDevice(t)
	first.Enroll(t, a)
	b := first.NewDevice(t) // its certificate is issued now, it enrolls on the subprocess
	first.Stop(t)

	addr := downAddress(t)
	base := "https://" + addr
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "--data", dataDir, "--listen", addr, "--public-url", base,
		"--apns-url", first.FakeAPNs.URL(), "--apns-ca", filepath.Join(first.Dir, "fake-apns-ca.pem"), "--webhook-retry-max", "50ms")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), "ORCHARD_LOG_LEVEL=debug")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := first.Client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("orchard serve did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, d := range []*struct{ checkin, server *string }{{&a.CheckinURL, &a.ServerURL}, {&b.CheckinURL, &b.ServerURL}} {
		*d.checkin, *d.server = base+"/mdm/checkin", base+"/mdm/connect"
	}
	if err := b.Enroll(ctx); err != nil {
		t.Fatalf("enroll on the subprocess: %v\n%s", err, logs.String())
	}
	if _, err := a.Idle(ctx); err != nil {
		t.Fatalf("idle on the subprocess: %v\n%s", err, logs.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: nothing is flushed
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	rc := newHookReceiver(t, "k1ll-me")
	serveAt(t, recv, rc)
	again := servertest.Start(t, onDir, fastRetries)
	var all hookEvents
	if code := again.API(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries?limit=500", nil, &all); code != 200 {
		t.Fatalf("deliveries = %d", code)
	}
	got := rc.waitFor(t, len(all.Events))
	var seq []string
	for _, env := range got {
		var udid string
		switch {
		case env.CheckinEvent != nil:
			udid = env.CheckinEvent.UDID
		case env.AcknowledgeEvent != nil:
			udid = env.AcknowledgeEvent.UDID
		}
		who := map[string]string{a.UDID: "a", b.UDID: "b"}[udid]
		seq = append(seq, who+":"+strings.TrimPrefix(env.Topic, "mdm."))
	}
	// a's enrollment first (on the first server), then what the killed
	// process answered: b's enrollment and a's Idle, last.
	s := strings.Join(seq, " ")
	if !strings.HasPrefix(s, "a:Authenticate a:TokenUpdate") || !strings.Contains(s, "b:Authenticate b:TokenUpdate") || !strings.HasSuffix(s, "a:Connect") {
		t.Fatalf("events in order of arrival: %s", s)
	}
	if i, j := strings.Index(s, "b:Authenticate"), strings.LastIndex(s, "a:Connect"); i < 0 || j < i {
		t.Fatalf("a's Idle on the subprocess arrived before b's enrollment: %s", s)
	}
	for _, e := range all.Events {
		if e.Topic != webhook.TopicConnect && e.Topic != webhook.TopicAuthenticate && e.Topic != webhook.TopicTokenUpdate {
			t.Errorf("unexpected event %+v", e)
		}
	}
}
