package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/webhook"
	"github.com/orchardmdm/orchard/storage"
)

// receiver is a webhook consumer on loopback: it keeps the envelopes whose
// X-Hmac-Signature checks out under its secret (set once the console has
// shown it) and counts the ones that do not.
type receiver struct {
	mu      sync.Mutex
	secret  []byte
	got     []webhook.Envelope
	badSigs int
}

func (h *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.secret) == 0 || !webhook.Verify(h.secret, body, r.Header.Get("X-Hmac-Signature")) {
		h.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var env webhook.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, env)
}

func (h *receiver) envelopes() []webhook.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhook.Envelope(nil), h.got...)
}

func fastRetries(c *server.Config) {
	c.WebhookRetryBase, c.WebhookRetryMax = 10*time.Millisecond, 100*time.Millisecond
}

// eventually polls cond until it holds, failing the test after a generous
// bound (a safety net for the background sender, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not the case after a minute: %s", what)
		}
	}
}

// TestBrowserWebhook: in Chromium, the owner creates a webhook endpoint
// for a receiver on loopback, sees its generated secret once (a reload
// shows it no more), a device enrolls, the receiver gets its events signed
// with that secret, and the endpoint's page lists them as delivered.
func TestBrowserWebhook(t *testing.T) {
	srv := start(t, fastRetries)
	recv := &receiver{}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"
	browserSignIn(t, ctx, base, "olga", ownerPW)

	browsertest.Load(t, ctx, chromedp.Navigate(base+"/webhooks"))
	if rows := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("main"))); !strings.Contains(rows, "No webhooks.") {
		t.Fatalf("webhooks page before any: %q", rows)
	}
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS("#new-webhook")))
	st := browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#url"), hook.URL+"/orchard"),
		chromedp.Click(chromedp.CSS("#save-webhook")),
	)
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); st != http.StatusOK || !strings.HasPrefix(h, "Webhook ") {
		t.Fatalf("after create: %d %q", st, h)
	}
	secret := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#new-secret")))
	if len(secret) < 20 {
		t.Fatalf("generated secret %q", secret)
	}
	browsertest.Screenshot(t, ctx, "secret-once")
	recv.mu.Lock()
	recv.secret = []byte(secret)
	recv.mu.Unlock()

	browsertest.Load(t, ctx, chromedp.Reload())
	if html := browsertest.Get(t, ctx, chromedp.OuterHTML(chromedp.CSS("html"))); strings.Contains(html, secret) || strings.Contains(html, "new-secret") {
		t.Fatal("the secret is shown again after a reload")
	}
	var hooks struct {
		Webhooks []webhook.EndpointView `json:"webhooks"`
	}
	if code := srv.API(t, "GET", "/v1/webhooks", nil, &hooks); code != 200 || len(hooks.Webhooks) != 1 || !hooks.Webhooks[0].HasSecret ||
		hooks.Webhooks[0].URL != hook.URL+"/orchard" || strings.Join(hooks.Webhooks[0].Topics, ",") != "mdm.*" || !hooks.Webhooks[0].Enabled {
		t.Fatalf("endpoints over the API (one, signed, mdm.*, enabled; the reload made none): %d %+v", code, hooks.Webhooks)
	}
	id := hooks.Webhooks[0].ID

	dev := srv.EnrollOTA(t)
	eventually(t, "the receiver got the enrollment's Authenticate", func() bool {
		for _, e := range recv.envelopes() {
			if e.Topic == webhook.TopicAuthenticate && e.CheckinEvent != nil && e.CheckinEvent.UDID == dev.UDID {
				return true
			}
		}
		return false
	})
	recv.mu.Lock()
	bad := recv.badSigs
	recv.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d posts were not signed with the secret the console showed", bad)
	}
	eventually(t, "the endpoint's page lists a delivered mdm.Authenticate", func() bool {
		browsertest.Load(t, ctx, chromedp.Navigate(base+"/webhooks/"+id))
		rows := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("main")))
		for _, line := range strings.Split(rows, "\n") {
			if strings.Contains(line, "mdm.Authenticate") && strings.Contains(line, "delivered") && strings.Contains(line, "200") {
				return true
			}
		}
		return false
	})
	browsertest.Screenshot(t, ctx, "deliveries")
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/webhooks"))
	if row := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#webhooks tbody"))); !strings.Contains(row, id) || !strings.Contains(row, "enabled") {
		t.Fatalf("webhook list: %q", row)
	}

	// A helpdesk admin, in the same browser: the list and the deliveries,
	// but no create link and no form on the endpoint's page.
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS(".signout button")))
	browserSignIn(t, ctx, base, "hana", helpdeskPW)
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/webhooks"))
	links := browsertest.Get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#new-webhook').length`))
	if row := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#webhooks tbody"))); links != 0 || !strings.Contains(row, id) {
		t.Fatalf("helpdesk webhook list: %d create links, rows %q", links, row)
	}
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/webhooks/"+id))
	forms := browsertest.Get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('main form').length`))
	if rows := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#deliveries tbody"))); forms != 0 || !strings.Contains(rows, "delivered") {
		t.Fatalf("helpdesk endpoint page: %d forms, deliveries %q", forms, rows)
	}
	browsertest.Screenshot(t, ctx, "helpdesk")
}

// TestWebhookHelpdeskAndCSRF: a helpdesk admin reads the webhook pages
// but gets no form; forged posts (with a valid session and token) are
// refused with 403 by the API and write nothing; a post without the CSRF
// token is refused too.
func TestWebhookHelpdeskAndCSRF(t *testing.T) {
	srv := start(t)
	var ep webhook.EndpointView
	if code := srv.API(t, "POST", "/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/x", "topics": []string{"*"}}, &ep); code != 201 {
		t.Fatalf("create: %d", code)
	}
	c := newClient(t, srv)
	if st, _ := c.signIn("hana", helpdeskPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	if st, body := c.get("/console/webhooks"); st != 200 || strings.Contains(body, "new-webhook") || !strings.Contains(body, ep.ID) {
		t.Fatalf("helpdesk webhooks page: %d, want the endpoint and no create link: %s", st, body)
	}
	if st, body := c.get("/console/webhooks/" + ep.ID); st != 200 || strings.Contains(body, `id="save-webhook"`) || strings.Contains(body, "delete-webhook") ||
		strings.Contains(body, "rotate-secret") {
		t.Fatalf("helpdesk endpoint page: %d, has a form: %s", st, body)
	}
	if st, _ := c.get("/console/webhooks/new"); st != http.StatusForbidden {
		t.Fatalf("helpdesk create form: %d, want 403", st)
	}
	tok := c.csrf("/console/webhooks")
	for path, form := range map[string]url.Values{
		"/console/webhooks":                      {"url": {"http://127.0.0.1:9/y"}, "topics": {"*"}, "enabled": {"on"}},
		"/console/webhooks/" + ep.ID:             {"url": {"http://127.0.0.1:9/z"}, "topics": {"mdm.*"}},
		"/console/webhooks/" + ep.ID + "/secret": {},
		"/console/webhooks/" + ep.ID + "/delete": {"confirm": {"yes"}},
		"/console/webhooks/" + ep.ID + "/replay": {},
		"/console/webhooks/events/1/replay":      {},
		"/console/admins/olga/two-factor/reset":  {},
	} {
		form.Set("csrf", tok)
		if st, body := c.post(path, form); st != http.StatusForbidden || !strings.Contains(body, "forbidden: role helpdesk") {
			t.Errorf("helpdesk post %s: %d %q, want 403", path, st, body)
		}
	}
	got, err := srv.Store().ListWebhooks(t.Context())
	if err != nil || len(got) != 1 || got[0].URL != "http://127.0.0.1:9/x" || len(got[0].SecretSealed) != 0 || got[0].Topics[0] != "*" {
		t.Fatalf("after the forged posts: %+v, %v", got, err)
	}
	audit, err := srv.Store().ListAudit(t.Context(), storage.AuditFilter{Actor: "hana", Action: "webhooks"}, "", 0)
	if err != nil || len(audit) < 5 || audit[0].Result != "denied" {
		t.Fatalf("audit of the refused posts: %+v, %v", audit, err)
	}

	owner := newClient(t, srv)
	owner.signIn("olga", ownerPW)
	if st, body := owner.post("/console/webhooks", url.Values{"url": {"http://127.0.0.1:9/y"}, "topics": {"*"}}); st != http.StatusForbidden ||
		!strings.HasPrefix(body, "forbidden: missing or wrong CSRF token") {
		t.Fatalf("post without a token: %d %q", st, body)
	}
	if got, _ := srv.Store().ListWebhooks(t.Context()); len(got) != 1 {
		t.Fatalf("the CSRF-less post made an endpoint: %+v", got)
	}
}

// TestWebhookEditReplayDelete: over HTTP, the owner creates an endpoint
// with its own secret (never shown), edits it without losing the URL's
// password, filters the events page, replays a dead event and deletes the
// endpoint once the box is ticked.
func TestWebhookEditReplayDelete(t *testing.T) {
	srv := start(t)
	c := newClient(t, srv)
	c.signIn("olga", ownerPW)
	tok := c.csrf("/console/webhooks/new")
	st, _ := c.post("/console/webhooks", url.Values{"csrf": {tok}, "url": {"http://bot:hunter22@127.0.0.1:9/hook"},
		"topics": {"mdm.Connect", "orchard.*"}, "enabled": {"on"}, "secret_mode": {"own"}, "secret": {"my-own-hook-secret"}})
	if st != http.StatusSeeOther {
		t.Fatalf("create: %d", st)
	}
	eps, _ := srv.Store().ListWebhooks(t.Context())
	if len(eps) != 1 || len(eps[0].SecretSealed) == 0 || strings.Join(eps[0].Topics, ",") != "mdm.Connect,orchard.*" {
		t.Fatalf("created: %+v", eps)
	}
	id := eps[0].ID
	_, page := c.get("/console/webhooks/" + id)
	if strings.Contains(page, "my-own-hook-secret") || strings.Contains(page, "hunter22") || strings.Contains(page, "new-secret") {
		t.Fatalf("the page shows a secret: %s", page)
	}
	// Rotating makes a new secret, shown once on the page after the post.
	before, _ := srv.Store().Webhook(t.Context(), id)
	if st, _ := c.post("/console/webhooks/"+id+"/secret", url.Values{"csrf": {tok}}); st != http.StatusSeeOther {
		t.Fatalf("rotate: %d", st)
	}
	_, page = c.get("/console/webhooks/" + id)
	const mark = `<code id="new-secret">`
	i := strings.Index(page, mark)
	if i < 0 {
		t.Fatalf("no new secret after a rotate: %s", page)
	}
	rotated := page[i+len(mark) : i+len(mark)+strings.IndexByte(page[i+len(mark):], '<')]
	after, _ := srv.Store().Webhook(t.Context(), id)
	if len(rotated) < 20 || string(after.SecretSealed) == string(before.SecretSealed) {
		t.Fatalf("rotate: secret %q, sealed secret changed %v", rotated, string(after.SecretSealed) != string(before.SecretSealed))
	}
	if _, page := c.get("/console/webhooks/" + id); strings.Contains(page, rotated) || strings.Contains(page, "new-secret") {
		t.Fatal("the rotated secret is shown twice")
	}
	// A refused topic comes back with the API's reason and changes nothing.
	if st, _ := c.post("/console/webhooks/"+id, url.Values{"csrf": {tok}, "url": {"http://bot:xxxxx@127.0.0.1:9/hook"}}); st != http.StatusSeeOther {
		t.Fatalf("save without topics: %d", st)
	}
	if _, page := c.get("/console/webhooks/" + id); !strings.Contains(page, "topics: name at least one") {
		t.Fatalf("no reason shown for an empty topic filter")
	}
	// Saved as shown (the URL redacted): the stored URL keeps its password.
	if st, _ := c.post("/console/webhooks/"+id, url.Values{"csrf": {tok}, "url": {"http://bot:xxxxx@127.0.0.1:9/hook"},
		"topics": {"mdm.*"}, "include_secrets": {"BootstrapToken"}}); st != http.StatusSeeOther {
		t.Fatalf("save: %d", st)
	}
	got, _ := srv.Store().Webhook(t.Context(), id)
	if got.URL != "http://bot:hunter22@127.0.0.1:9/hook" || got.Enabled || strings.Join(got.Topics, ",") != "mdm.*" || strings.Join(got.IncludeSecrets, ",") != "BootstrapToken" {
		t.Fatalf("after save: %+v", got)
	}

	// Two events in the outbox: one dead, one delivered.
	now := time.Now().UTC()
	ds := []storage.WebhookDelivery{
		{EndpointID: id, EventID: "ev-dead", Topic: webhook.TopicConnect, CreatedAt: now, Body: []byte(`{}`)},
		{EndpointID: id, EventID: "ev-done", Topic: webhook.TopicDeviceReleased, CreatedAt: now, Body: []byte(`{}`)},
	}
	if err := srv.Store().AppendWebhookDeliveries(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	dead, done := ds[0], ds[1]
	dead.State, dead.Attempts, dead.LastStatus, dead.LastError, dead.LastAttemptAt = storage.WebhookDead, 7, 503, "receiver answered 503", now
	done.State, done.Attempts, done.LastStatus, done.DeliveredAt = storage.WebhookDelivered, 1, 204, now
	for _, d := range []*storage.WebhookDelivery{&dead, &done} {
		if err := srv.Store().UpdateWebhookDelivery(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if _, page := c.get("/console/webhooks/" + id); !strings.Contains(page, `<table id="dead">`) || !strings.Contains(page, "receiver answered 503") ||
		!strings.Contains(page, `<dd id="backlog">0 event(s)</dd>`) {
		t.Fatalf("no dead letter on the endpoint page, or a backlog: %s", page)
	}
	_, page = c.get("/console/webhooks/events?topic=orchard.device.released")
	if !strings.Contains(page, "<td>orchard.device.released</td>") || strings.Contains(page, "receiver answered 503") {
		t.Fatalf("events filtered by topic: %s", page)
	}
	if _, page = c.get("/console/webhooks/events?state=dead"); !strings.Contains(page, "receiver answered 503") || strings.Contains(page, "<td>orchard.device.released</td>") {
		t.Fatalf("events filtered by state: %s", page)
	}
	if st, _ := c.get("/console/webhooks/events?topic=mdm.Nope"); st != http.StatusBadRequest {
		t.Fatalf("unknown topic filter: %d", st)
	}
	if st, _ := c.post("/console/webhooks/"+id+"/replay", url.Values{"csrf": {tok}}); st != http.StatusSeeOther {
		t.Fatalf("replay dead: %d", st)
	}
	if d, _ := srv.Store().WebhookDelivery(t.Context(), dead.ID); d.State != storage.WebhookPending || d.Attempts != 0 {
		t.Fatalf("dead after replay: %+v", d)
	}
	if st, _ := c.post("/console/webhooks/events/"+strconv.FormatUint(done.ID, 10)+"/replay", url.Values{"csrf": {tok}, "webhook": {id}}); st != http.StatusSeeOther {
		t.Fatalf("replay one: %d", st)
	}
	if d, _ := srv.Store().WebhookDelivery(t.Context(), done.ID); d.State != storage.WebhookPending {
		t.Fatalf("delivered after replay: %+v", d)
	}
	if _, page := c.get("/console/webhooks"); !strings.Contains(page, "<td>disabled</td><td>yes</td><td>2</td>") {
		t.Fatalf("the list does not show the two replayed events waiting: %s", page)
	}

	// Delete: not without the box ticked.
	if st, _ := c.post("/console/webhooks/"+id+"/delete", url.Values{"csrf": {tok}}); st != http.StatusSeeOther {
		t.Fatalf("delete unconfirmed: %d", st)
	}
	if _, err := srv.Store().Webhook(t.Context(), id); err != nil {
		t.Fatalf("deleted without confirmation: %v", err)
	}
	if st, _ := c.post("/console/webhooks/"+id+"/delete", url.Values{"csrf": {tok}, "confirm": {"yes"}}); st != http.StatusSeeOther {
		t.Fatalf("delete: %d", st)
	}
	if eps, _ := srv.Store().ListWebhooks(t.Context()); len(eps) != 0 {
		t.Fatalf("after delete: %+v", eps)
	}
	if st, _ := c.get("/console/webhooks/" + id); st != http.StatusNotFound {
		t.Fatalf("deleted endpoint's page: %d", st)
	}
}
