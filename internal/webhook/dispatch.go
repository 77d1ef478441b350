package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/version"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
)

// DispatchStore is what delivery needs from storage.
type DispatchStore interface {
	ListWebhooks(ctx context.Context) ([]storage.WebhookEndpoint, error)
	PendingWebhookDeliveries(ctx context.Context, endpointID string, limit int) ([]storage.WebhookDelivery, error)
	UpdateWebhookDelivery(ctx context.Context, d *storage.WebhookDelivery) error
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int, error)
}

// SignatureHeader carries the base64 HMAC-SHA256 of the body (NanoMDM's name).
const SignatureHeader = "X-Hmac-Signature"

// labelSecret seals endpoint secrets at rest.
const labelSecret = "webhook-secret"

// DispatchOptions tune delivery; the zero value is the production default.
type DispatchOptions struct {
	Client    *http.Client     // default: 10 s timeout, redirects not followed
	Now       func() time.Time // default time.Now
	RetryBase time.Duration    // first retry after about this (default 5 s), doubling
	RetryMax  time.Duration    // retries at most this far apart (default 5 min)
	DeadAfter time.Duration    // an event still failing this long after it was made is dead (default 24 h)
	Retention time.Duration    // delivered and dead events are kept this long (default 7 days)
	Poll      time.Duration    // how often the outbox is looked at without a wake-up (default 2 s)
	Parallel  int              // endpoints posted to at once (default 4)
	Log       *slog.Logger
	Metrics   *Metrics
}

// batch bounds how many events of one endpoint are read (and held in
// memory) per round; a round posts at most that many to it.
const batch = 32

// maxAnswer is how much of a receiver's answer is read (then dropped).
const maxAnswer = 4 << 10

// Dispatcher posts the outbox to its endpoints: each endpoint's events
// one at a time in ID order, a failed one retried (the ones behind it
// wait) with exponential backoff and jitter until it is delivered or
// dead. Run it on one replica at a time.
type Dispatcher struct {
	store DispatchStore
	box   *pki.SecretBox
	o     DispatchOptions
	wake  chan struct{}
	ua    string
}

// NewDispatcher builds a dispatcher.
func NewDispatcher(store DispatchStore, box *pki.SecretBox, o DispatchOptions) (*Dispatcher, error) {
	if store == nil || box == nil {
		return nil, errors.New("webhook: dispatcher needs a store and a secret box")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 24 * time.Hour
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Dispatcher{store: store, box: box, o: o, wake: make(chan struct{}, 1), ua: "orchard/" + version.Get().Version}, nil
}

// Wake makes a running dispatcher look at the outbox now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends; it prunes old events hourly.
func (d *Dispatcher) Run(ctx context.Context) error {
	var pruned time.Time
	for {
		if time.Since(pruned) > time.Hour {
			if n, err := d.store.PruneWebhookDeliveries(ctx, d.o.Now().Add(-d.o.Retention)); err != nil {
				d.o.Log.Error("prune webhook events", "err", err)
			} else if n > 0 {
				d.o.Log.Info("pruned webhook events past retention", "deleted", n)
			}
			pruned = time.Now()
		}
		wait := d.o.Poll
		if next := d.RunOnce(ctx); !next.IsZero() {
			wait = min(wait, max(next.Sub(d.o.Now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-d.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunOnce gives every enabled endpoint one round: its due events in order
// until one fails, is not due yet, or a batch was posted. It returns when
// the earliest endpoint should get its next round (zero: none waits).
func (d *Dispatcher) RunOnce(ctx context.Context) time.Time {
	eps, err := d.store.ListWebhooks(ctx)
	if err != nil {
		d.o.Log.Error("list webhooks", "err", err)
		return d.o.Now().Add(d.o.Poll)
	}
	var (
		mu   sync.Mutex
		next time.Time
		wg   sync.WaitGroup
		sem  = make(chan struct{}, d.o.Parallel)
	)
	for i := range eps {
		if !eps[i].Enabled {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(ep *storage.WebhookEndpoint) {
			defer func() { <-sem; wg.Done() }()
			n := d.round(ctx, ep)
			mu.Lock()
			if !n.IsZero() && (next.IsZero() || n.Before(next)) {
				next = n
			}
			mu.Unlock()
		}(&eps[i])
	}
	wg.Wait()
	return next
}

// round posts one endpoint's due events; see RunOnce.
func (d *Dispatcher) round(ctx context.Context, ep *storage.WebhookEndpoint) time.Time {
	var secret []byte
	if len(ep.SecretSealed) > 0 {
		s, err := d.box.Open(ep.SecretSealed, labelSecret)
		if err != nil {
			d.o.Log.Error("open webhook secret", "webhook", ep.ID, "err", err)
			return d.o.Now().Add(d.o.RetryMax)
		}
		secret = s
	}
	pend, err := d.store.PendingWebhookDeliveries(ctx, ep.ID, batch)
	if err != nil {
		d.o.Log.Error("read webhook outbox", "webhook", ep.ID, "err", err)
		return d.o.Now().Add(d.o.Poll)
	}
	for i := range pend {
		ev := &pend[i]
		now := d.o.Now()
		if ev.NextAttemptAt.After(now) {
			return ev.NextAttemptAt
		}
		if ctx.Err() != nil {
			return time.Time{}
		}
		status, err := d.post(ctx, ep, secret, ev)
		now = d.o.Now()
		ev.Attempts++
		ev.LastAttemptAt, ev.LastStatus, ev.LastError = now, status, ""
		next := time.Time{}
		switch {
		case err == nil:
			ev.State, ev.DeliveredAt, ev.NextAttemptAt = storage.WebhookDelivered, now, time.Time{}
			d.o.Metrics.outcome("delivered")
		case now.Sub(ev.CreatedAt) >= d.o.DeadAfter:
			ev.State, ev.LastError, ev.NextAttemptAt = storage.WebhookDead, clip(err.Error(), 300), time.Time{}
			d.o.Metrics.outcome("dead")
			d.o.Log.Warn("webhook event dead-lettered", "webhook", ep.ID, "event", ev.ID, "topic", ev.Topic, "attempts", ev.Attempts, "err", err)
		default:
			ev.LastError, ev.NextAttemptAt = clip(err.Error(), 300), now.Add(d.backoff(ev.Attempts))
			next = ev.NextAttemptAt
			d.o.Metrics.outcome("failed")
		}
		if uerr := d.store.UpdateWebhookDelivery(ctx, ev); uerr != nil {
			// Not recorded: it is posted again, which at-least-once allows.
			d.o.Log.Error("record webhook delivery", "webhook", ep.ID, "event", ev.ID, "err", uerr)
			return d.o.Now().Add(d.o.Poll)
		}
		if !next.IsZero() {
			return next
		}
	}
	if len(pend) == batch {
		return d.o.Now() // more are waiting: come back at once
	}
	return time.Time{}
}

// backoff is the wait before retry n (n >= 1): RetryBase doubled per
// attempt, capped at RetryMax, of which a random half is jitter so
// endpoints that failed together do not retry together.
func (d *Dispatcher) backoff(n int) time.Duration {
	w := d.o.RetryMax
	if n < 30 {
		w = min(d.o.RetryBase<<(n-1), d.o.RetryMax)
	}
	return w/2 + rand.N(w/2+1)
}

// post sends one event; nil means the receiver answered 2xx. The status
// is 0 when there was no answer.
func (d *Dispatcher) post(ctx context.Context, ep *storage.WebhookEndpoint, secret []byte, ev *storage.WebhookDelivery) (int, error) {
	body := ev.Body
	if ev.Sealed {
		b, err := d.box.Open(ev.Body, labelBody)
		if err != nil {
			return 0, fmt.Errorf("open sealed event: %w", err)
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.ua)
	if len(secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	resp, err := d.o.Client.Do(req)
	if err != nil {
		// The URL is the admin's and may hold a token: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Sign is the X-Hmac-Signature value of body: base64 (standard, padded)
// of its HMAC-SHA256 under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
