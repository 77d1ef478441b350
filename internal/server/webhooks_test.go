package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/webhook"
)

// hookReceiver is a webhook consumer on loopback that checks every post's
// signature and keeps the envelopes in the order they arrived.
type hookReceiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []webhook.Envelope
	more   chan struct{}
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	return &hookReceiver{t: t, secret: secret, more: make(chan struct{}, 1)}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if !webhook.Verify([]byte(h.secret), body, r.Header.Get("X-Hmac-Signature")) {
		h.t.Errorf("post with a bad X-Hmac-Signature %q", r.Header.Get("X-Hmac-Signature"))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var env webhook.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		h.t.Errorf("post %s: %v", body, err)
	}
	h.mu.Lock()
	h.got = append(h.got, env)
	h.mu.Unlock()
	select {
	case h.more <- struct{}{}:
	default:
	}
}

// waitFor waits until the receiver holds n envelopes (or the test's
// patience ends) and returns them.
func (h *hookReceiver) waitFor(t *testing.T, n int) []webhook.Envelope {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		h.mu.Lock()
		got := slices.Clone(h.got)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-h.more:
		case <-deadline:
			t.Fatalf("receiver got %d events, want %d: %+v", len(got), n, got)
		}
	}
}

// downAddress is a loopback address nothing listens on (yet).
func downAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveAt starts h on addr (the receiver comes up) until the test ends.
func serveAt(t *testing.T, addr string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func fastRetries(c *server.Config) {
	c.WebhookRetryBase, c.WebhookRetryMax = 5*time.Millisecond, 40*time.Millisecond
}

type hookView struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Topics    []string `json:"topics"`
	HasSecret bool     `json:"has_secret"`
	Secret    string   `json:"secret"`
}

type hookEvents struct {
	Events []webhook.DeliveryView `json:"events"`
}

// A receiver that refuses connections while a device enrolls, runs a
// command and is released gets every event once it is up, in order,
// signed, in the MicroMDM/NanoMDM envelope, with the push secrets cut.
func testWebhooks(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t, fastRetries)
	addr := downAddress(t)
	var hook hookView
	if code := s.API(t, "POST", "/v1/webhooks", map[string]any{"url": "http://" + addr + "/hook", "secret": "shh-its-a-secret",
		"topics": []string{"mdm.*", "orchard.device.released"}}, &hook); code != 201 {
		t.Fatalf("create webhook = %d", code)
	}
	if !hook.HasSecret || hook.Secret != "" || hook.ID == "" {
		t.Fatalf("created webhook = %+v: want has_secret and no secret", hook)
	}
	for _, bad := range []map[string]any{
		{"url": "ftp://x", "topics": []string{"*"}},
		{"url": "http://x", "topics": []string{"mdm.Conect"}},
		{"url": "http://x"},
		{"url": "http://x", "topics": []string{"*"}, "include_secrets": []string{"Password"}},
	} {
		if code := s.API(t, "POST", "/v1/webhooks", bad, nil); code != 400 {
			t.Errorf("create %v = %d, want 400", bad, code)
		}
	}

	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	sent := send(t, s, map[string]any{"targets": []string{dev.UDID}, "request_type": "ProfileList"})
	cmd, err := dev.Idle(ctx)
	if err != nil || cmd == nil {
		t.Fatalf("idle: %+v %v", cmd, err)
	}
	if _, err := dev.Report(ctx, "Acknowledged", cmd.UUID, map[string]any{"ProfileList": []any{}}); err != nil {
		t.Fatal(err)
	}
	if code := s.API(t, "POST", "/v1/devices/"+dev.UDID+"/release", nil, nil); code != 200 {
		t.Fatalf("release = %d", code)
	}
	// Down: the first event is being retried, and everything waits behind it.
	for {
		var ev hookEvents
		if code := s.API(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries?state=pending", nil, &ev); code != 200 {
			t.Fatalf("deliveries = %d", code)
		}
		if n := len(ev.Events); n > 0 && ev.Events[n-1].Attempts >= 2 {
			if ev.Events[n-1].LastError == "" || ev.Events[n-1].Topic != webhook.TopicAuthenticate {
				t.Fatalf("oldest pending = %+v", ev.Events[n-1])
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	rc := newHookReceiver(t, "shh-its-a-secret")
	serveAt(t, addr, rc)
	var all hookEvents
	s.API(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries?limit=500", nil, &all)
	got := rc.waitFor(t, len(all.Events))

	var topics []string
	ids := map[string]bool{}
	var ack *webhook.AcknowledgeEvent
	for _, env := range got {
		if ids[env.EventID] || env.EventID == "" || env.CreatedAt.IsZero() {
			t.Fatalf("event id %q twice or empty: %+v", env.EventID, env)
		}
		ids[env.EventID] = true
		topics = append(topics, env.Topic)
		switch {
		case env.CheckinEvent != nil:
			if env.CheckinEvent.UDID != dev.UDID {
				t.Errorf("%s for udid %q", env.Topic, env.CheckinEvent.UDID)
			}
			var m map[string]any
			if err := plist.Unmarshal(env.CheckinEvent.RawPayload, &m); err != nil || "mdm."+m["MessageType"].(string) != env.Topic {
				t.Errorf("%s raw_payload: %v %v", env.Topic, m, err)
			}
			if _, ok := m["Token"]; ok || m["PushMagic"] != nil {
				t.Errorf("%s raw_payload holds the push token or magic: %v", env.Topic, m)
			}
		case env.AcknowledgeEvent != nil:
			if env.AcknowledgeEvent.CommandUUID == sent.CommandUUID {
				ack = env.AcknowledgeEvent
			}
		case env.Topic == webhook.TopicDeviceReleased:
			if env.OrchardEvent.(map[string]any)["udid"] != dev.UDID {
				t.Errorf("released event = %+v", env.OrchardEvent)
			}
		default:
			t.Errorf("event without a payload: %+v", env)
		}
	}
	if len(topics) < 5 || topics[0] != webhook.TopicAuthenticate || topics[1] != webhook.TopicTokenUpdate || topics[len(topics)-1] != webhook.TopicDeviceReleased {
		t.Fatalf("topics in order of arrival = %v", topics)
	}
	if ack == nil || ack.Status != "Acknowledged" || ack.UDID != dev.UDID {
		t.Fatalf("acknowledge_event of the command = %+v", ack)
	}
	var m map[string]any
	if err := plist.Unmarshal(ack.RawPayload, &m); err != nil || m["CommandUUID"] != sent.CommandUUID {
		t.Fatalf("acknowledge raw_payload = %v, %v", m, err)
	}
	// All delivered; none dead.
	var dead hookEvents
	if code := s.API(t, "GET", "/v1/webhooks/events?state=dead", nil, &dead); code != 200 || len(dead.Events) != 0 {
		t.Fatalf("dead = %d %+v", code, dead)
	}
	// A disabled endpoint is queued nothing; deleting it takes its events.
	if code := s.API(t, "PATCH", "/v1/webhooks/"+hook.ID, map[string]any{"enabled": false}, nil); code != 200 {
		t.Fatalf("disable = %d", code)
	}
	if _, err := dev.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	var after hookEvents
	s.API(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries?limit=500", nil, &after)
	if len(after.Events) != len(all.Events) {
		t.Fatalf("disabled endpoint was queued %d more events", len(after.Events)-len(all.Events))
	}
	if code := s.API(t, "DELETE", "/v1/webhooks/"+hook.ID, nil, nil); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	if code := s.API(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil, nil); code != 404 {
		t.Fatalf("deliveries of a deleted webhook = %d", code)
	}
}
