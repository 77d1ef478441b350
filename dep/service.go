package dep

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// SecretBox seals secrets at rest (internal/pki.SecretBox satisfies it).
type SecretBox interface {
	Seal(plaintext []byte, label string) []byte
	Open(sealed []byte, label string) ([]byte, error)
}

// Schedule is the sync cadence; the zero value of a field takes the default.
type Schedule struct {
	Delta          time.Duration // between delta syncs (12h)
	Full           time.Duration // between scheduled full syncs (7 days)
	Manual         time.Duration // between manual syncs of one token (15m)
	Timeout        time.Duration // one sync's deadline (15m)
	RemovedTTL     time.Duration // Removed devices are deleted after (45 days)
	FailedCooldown time.Duration // before retrying a serial Apple answered FAILED for (24h)
	Tick           time.Duration // how often Run looks for due syncs (1m)
	PageLimit      int           // devices per fetch/sync page (1000)
}

func (s Schedule) withDefaults() Schedule {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Delta, 12*time.Hour)
	def(&s.Full, 7*24*time.Hour)
	def(&s.Manual, 15*time.Minute)
	def(&s.Timeout, 15*time.Minute)
	def(&s.RemovedTTL, 45*24*time.Hour)
	def(&s.FailedCooldown, 24*time.Hour)
	def(&s.Tick, time.Minute)
	if s.PageLimit <= 0 {
		s.PageLimit = 1000
	}
	return s
}

// Config holds the Service's required dependencies.
type Config struct {
	Store storage.DEPStore
	Box   SecretBox
	Keys  *KeyPair
	// EnrollURL returns the MDM enrollment URL put in the profiles Orchard
	// defines at Apple (e.g. <public-url>/mdm/enroll/ade?profile=<id>).
	EnrollURL func(tokenID, profileID string) string
	// AnchorCerts (DER) go into every profile's anchor_certs besides the
	// admin's own: the server's self-signed TLS certificate, without which
	// Setup Assistant cannot reach the enrollment URL.
	AnchorCerts [][]byte
}

// Service is Orchard's ADE capability: tokens, the per-token syncer,
// devices and profiles. Its methods are safe for concurrent use.
type Service struct {
	store     storage.DEPStore
	box       SecretBox
	keys      *KeyPair
	enrollURL func(tokenID, profileID string) string
	anchors   [][]byte
	sched     Schedule
	clock     Clock
	log       *slog.Logger
	metrics   Metrics
	clientOpt []ClientOption

	mu      sync.Mutex
	running map[string]bool
	clients map[string]cachedClient
}

type cachedClient struct {
	sealed []byte
	c      *Client
}

// Option tunes a Service.
type Option func(*Service)

// WithSchedule sets the sync cadence.
func WithSchedule(s Schedule) Option { return func(svc *Service) { svc.sched = s.withDefaults() } }

// WithServiceClock sets the clock (tests).
func WithServiceClock(c Clock) Option { return func(svc *Service) { svc.clock = c } }

// WithServiceLogger sets the logger.
func WithServiceLogger(l *slog.Logger) Option { return func(svc *Service) { svc.log = l } }

// WithServiceMetrics sets the counters.
func WithServiceMetrics(m Metrics) Option { return func(svc *Service) { svc.metrics = m } }

// WithClientOptions passes options to every Client (WithBaseURL for
// --dep-url, WithHTTPClient...).
func WithClientOptions(opts ...ClientOption) Option {
	return func(svc *Service) { svc.clientOpt = append(svc.clientOpt, opts...) }
}

// New returns a Service; it refuses nil dependencies.
func New(ctx context.Context, cfg Config, opts ...Option) (*Service, error) {
	if cfg.Store == nil || cfg.Box == nil || cfg.Keys == nil || cfg.EnrollURL == nil {
		return nil, errors.New("dep: New needs Store, Box, Keys and EnrollURL")
	}
	s := &Service{store: cfg.Store, box: cfg.Box, keys: cfg.Keys, enrollURL: cfg.EnrollURL, anchors: cfg.AnchorCerts,
		sched: Schedule{}.withDefaults(), clock: realClock{}, log: slog.Default(), metrics: NopMetrics{},
		running: map[string]bool{}, clients: map[string]cachedClient{}}
	for _, o := range opts {
		o(s)
	}
	if s.clock == nil || s.log == nil || s.metrics == nil {
		return nil, errors.New("dep: nil option")
	}
	return s, nil
}

// PublicKeyPEM is the certificate to upload to ABM/ASM.
func (s *Service) PublicKeyPEM() []byte { return s.keys.CertPEM() }

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func credLabel(id string) string { return "dep-token:" + id }

func (s *Service) seal(id string, c Credentials) []byte {
	raw, _ := json.Marshal(c)
	return s.box.Seal(raw, credLabel(id))
}

func (s *Service) credentials(t storage.DEPToken) (Credentials, error) {
	var c Credentials
	raw, err := s.box.Open(t.SealedCredentials, credLabel(t.ID))
	if err != nil {
		return c, fmt.Errorf("dep: token %s: %w", t.ID, err)
	}
	return c, json.Unmarshal(raw, &c)
}

// client returns the cached client of a token, rebuilt after renewal.
func (s *Service) client(t storage.DEPToken) (*Client, error) {
	s.mu.Lock()
	cc, ok := s.clients[t.ID]
	s.mu.Unlock()
	if ok && bytes.Equal(cc.sealed, t.SealedCredentials) {
		return cc.c, nil
	}
	creds, err := s.credentials(t)
	if err != nil {
		return nil, err
	}
	opts := append([]ClientOption{WithClock(s.clock), WithLogger(s.log.With("dep_token", t.ID)), WithMetrics(s.metrics)}, s.clientOpt...)
	c, err := NewClient(creds, opts...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.clients[t.ID] = cachedClient{t.SealedCredentials, c}
	s.mu.Unlock()
	return c, nil
}

// TokenView is a token as the API shows it: no secret.
type TokenView struct {
	ID                string                 `json:"id"`
	Name              string                 `json:"name"`
	Note              string                 `json:"note,omitempty"`
	ServerName        string                 `json:"server_name,omitempty"`
	OrgName           string                 `json:"org_name,omitempty"`
	Status            storage.DEPTokenStatus `json:"status"`
	StatusReason      string                 `json:"status_reason,omitempty"`
	AccessTokenExpiry time.Time              `json:"access_token_expiry"`
	Warning           string                 `json:"warning,omitempty"`
	DefaultProfileID  string                 `json:"default_profile_id,omitempty"`
	LastSync          time.Time              `json:"last_sync,omitzero"`
	LastFullSync      time.Time              `json:"last_full_sync,omitzero"`
	LastError         string                 `json:"last_error,omitempty"`
	CreatedAt         time.Time              `json:"created_at"`
	UpdatedAt         time.Time              `json:"updated_at"`
}

// ExpiryWarning is how long before expiry a token is flagged.
const ExpiryWarning = 30 * 24 * time.Hour

func (s *Service) view(t storage.DEPToken, st storage.DEPSyncState) TokenView {
	v := TokenView{ID: t.ID, Name: t.Name, Note: t.Note, ServerName: t.ServerName, OrgName: t.OrgName,
		Status: t.Status, StatusReason: t.StatusReason, AccessTokenExpiry: t.AccessTokenExpiry,
		DefaultProfileID: t.DefaultProfileID, LastSync: st.LastSync, LastFullSync: st.LastFullSync,
		LastError: st.LastError, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	now := s.clock.Now()
	switch left := t.AccessTokenExpiry.Sub(now); {
	case t.AccessTokenExpiry.IsZero():
	case left <= 0:
		v.Warning = "token expired: download a new one from Apple Business Manager and renew it"
	case left <= ExpiryWarning:
		v.Warning = fmt.Sprintf("token expires in %d days: renew it", int(math.Ceil(left.Hours()/24)))
	}
	return v
}

// AddToken decrypts a .p7m server token and stores it under a new ID.
func (s *Service) AddToken(ctx context.Context, name, note string, p7m []byte) (TokenView, error) {
	name, note = strings.TrimSpace(name), strings.TrimSpace(note)
	if name == "" || len(name) > 255 || len(note) > 255 {
		return TokenView{}, invalid("name is required (at most 255 characters; note at most 255)")
	}
	creds, err := s.keys.DecryptToken(p7m)
	if err != nil {
		return TokenView{}, err
	}
	existing, err := s.store.DEPTokens(ctx)
	if err != nil {
		return TokenView{}, err
	}
	for _, t := range existing {
		if c, err := s.credentials(t); err == nil && c.ConsumerKey == creds.ConsumerKey {
			return TokenView{}, fmt.Errorf("this server token is already added as %s (%q): renew that token instead: %w", t.ID, t.Name, storage.ErrConflict)
		}
	}
	now := s.clock.Now()
	t := storage.DEPToken{ID: newID(), Name: name, Note: note, AccessTokenExpiry: creds.AccessTokenExpiry,
		Status: storage.DEPTokenOK, CreatedAt: now, UpdatedAt: now}
	t.SealedCredentials = s.seal(t.ID, creds)
	s.describe(ctx, &t)
	if err := s.store.PutDEPToken(ctx, t); err != nil {
		return TokenView{}, err
	}
	s.log.InfoContext(ctx, "dep: token added", "dep_token", t.ID, "name", t.Name, "expires", t.AccessTokenExpiry)
	return s.view(t, storage.DEPSyncState{}), nil
}

// describe fills the server and org names from Apple, best effort.
func (s *Service) describe(ctx context.Context, t *storage.DEPToken) {
	c, err := s.client(*t)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	acct, err := c.Account(ctx)
	if err != nil {
		if errors.Is(err, ErrTokenRejected) {
			t.Status, t.StatusReason = storage.DEPTokenRejected, err.Error()
		}
		return
	}
	t.ServerName, t.OrgName = acct.ServerName, acct.OrgName
}

// RenewToken replaces a token's credentials with a new .p7m, keeping its
// devices, profiles and cursor, and clears a rejected status.
func (s *Service) RenewToken(ctx context.Context, id string, p7m []byte) (TokenView, error) {
	creds, err := s.keys.DecryptToken(p7m)
	if err != nil {
		return TokenView{}, err
	}
	probe, err := s.store.DEPToken(ctx, id)
	if err != nil {
		return TokenView{}, err
	}
	probe.SealedCredentials = s.seal(id, creds)
	probe.Status, probe.StatusReason = storage.DEPTokenOK, ""
	s.describe(ctx, &probe)
	now := s.clock.Now()
	t, err := s.store.UpdateDEPToken(ctx, id, func(t *storage.DEPToken) error {
		t.SealedCredentials, t.AccessTokenExpiry = probe.SealedCredentials, creds.AccessTokenExpiry
		t.Status, t.StatusReason = probe.Status, probe.StatusReason
		if probe.ServerName != "" {
			t.ServerName, t.OrgName = probe.ServerName, probe.OrgName
		}
		t.UpdatedAt = now
		return nil
	})
	if err != nil {
		return TokenView{}, err
	}
	st, err := s.store.DEPSyncState(ctx, id)
	if err != nil {
		return TokenView{}, err
	}
	st.NotBefore, st.Failures = time.Time{}, 0
	if err := s.store.PutDEPSyncState(ctx, st); err != nil {
		return TokenView{}, err
	}
	s.log.InfoContext(ctx, "dep: token renewed", "dep_token", id, "expires", t.AccessTokenExpiry)
	return s.view(t, st), nil
}

// Token returns one token's view.
func (s *Service) Token(ctx context.Context, id string) (TokenView, error) {
	t, err := s.store.DEPToken(ctx, id)
	if err != nil {
		return TokenView{}, err
	}
	st, err := s.store.DEPSyncState(ctx, id)
	if err != nil {
		return TokenView{}, err
	}
	return s.view(t, st), nil
}

// Tokens lists every token's view.
func (s *Service) Tokens(ctx context.Context) ([]TokenView, error) {
	ts, err := s.store.DEPTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		st, err := s.store.DEPSyncState(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, s.view(t, st))
	}
	return out, nil
}

// DeleteToken deletes a token that owns nothing any more; otherwise the
// error is a *storage.DEPTokenInUseError saying what remains.
func (s *Service) DeleteToken(ctx context.Context, id string) error {
	if err := s.store.DeleteDEPToken(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.clients, id)
	s.mu.Unlock()
	return nil
}

// MarkEnrolled records that an ADE device enrolled; ErrNotFound when the
// serial is not an ADE device (the caller may ignore that).
func (s *Service) MarkEnrolled(ctx context.Context, serial string) error {
	if _, err := s.store.DEPDevice(ctx, serial); err != nil {
		return err
	}
	now := s.clock.Now()
	return s.store.UpdateDEPDevices(ctx, []string{serial}, func(d *storage.DEPDevice) error {
		d.Status, d.EnrolledAt, d.RemovedAt, d.UpdatedAt = storage.DEPEnrolled, now, time.Time{}, now
		return nil
	})
}

// Devices lists ADE devices.
func (s *Service) Devices(ctx context.Context, f storage.DEPDeviceFilter) ([]storage.DEPDevice, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalid("status must be ready, missing_profile, enrolled or removed")
	}
	return s.store.DEPDevices(ctx, f)
}

// DeleteDevice forgets a device; if Apple still assigns it to this
// server, the next full sync brings it back.
func (s *Service) DeleteDevice(ctx context.Context, serial string) error {
	return s.store.DeleteDEPDevice(ctx, serial)
}
