package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
)

// Store is every storage role webhooks use.
type Store interface {
	storage.WebhookStore
}

// Handler serves /v1/webhooks (the admin API's route table mounts it).
type Handler struct {
	store   Store
	box     *pki.SecretBox
	journal *Journal
	disp    *Dispatcher
	now     func() time.Time
	log     *slog.Logger
}

// NewHandler builds the admin handlers; journal learns of endpoint
// changes, disp is woken by replays.
func NewHandler(store Store, box *pki.SecretBox, journal *Journal, disp *Dispatcher, now func() time.Time, log *slog.Logger) (*Handler, error) {
	if store == nil || box == nil || journal == nil || disp == nil {
		return nil, errors.New("webhook: handler needs a store, a secret box, the journal and the dispatcher")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handler{store: store, box: box, journal: journal, disp: disp, now: now, log: log}, nil
}

// EndpointView is an endpoint as the API shows it: never the secret, and
// the URL without a password.
type EndpointView struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Topics         []string `json:"topics"`
	IncludeSecrets []string `json:"include_secrets"`
	Enabled        bool     `json:"enabled"`
	HasSecret      bool     `json:"has_secret"`
	// Backlog is how many events wait (pending).
	Backlog   int       `json:"backlog"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func endpointView(ep *storage.WebhookEndpoint) EndpointView {
	u := ep.URL
	if p, err := url.Parse(u); err == nil {
		u = p.Redacted()
	}
	inc := ep.IncludeSecrets
	if inc == nil {
		inc = []string{}
	}
	return EndpointView{ID: ep.ID, URL: u, Topics: ep.Topics, IncludeSecrets: inc, Enabled: ep.Enabled,
		HasSecret: len(ep.SecretSealed) > 0, CreatedAt: ep.CreatedAt, UpdatedAt: ep.UpdatedAt}
}

// DeliveryView is one outbox entry: its state, never its body (which may
// hold what an endpoint opted in to).
type DeliveryView struct {
	ID            uint64    `json:"id"`
	EndpointID    string    `json:"endpoint_id"`
	EventID       string    `json:"event_id"`
	Topic         string    `json:"topic"`
	CreatedAt     time.Time `json:"created_at"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	LastStatus    int       `json:"last_status,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
}

func deliveryView(d *storage.WebhookDelivery) DeliveryView {
	return DeliveryView{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, Topic: d.Topic, CreatedAt: d.CreatedAt,
		State: d.State, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastAttemptAt: d.LastAttemptAt,
		LastStatus: d.LastStatus, LastError: d.LastError, DeliveredAt: d.DeliveredAt}
}

// endpointRequest is the body of create (all fields) and PATCH (the ones
// given).
type endpointRequest struct {
	URL            *string   `json:"url"`
	Topics         *[]string `json:"topics"`
	Secret         *string   `json:"secret"` // write-only; "" removes it
	IncludeSecrets *[]string `json:"include_secrets"`
	Enabled        *bool     `json:"enabled"`
}

const (
	maxBody   = 16 << 10
	maxURL    = 2048
	maxSecret = 512
)

// CheckURL refuses what cannot be an endpoint's URL.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > maxURL || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.Join(ErrInvalid, errors.New("url: want an absolute http or https URL of at most 2048 bytes"))
	}
	return nil
}

// apply checks req and sets what it gives on ep.
func (h *Handler) apply(ep *storage.WebhookEndpoint, req *endpointRequest) error {
	if req.URL != nil {
		if err := CheckURL(*req.URL); err != nil {
			return err
		}
		ep.URL = *req.URL
	}
	if req.Topics != nil {
		if err := checkTopics(*req.Topics); err != nil {
			return err
		}
		ep.Topics = *req.Topics
	}
	if req.IncludeSecrets != nil {
		if err := checkSecretNames(*req.IncludeSecrets); err != nil {
			return err
		}
		ep.IncludeSecrets = *req.IncludeSecrets
	}
	if req.Secret != nil {
		switch {
		case len(*req.Secret) > maxSecret:
			return errors.Join(ErrInvalid, errors.New("secret: at most 512 bytes"))
		case *req.Secret == "":
			ep.SecretSealed = nil
		default:
			ep.SecretSealed = h.box.Seal([]byte(*req.Secret), labelSecret)
		}
	}
	if req.Enabled != nil {
		ep.Enabled = *req.Enabled
	}
	return nil
}

// fail answers err, a refused input as a 400 with its reason.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrInvalid) {
		err = apijson.Bad("%s", strings.ReplaceAll(err.Error(), "\n", ": "))
	}
	apijson.Fail(w, r, h.log, err)
}

// List answers every endpoint.
func (h *Handler) List(w http.ResponseWriter, r *http.Request) {
	eps, err := h.store.ListWebhooks(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]EndpointView, 0, len(eps))
	for i := range eps {
		v, err := h.withBacklog(r.Context(), &eps[i])
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

// Create adds an endpoint (enabled unless the request says otherwise).
func (h *Handler) Create(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := apijson.Decode(w, r, maxBody, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.URL == nil || req.Topics == nil {
		h.fail(w, r, apijson.Bad("url and topics are required"))
		return
	}
	now := h.now().UTC()
	ep := &storage.WebhookEndpoint{ID: newID(8), Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := h.apply(ep, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.store.PutWebhook(r.Context(), ep); err != nil {
		h.fail(w, r, err)
		return
	}
	h.journal.Invalidate()
	apijson.WriteJSON(w, http.StatusCreated, endpointView(ep))
}

// Show answers one endpoint.
func (h *Handler) Show(w http.ResponseWriter, r *http.Request) {
	ep, err := h.store.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.withBacklog(r.Context(), ep)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

// withBacklog is the endpoint's view with its count of waiting events.
func (h *Handler) withBacklog(ctx context.Context, ep *storage.WebhookEndpoint) (EndpointView, error) {
	v := endpointView(ep)
	n, err := h.store.CountPendingWebhookDeliveries(ctx, ep.ID)
	if err != nil {
		return v, fmt.Errorf("webhook %s backlog: %w", ep.ID, err)
	}
	v.Backlog = n
	return v, nil
}

// Update changes the fields a PATCH gives.
func (h *Handler) Update(w http.ResponseWriter, r *http.Request) {
	var req endpointRequest
	if err := apijson.Decode(w, r, maxBody, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	ep, err := h.store.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.apply(ep, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	ep.UpdatedAt = h.now().UTC()
	if err := h.store.PutWebhook(r.Context(), ep); err != nil {
		h.fail(w, r, err)
		return
	}
	h.journal.Invalidate()
	h.disp.Wake() // re-enabled: its waiting events go now
	v, err := h.withBacklog(r.Context(), ep)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, v)
}

// Delete removes an endpoint and its outbox.
func (h *Handler) Delete(w http.ResponseWriter, r *http.Request) {
	if err := h.store.DeleteWebhook(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	h.journal.Invalidate()
	w.WriteHeader(http.StatusNoContent)
}

const maxList = 500

// filter reads state, topic, before and limit (default 100, at most 500).
func filter(r *http.Request) (storage.WebhookDeliveryFilter, error) {
	q := r.URL.Query()
	f := storage.WebhookDeliveryFilter{State: q.Get("state"), Topic: q.Get("topic"), Limit: 100}
	switch f.State {
	case "", storage.WebhookPending, storage.WebhookDelivered, storage.WebhookDead:
	default:
		return f, apijson.Bad("state: want pending, delivered or dead")
	}
	if f.Topic != "" && !slices.Contains(Topics, f.Topic) {
		return f, apijson.Bad("topic: %.80q is not one Orchard sends", f.Topic)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return f, apijson.Bad("before: want an event id")
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxList {
			return f, apijson.Bad("limit: want 1 to %d", maxList)
		}
		f.Limit = n
	}
	f.EndpointID = q.Get("webhook")
	return f, nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, f storage.WebhookDeliveryFilter) {
	ds, err := h.store.ListWebhookDeliveries(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]DeliveryView, 0, len(ds))
	for i := range ds {
		out = append(out, deliveryView(&ds[i]))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"events": out})
}

// Deliveries answers one endpoint's recent events, newest first.
func (h *Handler) Deliveries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.store.Webhook(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := filter(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f.EndpointID = id
	h.list(w, r, f)
}

// Events answers events of every endpoint (?state=dead: the dead letters).
func (h *Handler) Events(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.list(w, r, f)
}

// replay puts a delivered or dead event back in its endpoint's queue, due now.
func (h *Handler) replay(ctx context.Context, d *storage.WebhookDelivery) error {
	d.State, d.Attempts, d.NextAttemptAt, d.DeliveredAt = storage.WebhookPending, 0, h.now(), time.Time{}
	return h.store.UpdateWebhookDelivery(ctx, d)
}

// Replay sends one event again.
func (h *Handler) Replay(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		h.fail(w, r, apijson.Bad("event id: want a number"))
		return
	}
	d, err := h.store.WebhookDelivery(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if d.State == storage.WebhookPending {
		h.fail(w, r, apijson.Errorf(http.StatusConflict, "event %d is still pending", id))
		return
	}
	if err := h.replay(r.Context(), d); err != nil {
		h.fail(w, r, err)
		return
	}
	h.disp.Wake()
	apijson.WriteJSON(w, http.StatusOK, deliveryView(d))
}

// ReplayDead sends every dead event of an endpoint again, oldest first.
func (h *Handler) ReplayDead(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.store.Webhook(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	dead, err := h.store.ListWebhookDeliveries(r.Context(), storage.WebhookDeliveryFilter{EndpointID: id, State: storage.WebhookDead})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for i := len(dead) - 1; i >= 0; i-- {
		if err := h.replay(r.Context(), &dead[i]); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.disp.Wake()
	apijson.WriteJSON(w, http.StatusOK, map[string]int{"replayed": len(dead)})
}
