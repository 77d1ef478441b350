package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

type fixture struct {
	store *bolt.Store
	box   *pki.SecretBox
	clock *clock
	j     *Journal
	d     *Dispatcher
}

// clock is the test's time: the dispatcher's backoff and dead-letter age
// are read from it, so hours pass without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.t) {
		c.t = t
	}
	c.mu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	box, err := pki.LoadOrCreateSecretBox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, box: box, clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}}
	f.d, err = NewDispatcher(store, box, DispatchOptions{Now: f.clock.now, RetryBase: time.Second, RetryMax: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.j, err = NewJournal(store, box, f.clock.now, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) endpoint(t *testing.T, url, secret string, topics ...string) *storage.WebhookEndpoint {
	t.Helper()
	ep := &storage.WebhookEndpoint{ID: newID(4), URL: url, Topics: topics, Enabled: true}
	if secret != "" {
		ep.SecretSealed = f.box.Seal([]byte(secret), labelSecret)
	}
	if err := f.store.PutWebhook(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	f.j.Invalidate()
	return ep
}

// drain runs delivery rounds, moving the clock to each next due time,
// until nothing waits; it gives up after n rounds.
func (f *fixture) drain(t *testing.T, n int) {
	t.Helper()
	for range n {
		next := f.d.RunOnce(context.Background())
		if next.IsZero() {
			return
		}
		f.clock.set(next)
	}
	t.Fatalf("outbox not drained after %d rounds", n)
}

// receiver is a webhook consumer on loopback: it refuses the first
// `refuse` posts with 503 and records the bodies it accepts.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	refuse int
	got    []Envelope
	posts  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	if rc.refuse > 0 {
		rc.refuse--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("%s with Content-Type %q, want a JSON POST", r.Method, r.Header.Get("Content-Type"))
	}
	if rc.secret != "" && !Verify([]byte(rc.secret), body, r.Header.Get(SignatureHeader)) {
		rc.t.Errorf("bad %s %q for body %s", SignatureHeader, r.Header.Get(SignatureHeader), body)
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	rc.got = append(rc.got, env)
}

func (rc *receiver) envelopes() []Envelope {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// A receiver that refuses for a while gets every event, in order, signed;
// the failed attempts wait for the backoff, and the event after a failed
// one waits behind it.
func TestDeliveryInOrderAfterOutage(t *testing.T) {
	f := newFixture(t)
	rc := &receiver{t: t, secret: "s3cret", refuse: 4}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ep := f.endpoint(t, srv.URL+"/hook", "s3cret", "orchard.*")
	other := f.endpoint(t, srv.URL+"/other", "", "mdm.*") // wants none of these
	ctx := context.Background()
	for i := range 5 {
		if err := f.j.Publish(ctx, TopicDeviceReleased, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	start := f.clock.now()
	f.drain(t, 50)
	got := rc.envelopes()
	if len(got) != 5 {
		t.Fatalf("receiver got %d events, want 5", len(got))
	}
	ids := map[string]bool{}
	for i, env := range got {
		n := env.OrchardEvent.(map[string]any)["n"]
		if env.Topic != TopicDeviceReleased || n != float64(i) || env.EventID == "" || ids[env.EventID] || !env.CreatedAt.Equal(start) {
			t.Fatalf("event %d = %+v", i, env)
		}
		ids[env.EventID] = true
	}
	if rc.posts != 9 {
		t.Fatalf("%d posts, want 4 refused + 5 accepted", rc.posts)
	}
	// Four refusals of the first event: 1 s, 2 s, 4 s, 8 s (each with up
	// to half jitter) before it went through.
	if waited := f.clock.now().Sub(start); waited < 7500*time.Millisecond || waited > 15*time.Second {
		t.Fatalf("backoff took %v of test time, want 7.5 s to 15 s", waited)
	}
	ds, _ := f.store.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{EndpointID: ep.ID})
	if len(ds) != 5 || ds[4].Attempts != 5 || ds[4].State != storage.WebhookDelivered || ds[4].LastStatus != 200 || ds[0].Attempts != 1 {
		t.Fatalf("outbox = %+v", ds)
	}
	if none, _ := f.store.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{EndpointID: other.ID}); len(none) != 0 {
		t.Fatalf("endpoint filtering mdm.* was queued %d orchard events", len(none))
	}
}

// An event still refused 24 hours after it was made is dead, and the ones
// behind it go on; a replay sends it again.
func TestDeadLetterAndReplay(t *testing.T) {
	f := newFixture(t)
	rc := &receiver{t: t, refuse: 1 << 30}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ep := f.endpoint(t, srv.URL, "", TopicRenewalFailed)
	ctx := context.Background()
	f.j.Publish(ctx, TopicRenewalFailed, map[string]string{"device": "A"})
	f.clock.set(f.clock.now().Add(time.Hour))
	f.j.Publish(ctx, TopicRenewalFailed, map[string]string{"device": "B"})
	deadline := f.clock.now().Add(25 * time.Hour)
	for f.clock.now().Before(deadline) {
		next := f.d.RunOnce(ctx)
		if next.IsZero() {
			break
		}
		f.clock.set(next)
	}
	dead, _ := f.store.ListWebhookDeliveries(ctx, storage.WebhookDeliveryFilter{State: storage.WebhookDead})
	if len(dead) != 2 {
		t.Fatalf("%d dead events, want 2", len(dead))
	}
	// Retries were capped at 5 minutes (with jitter): about 24 h / 5 min of them.
	if a := dead[1].Attempts; a < 250 || a > 700 {
		t.Fatalf("first event tried %d times in 24 h, want a few hundred", a)
	}
	if dead[1].LastStatus != 503 || !strings.Contains(dead[1].LastError, "503") {
		t.Fatalf("dead event = %+v", dead[1])
	}
	rc.mu.Lock()
	rc.refuse = 0
	rc.mu.Unlock()
	h, err := NewHandler(f.store, f.box, f.j, f.d, f.clock.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/webhooks/{id}/replay", h.ReplayDead)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/webhooks/"+ep.ID+"/replay", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"replayed": 2`) {
		t.Fatalf("replay = %d %s", rec.Code, rec.Body)
	}
	f.drain(t, 10)
	got := rc.envelopes()
	if len(got) != 2 || got[0].OrchardEvent.(map[string]any)["device"] != "A" || got[1].OrchardEvent.(map[string]any)["device"] != "B" {
		t.Fatalf("after replay the receiver got %+v", got)
	}
}

// Device secrets are cut from raw payloads unless the endpoint names them.
func TestRedacted(t *testing.T) {
	raw, _ := plist.Marshal(map[string]any{"MessageType": "TokenUpdate", "UDID": "X", "Token": []byte("tok"),
		"PushMagic": "magic-value", "UnlockToken": []byte("unlock"), "Topic": "com.apple.mgmt.x"})
	out, err := Redacted(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := plist.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["Token"]; ok || m["PushMagic"] != nil || m["UnlockToken"] != nil || m["UDID"] != "X" || m["Topic"] != "com.apple.mgmt.x" {
		t.Fatalf("redacted = %v", m)
	}
	out, _ = Redacted(raw, []string{"PushMagic"})
	m = nil
	plist.Unmarshal(out, &m)
	if m["PushMagic"] != "magic-value" || m["Token"] != nil {
		t.Fatalf("with PushMagic included = %v", m)
	}
	plain, _ := plist.Marshal(map[string]any{"MessageType": "CheckOut", "UDID": "X"})
	if out, _ := Redacted(plain, nil); string(out) != string(plain) {
		t.Fatal("a payload without secrets was re-encoded")
	}
}

// Topic filters: exact, prefix and all; filters that match nothing are refused.
func TestTopics(t *testing.T) {
	for _, c := range []struct {
		filters []string
		topic   string
		want    bool
	}{
		{[]string{"*"}, TopicConnect, true},
		{[]string{"mdm.*"}, TopicConnect, true},
		{[]string{"mdm.*"}, TopicDeviceReleased, false},
		{[]string{"orchard.profile.*"}, TopicProfileStateChanged, true},
		{[]string{TopicAuthenticate}, TopicAuthenticate, true},
		{[]string{TopicAuthenticate}, TopicTokenUpdate, false},
		{[]string{"mdm"}, TopicConnect, false},
	} {
		if got := matches(c.filters, c.topic); got != c.want {
			t.Errorf("matches(%v, %s) = %v", c.filters, c.topic, got)
		}
	}
	for _, bad := range [][]string{nil, {"mdm.Conect"}, {"foo.*"}, {"mdm"}} {
		if checkTopics(bad) == nil {
			t.Errorf("topics %q accepted", bad)
		}
	}
	if err := checkTopics([]string{"mdm.*", "orchard.*", TopicConnect, "*"}); err != nil {
		t.Error(err)
	}
}

// The signature is standard base64 of HMAC-SHA256 over the exact body.
func TestSign(t *testing.T) {
	// RFC 4231 test case 2.
	sig, _ := base64.StdEncoding.DecodeString(Sign([]byte("Jefe"), []byte("what do ya want for nothing?")))
	if got := strings.ToLower(strings.TrimSpace(hexString(sig))); got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Fatalf("HMAC = %s", got)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}
