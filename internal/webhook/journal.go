package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/micromdm/plist"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
)

// JournalStore is what the journal needs from storage.
type JournalStore interface {
	ListWebhooks(ctx context.Context) ([]storage.WebhookEndpoint, error)
	AppendWebhookDeliveries(ctx context.Context, ds []storage.WebhookDelivery) error
}

// labelBody seals the bodies of endpoints that opted in to secrets.
const labelBody = "webhook-body"

// endpointsTTL is how long the journal trusts its copy of the endpoint
// list: changes through this replica's API apply at once (Invalidate),
// another replica's within this.
const endpointsTTL = 5 * time.Second

// Journal writes events to the outbox, one entry per endpoint that wants
// the topic. It is the service's Journal (check-ins, reports) and takes
// Orchard's own events through Publish.
type Journal struct {
	store JournalStore
	box   *pki.SecretBox
	now   func() time.Time
	log   *slog.Logger
	wake  func()
	obs   *Metrics

	// The endpoint list: read on every device request without a lock;
	// Invalidate bumps gen, which retires the snapshot.
	snap     atomic.Pointer[endpointSnapshot]
	gen      atomic.Uint64
	reloadMu sync.Mutex // one reload at a time
}

type endpointSnapshot struct {
	eps      []storage.WebhookEndpoint
	loadedAt time.Time
	gen      uint64
}

// NewJournal builds a journal; wake (may be nil) is called after each
// append so the local dispatcher starts at once; obs may be nil.
func NewJournal(store JournalStore, box *pki.SecretBox, now func() time.Time, log *slog.Logger, wake func(), obs *Metrics) (*Journal, error) {
	if store == nil || box == nil {
		return nil, errors.New("webhook: journal needs a store and a secret box")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if wake == nil {
		wake = func() {}
	}
	return &Journal{store: store, box: box, now: now, log: log, wake: wake, obs: obs}, nil
}

// Invalidate makes the next event read the endpoint list again.
func (j *Journal) Invalidate() { j.gen.Add(1) }

// fresh reports whether a snapshot may still be used.
func (j *Journal) fresh(s *endpointSnapshot) bool {
	return s != nil && s.gen == j.gen.Load() && time.Since(s.loadedAt) <= endpointsTTL
}

// wanting returns the enabled endpoints whose filter takes topic; a
// device path with no such endpoint pays one atomic load and a scan of a
// short in-memory list.
func (j *Journal) wanting(ctx context.Context, topic string) ([]storage.WebhookEndpoint, error) {
	s := j.snap.Load()
	if !j.fresh(s) {
		var err error
		if s, err = j.reload(ctx); err != nil {
			return nil, err
		}
	}
	var out []storage.WebhookEndpoint
	for _, ep := range s.eps {
		if ep.Enabled && matches(ep.Topics, topic) {
			out = append(out, ep)
		}
	}
	return out, nil
}

// reload reads the endpoint list; an Invalidate while it reads leaves
// the snapshot stale, so the next event reads it again.
func (j *Journal) reload(ctx context.Context) (*endpointSnapshot, error) {
	j.reloadMu.Lock()
	defer j.reloadMu.Unlock()
	if s := j.snap.Load(); j.fresh(s) {
		return s, nil // another reload was first
	}
	gen := j.gen.Load()
	eps, err := j.store.ListWebhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	s := &endpointSnapshot{eps: eps, loadedAt: time.Now(), gen: gen}
	j.snap.Store(s)
	return s, nil
}

// Record implements service.Journal.
func (j *Journal) Record(ctx context.Context, ev service.Event) error {
	switch ev := ev.(type) {
	case service.CheckinReceived:
		c := ev.Checkin
		topic := "mdm." + string(c.Type)
		eps, err := j.wanting(ctx, topic)
		if err != nil || len(eps) == 0 {
			return err
		}
		return j.appendTo(ctx, eps, topic, func(env *Envelope, ep *storage.WebhookEndpoint) error {
			raw, err := Redacted(c.Raw, ep.IncludeSecrets)
			if err != nil {
				return err
			}
			ce := &CheckinEvent{RawPayload: raw, URLParams: c.Params}
			ce.UDID, ce.EnrollmentID = ids(c.Channel)
			env.CheckinEvent = ce
			return nil
		})
	case service.ReportReceived:
		r := ev.Report
		eps, err := j.wanting(ctx, TopicConnect)
		if err != nil || len(eps) == 0 {
			return err
		}
		return j.appendTo(ctx, eps, TopicConnect, func(env *Envelope, _ *storage.WebhookEndpoint) error {
			ae := &AcknowledgeEvent{Status: string(r.Status), CommandUUID: r.CommandUUID, RawPayload: r.Raw, URLParams: r.Params}
			ae.UDID, ae.EnrollmentID = ids(r.Channel)
			env.AcknowledgeEvent = ae
			return nil
		})
	}
	return nil
}

func ids(ch mdm.Channel) (udid, enrollmentID string) {
	if ch.UserEnrollment {
		return "", ch.DeviceID
	}
	return ch.DeviceID, ""
}

// Publish writes one of Orchard's own events (payload is its
// orchard_event) for every endpoint that wants topic.
func (j *Journal) Publish(ctx context.Context, topic string, payload any) error {
	return j.PublishAll(ctx, topic, []any{payload})
}

// PublishAll writes one event per payload, in order, in one store write.
func (j *Journal) PublishAll(ctx context.Context, topic string, payloads []any) error {
	fills := make([]func(*Envelope, *storage.WebhookEndpoint) error, len(payloads))
	for i, p := range payloads {
		fills[i] = func(env *Envelope, _ *storage.WebhookEndpoint) error {
			env.OrchardEvent = p
			return nil
		}
	}
	return j.append(ctx, topic, fills...)
}

// append builds the event for each endpoint wanting topic and writes all
// of them in one store write.
func (j *Journal) append(ctx context.Context, topic string, fills ...func(*Envelope, *storage.WebhookEndpoint) error) error {
	eps, err := j.wanting(ctx, topic)
	if err != nil || len(eps) == 0 {
		return err
	}
	return j.appendTo(ctx, eps, topic, fills...)
}

// appendTo is append to endpoints already found wanting topic.
func (j *Journal) appendTo(ctx context.Context, eps []storage.WebhookEndpoint, topic string, fills ...func(*Envelope, *storage.WebhookEndpoint) error) error {
	if len(fills) == 0 {
		return nil
	}
	now := j.now().UTC()
	ds := make([]storage.WebhookDelivery, 0, len(eps)*len(fills))
	for _, fill := range fills {
		if err := j.build(&ds, eps, topic, mdm.NewUUID(), now, fill); err != nil {
			return err
		}
	}
	if err := j.store.AppendWebhookDeliveries(ctx, ds); err != nil {
		return fmt.Errorf("append webhook events: %w", err)
	}
	j.obs.queued(len(ds))
	j.wake()
	return nil
}

// build adds one event's entry for each endpoint to ds.
func (j *Journal) build(ds *[]storage.WebhookDelivery, eps []storage.WebhookEndpoint, topic, id string, now time.Time,
	fill func(*Envelope, *storage.WebhookEndpoint) error) error {
	for i := range eps {
		ep := &eps[i]
		env := Envelope{Topic: topic, EventID: id, CreatedAt: now}
		if err := fill(&env, ep); err != nil {
			return fmt.Errorf("webhook event %s: %w", topic, err)
		}
		body, err := json.Marshal(&env)
		if err != nil {
			return fmt.Errorf("webhook event %s: %w", topic, err)
		}
		d := storage.WebhookDelivery{EndpointID: ep.ID, EventID: id, Topic: topic, CreatedAt: now, Body: body,
			State: storage.WebhookPending, NextAttemptAt: now}
		if len(ep.IncludeSecrets) > 0 {
			d.Body, d.Sealed = j.box.Seal(body, labelBody), true
		}
		*ds = append(*ds, d)
	}
	return nil
}

// Redacted returns raw without the keys of Secrets that include does not
// name. A plist holding none of them is returned as it came; one that
// does is re-encoded (as XML) without them.
func Redacted(raw []byte, include []string) ([]byte, error) {
	var m map[string]any
	if err := plist.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("read raw payload: %w", err)
	}
	cut := false
	for _, k := range Secrets {
		if _, ok := m[k]; ok && !slices.Contains(include, k) {
			delete(m, k)
			cut = true
		}
	}
	if !cut {
		return raw, nil
	}
	return plist.MarshalIndent(m, "\t")
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var _ service.Journal = (*Journal)(nil)
