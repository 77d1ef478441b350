package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/webhook"
	"github.com/orchardmdm/orchard/storage"
)

// jobWebhooks delivers the outbox, on one replica at a time.
const jobWebhooks = "webhook-delivery"

// Webhooks: the journal writes the outbox (device events through the
// service's journal, Orchard's own through eventStore and eventReleaser),
// the dispatcher delivers it on one replica, the handler is the API.
func (s *Server) buildWebhooks() error {
	m, err := webhook.NewMetrics(s.metrics.Registry(), s.store)
	if err != nil {
		return err
	}
	if s.hooks, err = webhook.NewDispatcher(s.store, s.box, webhook.DispatchOptions{Now: s.cfg.Now,
		RetryBase: s.cfg.WebhookRetryBase, RetryMax: s.cfg.WebhookRetryMax, Log: s.log, Metrics: m}); err != nil {
		return err
	}
	if s.journal, err = webhook.NewJournal(s.store, s.box, s.cfg.Now, s.log, s.hooks.Wake, m); err != nil {
		return err
	}
	if s.hooksAPI, err = webhook.NewHandler(s.store, s.box, s.journal, s.hooks, s.cfg.Now, s.log); err != nil {
		return err
	}
	return s.flagWebhook(context.Background())
}

// flagWebhookID names the endpoint --webhook-url keeps.
const flagWebhookID = "flag"

// flagWebhook points the "flag" endpoint at --webhook-url (creating it,
// enabled, for mdm.*); without the flag it leaves the endpoint alone.
func (s *Server) flagWebhook(ctx context.Context) error {
	if s.cfg.WebhookURL == "" {
		return nil
	}
	if err := webhook.CheckURL(s.cfg.WebhookURL); err != nil {
		return fmt.Errorf("--webhook-url: %w", err)
	}
	now := s.cfg.Now().UTC()
	ep, err := s.store.Webhook(ctx, flagWebhookID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		ep = &storage.WebhookEndpoint{ID: flagWebhookID, Topics: []string{"mdm.*"}, CreatedAt: now}
	case err != nil:
		return err
	case ep.URL == s.cfg.WebhookURL && ep.Enabled:
		return nil
	}
	ep.URL, ep.Enabled, ep.UpdatedAt = s.cfg.WebhookURL, true, now
	return s.store.PutWebhook(ctx, ep)
}

// publish writes one of Orchard's own events after the change it reports
// was committed. It is a second write: a crash between the two loses the
// event (the change itself stays, and the API shows it).
func (s *Server) publish(ctx context.Context, topic string, payload any) {
	if err := s.journal.Publish(context.WithoutCancel(ctx), topic, payload); err != nil {
		s.log.Error("write webhook event", "topic", topic, "err", err)
	}
}

// eventStore is the store as the enrollment, renewal and profile services
// see it: it tells webhooks of refused enrollments, failed renewals and
// profile state changes once they are written.
type eventStore struct {
	storage.Store
	s *Server
}

// EnrollmentRefused is the orchard_event of orchard.enrollment.refused.
type EnrollmentRefused struct {
	UDID   string    `json:"udid,omitempty"`
	Serial string    `json:"serial,omitempty"`
	Method string    `json:"method,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func (e eventStore) RecordEnrollmentFailure(ctx context.Context, f *storage.EnrollmentFailure) error {
	if err := e.Store.RecordEnrollmentFailure(ctx, f); err != nil {
		return err
	}
	e.s.publish(ctx, webhook.TopicEnrollmentRefused, EnrollmentRefused{UDID: f.UDID, Serial: f.Serial, Method: f.Method, Reason: f.Reason, At: f.At})
	return nil
}

// ProfileStateChanged is the orchard_event of orchard.profile.state_changed.
type ProfileStateChanged struct {
	ProfileID   string    `json:"profile_id"`
	Channel     string    `json:"channel"`
	Version     int       `json:"version"`
	State       string    `json:"state"`
	CommandUUID string    `json:"command_uuid,omitempty"`
	Errors      []string  `json:"errors,omitempty"`
	At          time.Time `json:"at"`
}

func (e eventStore) PutChannelProfiles(ctx context.Context, states []storage.ChannelProfile) error {
	if err := e.Store.PutChannelProfiles(ctx, states); err != nil {
		return err
	}
	evs := make([]any, len(states))
	for i, st := range states {
		evs[i] = ProfileStateChanged{ProfileID: st.ProfileID, Channel: st.ChannelID,
			Version: st.Version, State: string(st.State), CommandUUID: st.CommandUUID, Errors: st.Errors, At: st.UpdatedAt}
	}
	if err := e.s.journal.PublishAll(context.WithoutCancel(ctx), webhook.TopicProfileStateChanged, evs); err != nil {
		e.s.log.Error("write webhook events", "topic", webhook.TopicProfileStateChanged, "err", err)
	}
	return nil
}

// RenewalFailed is the orchard_event of orchard.renewal.failed.
type RenewalFailed struct {
	UDID        string    `json:"udid"`
	Reason      string    `json:"reason"`
	CommandUUID string    `json:"command_uuid,omitempty"`
	At          time.Time `json:"at"`
}

// UpdateEnrollment tells of a renewal that this write moved to failed.
func (e eventStore) UpdateEnrollment(ctx context.Context, id string, create *storage.Enrollment, fn func(*storage.Enrollment) error) error {
	var failed *storage.Renewal
	err := e.Store.UpdateEnrollment(ctx, id, create, func(en *storage.Enrollment) error {
		was := en.Renewal != nil && en.Renewal.State == storage.RenewalFailed
		if err := fn(en); err != nil {
			return err
		}
		failed = nil
		if !was && en.Renewal != nil && en.Renewal.State == storage.RenewalFailed {
			r := *en.Renewal
			failed = &r
		}
		return nil
	})
	if err == nil && failed != nil {
		e.s.publish(ctx, webhook.TopicRenewalFailed, RenewalFailed{UDID: id, Reason: failed.Reason, CommandUUID: failed.CommandUUID, At: failed.UpdatedAt})
	}
	return err
}

// DeviceReleased is the orchard_event of orchard.device.released.
type DeviceReleased struct {
	UDID  string    `json:"udid"`
	Until time.Time `json:"until"`
}

// eventReleaser tells webhooks of an admin's release.
type eventReleaser struct {
	next adminapi.Releaser
	s    *Server
}

func (r eventReleaser) Release(ctx context.Context, deviceID string) (time.Time, error) {
	until, err := r.next.Release(ctx, deviceID)
	if err == nil {
		r.s.publish(ctx, webhook.TopicDeviceReleased, DeviceReleased{UDID: deviceID, Until: until})
	}
	return until, err
}
