// Package push is Orchard's side of push notifications: it keeps the MDM
// push certificate (key sealed at rest), turns channel IDs into APNs
// notifications, sends them in the background through apns, and records
// each channel's outcome (a dead token stops further pushes until the
// device's next TokenUpdate).
package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
)

// Store is what the push service reads and writes.
type Store interface {
	storage.SettingsStore
	storage.PushStore
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
}

// Observer counts push outcomes (metrics).
type Observer func(outcome string)

const (
	settingKey = "apns.push_certificate"
	labelKey   = "apns-push-key"
)

// stored is the push certificate as kept in settings.
type stored struct {
	CertPEM    []byte    `json:"cert_pem"`
	KeySealed  []byte    `json:"key_sealed"`
	AppleID    string    `json:"apple_id,omitempty"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// Service pushes channels. Its methods are safe for concurrent use.
type Service struct {
	store   Store
	box     *pki.SecretBox
	log     *slog.Logger
	opts    []apns.Option
	observe Observer
	ctx     context.Context
	fails   *failureLog

	mu      sync.RWMutex
	cert    *apns.PushCert
	meta    stored
	pusher  *apns.Pusher
	disp    *apns.Dispatcher
	stopOld func()
}

// Option configures a Service.
type Option func(*Service)

// WithAPNsOptions passes options to the pusher (base URL, sandbox...).
func WithAPNsOptions(o ...apns.Option) Option {
	return func(s *Service) { s.opts = append(s.opts, o...) }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithObserver counts outcomes.
func WithObserver(o Observer) Option { return func(s *Service) { s.observe = o } }

// New loads the stored push certificate, if any. Pushes run until ctx ends.
func New(ctx context.Context, store Store, box *pki.SecretBox, opts ...Option) (*Service, error) {
	if store == nil || box == nil {
		return nil, errors.New("push: store and secret box are required")
	}
	s := &Service{store: store, box: box, log: slog.Default(), observe: func(string) {}, ctx: ctx}
	for _, o := range opts {
		o(s)
	}
	s.fails = newFailureLog(s.log)
	pc, st, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if pc != nil {
		if err := s.install(pc, st); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// load reads the stored push certificate; nil when there is none.
func (s *Service) load(ctx context.Context) (*apns.PushCert, stored, error) {
	raw, err := s.store.Setting(ctx, settingKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, stored{}, nil
	}
	if err != nil {
		return nil, stored{}, fmt.Errorf("push: load certificate: %w", err)
	}
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, st, fmt.Errorf("push: decode stored certificate: %w", err)
	}
	keyPEM, err := s.box.Open(st.KeySealed, labelKey)
	if err != nil {
		return nil, st, fmt.Errorf("push: open stored key: %w", err)
	}
	pc, err := apns.ParsePEM(st.CertPEM, keyPEM, "")
	if errors.Is(err, apns.ErrExpired) {
		s.log.Error("the stored MDM push certificate has expired: devices cannot be woken until a renewed one is uploaded")
	}
	if err != nil && !errors.Is(err, apns.ErrExpired) {
		return nil, st, fmt.Errorf("push: stored certificate: %w", err)
	}
	return pc, st, nil
}

// SettingKey is the storage setting holding the push certificate: a
// change to it (on another replica) calls for Reload.
const SettingKey = settingKey

// Reload installs the stored push certificate when it is not the one in
// use: another replica uploaded a new one.
func (s *Service) Reload(ctx context.Context) error {
	pc, st, err := s.load(ctx)
	if err != nil || pc == nil {
		return err
	}
	s.mu.RLock()
	same := s.cert != nil && bytes.Equal(s.cert.Leaf.Raw, pc.Leaf.Raw)
	s.mu.RUnlock()
	if same {
		return nil
	}
	s.log.Info("MDM push certificate reloaded (uploaded on another replica)", "topic", pc.Topic, "not_after", pc.Leaf.NotAfter)
	return s.install(pc, st)
}

// install makes pc the live certificate with a fresh pusher.
func (s *Service) install(pc *apns.PushCert, st stored) error {
	p, err := apns.NewPusher(pc.TLS, append([]apns.Option{apns.WithLogger(s.log)}, s.opts...)...)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	d, err := apns.NewDispatcher(ctx, p, s.record, apns.WithResolver(s.resolve))
	if err != nil {
		cancel()
		return fmt.Errorf("push: %w", err)
	}
	s.mu.Lock()
	old, oldPusher, stopOld := s.disp, s.pusher, s.stopOld
	s.cert, s.meta, s.pusher, s.disp, s.stopOld = pc, st, p, d, cancel
	s.mu.Unlock()
	if old != nil {
		// Let the old certificate's queue drain; renewal must not drop pushes.
		go func() {
			ctx, done := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
			defer done()
			if err := old.Close(ctx); err != nil {
				s.log.Warn("old push certificate's wake-ups not all sent; those devices get their commands at their next connect", "err", err)
			}
			oldPusher.Close()
			stopOld()
		}()
	}
	s.warnIfExpiring(time.Now())
	return nil
}

func (s *Service) warnIfExpiring(now time.Time) {
	s.mu.RLock()
	pc := s.cert
	s.mu.RUnlock()
	if pc == nil {
		return
	}
	if st := pc.Status(now); st != apns.StatusActive {
		s.log.Warn("MDM push certificate needs renewal", "topic", pc.Topic, "status", st.String(), "days_left", pc.DaysLeft(now), "not_after", pc.Leaf.NotAfter)
	}
}

// RunExpiryWarnings logs a warning daily while the certificate expires
// within 30 days.
func (s *Service) RunExpiryWarnings(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.warnIfExpiring(now)
		}
	}
}

// Topic is the push certificate's topic, "" when none is set.
func (s *Service) Topic() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return ""
	}
	return s.cert.Topic
}

// ErrNoCertificate: nothing can be pushed, and no device can enroll,
// before a push certificate is uploaded. Its text is the admin's next step.
var ErrNoCertificate = errors.New("no MDM push certificate: upload an MDM push certificate first (orchard push-cert upload)")

// Upload stores a new push certificate. A certificate for another topic is
// refused unless force: every enrolled device is bound to the old topic.
func (s *Service) Upload(ctx context.Context, pc *apns.PushCert, appleID string, force bool) error {
	s.mu.RLock()
	current := s.cert
	s.mu.RUnlock()
	if err := apns.CheckRenewal(current, pc, force); err != nil {
		return err
	}
	certPEM, keyPEM, err := pc.PEM()
	if err != nil {
		return err
	}
	st := stored{CertPEM: certPEM, KeySealed: s.box.Seal(keyPEM, labelKey), AppleID: appleID, UploadedAt: time.Now().UTC()}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.store.PutSetting(ctx, settingKey, raw); err != nil {
		return err
	}
	s.log.Info("MDM push certificate installed", "topic", pc.Topic, "not_after", pc.Leaf.NotAfter, "renewal", current != nil)
	return s.install(pc, st)
}

// Info describes the push certificate for the API.
type Info struct {
	Topic     string    `json:"topic"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_until_expiry"`
	Status    string    `json:"status"`
	AppleID   string    `json:"apple_id,omitempty"`
	Uploaded  time.Time `json:"uploaded_at"`
}

// Info returns the certificate's details, or ErrNoCertificate.
func (s *Service) Info(now time.Time) (*Info, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, ErrNoCertificate
	}
	l := s.cert.Leaf
	return &Info{
		Topic: s.cert.Topic, Subject: l.Subject.String(), Serial: l.SerialNumber.Text(16),
		NotBefore: l.NotBefore, NotAfter: l.NotAfter, DaysLeft: s.cert.DaysLeft(now),
		Status: s.cert.Status(now).String(), AppleID: s.meta.AppleID, Uploaded: s.meta.UploadedAt,
	}, nil
}

// Target is one channel's push request outcome at enqueue time.
type Target struct {
	Channel string `json:"target"`
	Queued  bool   `json:"queued"`
	Error   string `json:"error,omitempty"`
}

// Push queues wake-ups for channels and returns at once; outcomes are
// recorded on each channel as APNs answers.
func (s *Service) Push(ctx context.Context, channels []string) ([]Target, error) {
	s.mu.RLock()
	d := s.disp
	s.mu.RUnlock()
	if d == nil {
		return nil, ErrNoCertificate
	}
	out := make([]Target, 0, len(channels))
	ns := make([]apns.Notification, 0, len(channels))
	for _, ch := range channels {
		t := Target{Channel: ch}
		e, err := s.store.Enrollment(ctx, ch)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			t.Error = "unknown device or channel"
		case err != nil:
			return nil, err
		case !e.Enrolled:
			t.Error = "not enrolled"
		case len(e.Token) == 0 || e.PushMagic == "":
			t.Error = "no push token yet"
		case e.TokenInvalid:
			t.Error = "push token invalid (APNs said so); waiting for the device's next TokenUpdate"
		default:
			t.Queued = true
			ns = append(ns, apns.Notification{Token: e.Token, PushMagic: e.PushMagic, Topic: e.Topic, ID: ch})
		}
		out = append(out, t)
	}
	if refused := d.Enqueue(ns); len(refused) > 0 {
		s.record(refused)
	}
	return out, nil
}

// PushChannels wakes channels after commands were queued for them. It
// returns at once: the channels join the dispatcher's set of channels to
// wake (one waiting already is not added twice) and are looked up only
// when their turn comes. It never fails the caller: without a
// certificate, devices get their commands at their next connect.
func (s *Service) PushChannels(ctx context.Context, channels []string) {
	s.mu.RLock()
	d := s.disp
	s.mu.RUnlock()
	if d == nil {
		return
	}
	if n := d.Wake(channels); n > 0 {
		s.log.Warn("push service stopping: channels not woken; they get their commands at their next connect", "channels", n)
	}
}

// resolve turns channels due for a wake-up into notifications with their
// current token, in one narrow read per batch; those that cannot be pushed
// (gone, not enrolled, no or a dead token) are skipped: their commands
// wait for their next connect.
func (s *Service) resolve(ctx context.Context, channels []string) []apns.Notification {
	ts, err := s.store.PushTargets(ctx, channels)
	failures := len(channels)
	if err != nil && len(channels) > 1 && ctx.Err() == nil {
		// One bad record must not cost the whole batch its wake-up.
		ts, failures = ts[:0], 0
		for _, ch := range channels {
			t, err1 := s.store.PushTargets(ctx, []string{ch})
			if err1 != nil {
				failures, err = failures+1, err1
			}
			ts = append(ts, t...)
		}
	}
	if err != nil && failures > 0 && ctx.Err() == nil {
		s.log.Error("look up channels to push", "channels", failures, "err", err)
	}
	ns := make([]apns.Notification, 0, len(ts))
	for i := range ts {
		if t := &ts[i]; t.Pushable() {
			ns = append(ns, apns.Notification{Token: t.Token, PushMagic: t.PushMagic, Topic: t.Topic, ID: t.ID})
		}
	}
	return ns
}

// ErrNotQueued: the channel was not woken (no token yet, invalid token...).
var ErrNotQueued = errors.New("not pushed")

// Wake pushes one channel and says whether a notification was queued:
// nil when it was, ErrNoCertificate, or ErrNotQueued with the reason.
func (s *Service) Wake(ctx context.Context, channel string) error {
	ts, err := s.Push(ctx, []string{channel})
	if err != nil {
		return err
	}
	if len(ts) != 1 || !ts[0].Queued {
		reason := "unknown"
		if len(ts) == 1 {
			reason = ts[0].Error
		}
		return fmt.Errorf("%w: %s", ErrNotQueued, reason)
	}
	return nil
}

// record stores a batch of APNs outcomes on their channels.
func (s *Service) record(results []apns.Result) {
	out := make([]storage.PushResult, 0, len(results))
	for _, r := range results {
		out = append(out, storage.PushResult{ChannelID: r.ID, Token: r.Token, At: r.At, Sent: r.Sent, TokenInvalid: r.TokenInvalid, Reason: r.Reason})
		switch {
		case r.Sent:
			s.observe("sent")
		case r.TokenInvalid:
			s.observe("token_invalid")
			s.fails.note("token_invalid", r.Reason, r.ID, r.Status, r.Attempts)
		default:
			s.observe("failed")
			s.fails.note("failed", r.Reason, r.ID, r.Status, r.Attempts)
		}
	}
	if err := s.store.RecordPushResults(context.WithoutCancel(s.ctx), out); err != nil {
		s.log.Error("record push results", "err", err)
	}
}

// Close stops pushing, letting queued pushes finish within ctx.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	d, p, stop := s.disp, s.pusher, s.stopOld
	s.disp = nil
	s.mu.Unlock()
	if d == nil {
		return nil
	}
	err := d.Close(ctx)
	if err != nil {
		s.log.Warn("push service stopped with wake-ups left; those devices get their commands at their next connect", "err", err)
	}
	p.Close()
	stop()
	s.fails.stop()
	return err
}
