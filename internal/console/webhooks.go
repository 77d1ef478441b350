package console

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/webhook"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// The webhook pages: endpoints (create, edit, rotate the secret, delete),
// an endpoint's deliveries and dead letters, and the outbox of every
// endpoint, with replays. A secret the console makes is shown once, on the
// endpoint's page right after its post; the API never answers one.

func (c *Console) webhookRoutes() []route {
	return []route{
		{"GET " + Prefix + "/webhooks", c.webhooks},
		{"POST " + Prefix + "/webhooks", c.createWebhook},
		{"GET " + Prefix + "/webhooks/new", c.newWebhook},
		{"GET " + Prefix + "/webhooks/events", c.webhookEvents},
		{"POST " + Prefix + "/webhooks/events/{event}/replay", c.replayEvent},
		{"GET " + Prefix + "/webhooks/{id}", c.webhookPage},
		{"POST " + Prefix + "/webhooks/{id}", c.editWebhook},
		{"POST " + Prefix + "/webhooks/{id}/secret", c.webhookSecret},
		{"POST " + Prefix + "/webhooks/{id}/replay", c.replayDead},
		{"POST " + Prefix + "/webhooks/{id}/delete", c.deleteWebhook},
	}
}

// topicBox is one checkbox of an endpoint's topic filter.
type topicBox struct {
	Value, Label string
	Checked      bool
}

// topicBoxes are the filters the form offers (everything, each family and
// each topic Orchard sends) ticked as in filters, plus any other filter
// the endpoint has (a narrower prefix made with the API), kept ticked.
func topicBoxes(filters []string) []topicBox {
	values := []string{"*", "mdm.*"}
	labels := map[string]string{"*": "every topic", "mdm.*": "every MDM check-in and report", "orchard.*": "every Orchard event"}
	added := false
	for _, t := range webhook.Topics {
		if strings.HasPrefix(t, "orchard.") && !added {
			values, added = append(values, "orchard.*"), true
		}
		values = append(values, t)
	}
	for _, f := range filters {
		if !slices.Contains(values, f) {
			values = append(values, f)
		}
	}
	out := make([]topicBox, 0, len(values))
	for _, v := range values {
		out = append(out, topicBox{Value: v, Label: labels[v], Checked: slices.Contains(filters, v)})
	}
	return out
}

// secretBoxes are the include_secrets checkboxes.
func secretBoxes(names []string) []topicBox {
	out := make([]topicBox, 0, len(webhook.Secrets))
	for _, s := range webhook.Secrets {
		out = append(out, topicBox{Value: s, Checked: slices.Contains(names, s)})
	}
	return out
}

// formList is a multi-valued form field, never nil (an empty list is sent
// as one, so the API refuses an empty topic filter with its reason).
func formList(r *http.Request, field string) []string {
	if r.PostForm == nil {
		_ = r.ParseForm()
	}
	out := []string{}
	for _, v := range r.PostForm[field] {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// newWebhookSecret is a generated HMAC key (26 base32 characters, 130
// bits), shown once on the endpoint's page after the post.
func newWebhookSecret() string { return rand.Text() }

// deliveriesPage is one page of outbox entries, newest first, with the
// cursor of the next (the last ID when the page is full).
type deliveriesPage struct {
	Events []webhook.DeliveryView
	Next   string
}

func (c *Console) readDeliveries(r *http.Request, actor *adminauth.Actor, path string, filters map[string]string) (deliveriesPage, error) {
	var p deliveriesPage
	var m struct {
		Events []webhook.DeliveryView `json:"events"`
	}
	if err := c.call(r, actor, "GET", query(path, filters), nil, &m); err != nil {
		return p, err
	}
	p.Events = m.Events
	if len(m.Events) == pageSize {
		p.Next = strconv.FormatUint(m.Events[len(m.Events)-1].ID, 10)
	}
	return p, nil
}

// Endpoints.

type webhookRow struct {
	webhook.EndpointView
	Last *webhook.DeliveryView // the newest event, if any
}

type webhooksData struct {
	Webhooks  []webhookRow
	CanCreate bool
}

func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	d := webhooksData{CanCreate: c.cfg.API.Allows(actor, "POST", "/v1/webhooks")}
	var list struct {
		Webhooks []webhook.EndpointView `json:"webhooks"`
	}
	if err := c.call(r, actor, "GET", "/v1/webhooks", nil, &list); err != nil {
		c.show(w, r, actor, err)
		return
	}
	for _, ep := range list.Webhooks {
		row := webhookRow{EndpointView: ep}
		var last struct {
			Events []webhook.DeliveryView `json:"events"`
		}
		if c.call(r, actor, "GET", "/v1/webhooks/"+esc(ep.ID)+"/deliveries?limit=1", nil, &last) == nil && len(last.Events) == 1 {
			row.Last = &last.Events[0]
		}
		d.Webhooks = append(d.Webhooks, row)
	}
	c.render(w, r, http.StatusOK, "webhooks", actor, &webui.Page{Title: "Webhooks", Data: d})
}

// newWebhook is the create form (the endpoint page's form, empty).
func (c *Console) newWebhook(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	if !c.cfg.API.Allows(actor, "POST", "/v1/webhooks") {
		c.show(w, r, actor, &apiError{Status: http.StatusForbidden, Reason: "forbidden: role " + string(actor.Role) + " cannot create webhooks"})
		return
	}
	d := webhookData{New: true, CanEdit: true, Webhook: webhook.EndpointView{Enabled: true},
		Topics: topicBoxes([]string{"mdm.*"}), Secrets: secretBoxes(nil)}
	c.render(w, r, http.StatusOK, "webhook", actor, &webui.Page{Title: "New webhook", Data: d})
}

// secretFrom reads the form's secret choice: a generated one (answered to
// be shown), the admin's own, or none.
func secretFrom(r *http.Request) (secret string, generated bool) {
	switch r.PostFormValue("secret_mode") {
	case "none":
		return "", false
	case "own":
		return r.PostFormValue("secret"), false
	}
	return newWebhookSecret(), true
}

func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	secret, generated := secretFrom(r)
	body := map[string]any{"url": strings.TrimSpace(r.PostFormValue("url")), "topics": formList(r, "topics"),
		"include_secrets": formList(r, "include_secrets"), "enabled": r.PostFormValue("enabled") == "on"}
	if r.PostFormValue("secret_mode") == "own" && secret == "" {
		c.site.Redirect(w, r, Prefix+"/webhooks/new", webui.Flash{Error: true, Message: "Type the secret, or choose another option."})
		return
	}
	if secret != "" {
		body["secret"] = secret
	}
	var ep webhook.EndpointView
	if err := c.call(r, actor, "POST", "/v1/webhooks", body, &ep); err != nil {
		c.after(w, r, Prefix+"/webhooks/new", err, "")
		return
	}
	if generated {
		if err := c.holdSecret(r, ep.ID, secret); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.after(w, r, Prefix+"/webhooks/"+esc(ep.ID), nil, "Webhook "+ep.ID+" created.")
}

// heldSecret is the session field that keeps a generated secret, sealed,
// from its post to the one page that shows it: a redirect in between, so
// a reload neither posts again nor shows it again.
const heldSecret = "webhook_secret"

func heldLabel(id string) string { return "webhook-secret-once/" + id }

func (c *Console) holdSecret(r *http.Request, id, secret string) error {
	ws := webui.Session(r)
	if ws.Data == nil {
		ws.Data = map[string]string{}
	}
	ws.Data[heldSecret] = id + "|" + base64.StdEncoding.EncodeToString(c.cfg.Box.Seal([]byte(secret), heldLabel(id)))
	return c.site.Save(r.Context(), ws)
}

// takeSecret answers the secret held for endpoint id and forgets it.
func (c *Console) takeSecret(r *http.Request, id string) (string, error) {
	ws := webui.Session(r)
	held, sealed, ok := strings.Cut(ws.Data[heldSecret], "|")
	if !ok || held != id {
		return "", nil
	}
	delete(ws.Data, heldSecret)
	if err := c.site.Save(r.Context(), ws); err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("console: held webhook secret: %w", err)
	}
	secret, err := c.cfg.Box.Open(raw, heldLabel(id))
	if err != nil {
		return "", fmt.Errorf("console: held webhook secret: %w", err)
	}
	return string(secret), nil
}

// Endpoint page.

type webhookData struct {
	New        bool // the create form
	Webhook    webhook.EndpointView
	Topics     []topicBox
	Secrets    []topicBox
	Deliveries deliveriesPage
	Dead       deliveriesPage
	CanEdit    bool
	NewSecret  string // generated just now, shown this once
}

// NextURL is the following page of deliveries.
func (d webhookData) NextURL() string {
	return Prefix + "/webhooks/" + esc(d.Webhook.ID) + "?" + url.Values{"before": {d.Deliveries.Next}}.Encode()
}

// webhookPage shows an endpoint: its settings, dead letters and recent
// deliveries, and the secret just made for it, this once.
func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("id")
	base := "/v1/webhooks/" + esc(id)
	d := webhookData{CanEdit: c.cfg.API.Allows(actor, "PATCH", base)}
	if err := c.call(r, actor, "GET", base, nil, &d.Webhook); err != nil {
		c.show(w, r, actor, err)
		return
	}
	var err error
	if d.NewSecret, err = c.takeSecret(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	d.Topics, d.Secrets = topicBoxes(d.Webhook.Topics), secretBoxes(d.Webhook.IncludeSecrets)
	if d.Deliveries, err = c.readDeliveries(r, actor, base+"/deliveries", map[string]string{"before": r.URL.Query().Get("before")}); err != nil {
		c.show(w, r, actor, err)
		return
	}
	if d.Dead, err = c.readDeliveries(r, actor, base+"/deliveries", map[string]string{"state": storage.WebhookDead}); err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhook", actor, &webui.Page{Title: "Webhook " + d.Webhook.ID, Data: d})
}

func webhookPath(r *http.Request) string { return Prefix + "/webhooks/" + esc(r.PathValue("id")) }

// editWebhook saves the form. The URL is sent only when it was changed:
// the page shows it without its password, which must not overwrite it.
func (c *Console) editWebhook(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/webhooks/" + esc(r.PathValue("id"))
	var cur webhook.EndpointView
	if err := c.call(r, actor, "GET", base, nil, &cur); err != nil {
		c.after(w, r, webhookPath(r), err, "")
		return
	}
	body := map[string]any{"topics": formList(r, "topics"), "include_secrets": formList(r, "include_secrets"),
		"enabled": r.PostFormValue("enabled") == "on"}
	if u := strings.TrimSpace(r.PostFormValue("url")); u != cur.URL {
		body["url"] = u
	}
	c.after(w, r, webhookPath(r), c.call(r, actor, "PATCH", base, body, nil), "Webhook saved.")
}

// webhookSecret rotates the secret (a new one, shown once) or removes it
// (action=remove: posts go unsigned).
func (c *Console) webhookSecret(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/webhooks/" + esc(r.PathValue("id"))
	if r.PostFormValue("action") == "remove" {
		c.after(w, r, webhookPath(r), c.call(r, actor, "PATCH", base, map[string]any{"secret": ""}, nil), "Secret removed: posts are no longer signed.")
		return
	}
	secret := newWebhookSecret()
	if err := c.call(r, actor, "PATCH", base, map[string]any{"secret": secret}, nil); err != nil {
		c.after(w, r, webhookPath(r), err, "")
		return
	}
	if err := c.holdSecret(r, r.PathValue("id"), secret); err != nil {
		c.fail(w, r, err)
		return
	}
	c.after(w, r, webhookPath(r), nil, "New secret made: the receiver needs it now.")
}

func (c *Console) replayDead(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	var res struct {
		Replayed int `json:"replayed"`
	}
	err := c.call(r, actor, "POST", "/v1/webhooks/"+esc(r.PathValue("id"))+"/replay", nil, &res)
	c.after(w, r, webhookPath(r), err, strconv.Itoa(res.Replayed)+" dead event(s) queued again, in their order.")
}

// deleteWebhook deletes an endpoint and its outbox once the box saying so
// is ticked.
func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	base := "/v1/webhooks/" + esc(r.PathValue("id"))
	if r.PostFormValue("confirm") != "yes" && c.cfg.API.Allows(actor, "DELETE", base) {
		c.site.Redirect(w, r, webhookPath(r), webui.Flash{Error: true, Message: "Not deleted: tick the box to confirm."})
		return
	}
	err := c.call(r, actor, "DELETE", base, nil, nil)
	c.afterTo(w, r, err, Prefix+"/webhooks", webhookPath(r), "Webhook "+r.PathValue("id")+" deleted with its queued events.")
}

// Events of every endpoint.

type eventsData struct {
	Topic, State, Webhook string
	Page                  deliveriesPage
	Topics, States        []string
	CanReplay             bool
}

// NextURL is the following page with the same filters.
func (d eventsData) NextURL() string {
	v := url.Values{"before": {d.Page.Next}}
	for k, s := range map[string]string{"topic": d.Topic, "state": d.State, "webhook": d.Webhook} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return Prefix + "/webhooks/events?" + v.Encode()
}

func (c *Console) webhookEvents(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	q := r.URL.Query()
	d := eventsData{Topic: q.Get("topic"), State: q.Get("state"), Webhook: strings.TrimSpace(q.Get("webhook")),
		Topics: webhook.Topics, States: []string{storage.WebhookPending, storage.WebhookDelivered, storage.WebhookDead},
		CanReplay: c.cfg.API.Allows(actor, "POST", "/v1/webhooks/events/1/replay")}
	var err error
	d.Page, err = c.readDeliveries(r, actor, "/v1/webhooks/events",
		map[string]string{"topic": d.Topic, "state": d.State, "webhook": d.Webhook, "before": q.Get("before")})
	if err != nil {
		c.show(w, r, actor, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhookevents", actor, &webui.Page{Title: "Webhook events", Data: d})
}

// replayEvent queues one event again and goes back to the endpoint's page
// (from=webhook) or the events page.
func (c *Console) replayEvent(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	id := r.PathValue("event")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		webui.Refuse(w, http.StatusBadRequest, "bad request: an event id is a number")
		return
	}
	var ev webhook.DeliveryView
	err := c.call(r, actor, "POST", "/v1/webhooks/events/"+id+"/replay", nil, &ev)
	to := Prefix + "/webhooks/events"
	if ep := r.PostFormValue("webhook"); ep != "" {
		to = Prefix + "/webhooks/" + esc(ep)
	}
	c.after(w, r, to, err, "Event "+id+" queued again.")
}
