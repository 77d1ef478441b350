// Package enroll owns how devices get to Orchard's enrollment profile:
// one-time invitation links, the admin's scripted profile download, Apple
// Configurator profiles (Setup Assistant URL and direct-enrollment
// .mobileconfig downloads), the serial numbers assigned to them, and the
// admin view of issued certificates. It serves HTTP: RegisterPublic mounts
// the device routes; the admin handlers are mounted by adminapi's route
// table behind the API key.
package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// Lifetimes fixed by the enrollment rules.
const (
	OTAChallengeTTL      = 15 * time.Minute    // single-use, over the air
	DirectEnrollmentTTL  = 14 * 24 * time.Hour // Configurator .mobileconfig download
	defaultInvitationTTL = 7 * 24 * time.Hour
	maxInvitationTTL     = 30 * 24 * time.Hour
	maxJSONBody          = 64 << 10
	maxMachineInfoBody   = 64 << 10
)

// Config is what the handlers need to know about the server.
type Config struct {
	// PublicURL is the https base URL devices use.
	PublicURL string
	// TLSCert is the server certificate; when TLSSelfSigned it is put in
	// profiles as a trusted root.
	TLSCert       *x509.Certificate
	TLSSelfSigned bool
	// Topic returns the current push topic ("" until a push cert is set).
	Topic func() string
	// DevelopmentAPNS: pushes go through Apple's sandbox, so profiles
	// point devices at it too.
	DevelopmentAPNS bool
	Logger          *slog.Logger
}

// Handler serves enrollment endpoints.
type Handler struct {
	cfg    Config
	store  storage.EnrollStore
	signer *enrollprofile.Signer
	scep   http.Handler
	now    func() time.Time
	log    *slog.Logger
	ade    ADEDevices // nil: no ADE endpoint

	infoRoots    []*x509.Certificate // MachineInfo trust: Apple's root unless a test injects one
	insecureInfo bool                // lab: accept MachineInfo that does not chain to infoRoots

	tokenLimit, infoLimit Limiter // nil: unlimited

	users  UserLookup // nil: invitations name no user
	policy Decider    // nil: no policy check before Setup Assistant profiles

	scepRefusals *SCEPRefusals // nil: the report lists what is stored
}

// WithSCEPRefusals has the failures report write r's pending SCEP
// refusals before it reads (r is the collector the SCEP server reports to).
func WithSCEPRefusals(r *SCEPRefusals) Option { return func(h *Handler) { h.scepRefusals = r } }

// Decider is the enrollment policy as the Setup Assistant endpoints ask it
// (internal/policy adapts its engine); it writes nothing.
type Decider interface {
	Decide(ctx context.Context, a PolicyAttempt) (PolicyDecision, error)
}

// PolicyAttempt is what a Setup Assistant request tells of the device.
type PolicyAttempt struct {
	Method, Platform, OSVersion, DeviceID, Serial string
	// User is the directory user enrolling ("" userless), so the device
	// limit applies before a profile is handed out.
	User string
}

// PolicyDecision is the policy's answer (codes as internal/policy's).
type PolicyDecision struct {
	Allowed                               bool
	Reason, Policy, Rule, Message, Remedy string
}

// WithPolicy checks Setup Assistant requests against the enrollment policy
// before handing out a profile.
func WithPolicy(d Decider) Option { return func(h *Handler) { h.policy = d } }

// UserLookup finds directory users (storage's DirectoryStore provides it).
type UserLookup interface {
	User(ctx context.Context, username string) (*storage.DirectoryUser, error)
}

// WithUsers lets invitations name the directory user a device enrolls for.
func WithUsers(u UserLookup) Option { return func(h *Handler) { h.users = u } }

// Limiter rations unauthenticated attempts per source address
// (internal/ratelimit provides one).
type Limiter interface {
	Check(key string) (retryAfter time.Duration, ok bool)
	Spend(key string)
}

// WithLimits rations, per source address, lookups of unknown invitation
// tokens (tokens) and MachineInfo posts (machineInfo: every post spends,
// as each costs a signature check). Either may be nil.
func WithLimits(tokens, machineInfo Limiter) Option {
	return func(h *Handler) { h.tokenLimit, h.infoLimit = tokens, machineInfo }
}

// Option configures a Handler.
type Option func(*Handler)

// WithClock sets the time source (tests).
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// New returns the enrollment handlers. scepHandler serves /scep.
func New(cfg Config, store storage.EnrollStore, signer *enrollprofile.Signer, scepHandler http.Handler, opts ...Option) (*Handler, error) {
	if store == nil || signer == nil || scepHandler == nil || cfg.Topic == nil {
		return nil, errors.New("enroll: store, signer, SCEP handler and topic func are required")
	}
	if !strings.HasPrefix(cfg.PublicURL, "https://") {
		return nil, fmt.Errorf("enroll: public URL %q must be https", cfg.PublicURL)
	}
	if cfg.TLSSelfSigned && cfg.TLSCert == nil {
		return nil, errors.New("enroll: a self-signed TLS setup needs the TLS certificate")
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	h := &Handler{cfg: cfg, store: store, signer: signer, scep: scepHandler, now: time.Now, log: cfg.Logger,
		infoRoots: AppleRoots()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// RegisterPublic mounts the unauthenticated device routes. Invitation
// links (/enroll/{token}) are pages people open: internal/portal serves
// them through Invitation and InvitationProfile.
func (h *Handler) RegisterPublic(mux *http.ServeMux) {
	mux.Handle("/scep", h.scep)
	mux.HandleFunc("POST /enroll/configurator/{id}", h.limited(h.infoLimit, true, h.setupAssistantProfile))
	if h.ade != nil {
		mux.HandleFunc("POST /enroll/ade", h.limited(h.infoLimit, true, h.adeProfile))
	}
}

// limited answers 429 to a source that has used up l's budget; with
// spend, every request it lets through costs one attempt.
func (h *Handler) limited(l Limiter, spend bool, next http.HandlerFunc) http.HandlerFunc {
	if l == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		key := ratelimit.SourceKey(r)
		if wait, ok := l.Check(key); !ok {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			h.fail(w, http.StatusTooManyRequests, errors.New("too many enrollment attempts from this address; retry later"))
			return
		}
		if spend {
			l.Spend(key)
		}
		next(w, r)
	}
}

// profileSpec is one profile to hand out.
type profileSpec struct {
	challenge scep.ChallengeSpec
	filename  string
	// commit stores the challenge (and whatever it spends) in one write.
	commit func(ctx context.Context, ch *storage.Challenge) error
}

// errNoPushCert refuses what would hand out a profile before a push
// certificate exists: its Topic would be empty, which a device rejects.
var errNoPushCert = errors.New("no MDM push certificate: upload an MDM push certificate first (orchard push-cert upload)")

// pushCertReady answers 409 itself when no push certificate is installed.
func (h *Handler) pushCertReady(w http.ResponseWriter) bool {
	if h.cfg.Topic() == "" {
		h.fail(w, http.StatusConflict, errNoPushCert)
		return false
	}
	return true
}

// serveProfile builds and signs first, so a failure there spends nothing,
// then commits, then answers.
func (h *Handler) serveProfile(w http.ResponseWriter, r *http.Request, spec profileSpec) {
	if !h.pushCertReady(w) {
		return
	}
	now := h.now()
	secret, ch, err := scep.NewChallenge(spec.challenge, now)
	if err != nil {
		h.fail(w, http.StatusInternalServerError, err)
		return
	}
	raw, err := h.buildProfile(secret, spec.challenge)
	if err != nil {
		h.fail(w, http.StatusInternalServerError, err)
		return
	}
	if err := spec.commit(r.Context(), ch); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+spec.filename+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Orchard-Challenge-Id", ch.ID)
	w.Write(raw)
}

// buildProfile builds and signs an enrollment profile carrying secret.
func (h *Handler) buildProfile(secret string, ch scep.ChallengeSpec) ([]byte, error) {
	params := enrollprofile.Params{PublicURL: h.cfg.PublicURL, Topic: h.cfg.Topic(), Challenge: secret, DevelopmentAPNS: h.cfg.DevelopmentAPNS}
	if h.cfg.TLSSelfSigned {
		params.RootCert = h.cfg.TLSCert
	}
	if ch.ForSerial != "" {
		params.Subject = [][2]string{{"O", "Orchard"}, {"CN", "Orchard device " + ch.ForSerial}}
	}
	raw, err := enrollprofile.Build(params)
	if err == nil {
		raw, err = h.signer.Sign(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("build profile: %w", err)
	}
	return raw, nil
}

type invitationRequest struct {
	Label     string `json:"label"`
	User      string `json:"user"`       // directory username the device enrolls for
	ExpiresIn string `json:"expires_in"` // Go duration, default 168h, at most 720h
}

type invitationResponse struct {
	storage.Invitation
	URL string `json:"url"`
}

// CreateInvitation serves POST /v1/enrollment/invitations.
func (h *Handler) CreateInvitation(w http.ResponseWriter, r *http.Request) {
	if !h.pushCertReady(w) {
		return
	}
	var req invitationRequest
	if !h.decodeJSON(w, r, &req) {
		return
	}
	ttl := defaultInvitationTTL
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > maxInvitationTTL {
			h.fail(w, http.StatusBadRequest, errors.New("expires_in must be a duration between 1s and 720h"))
			return
		}
		ttl = d
	}
	if len(req.Label) > 128 {
		h.fail(w, http.StatusBadRequest, errors.New("label longer than 128 characters"))
		return
	}
	user := strings.ToLower(strings.TrimSpace(req.User))
	if user != "" {
		if h.users == nil {
			h.fail(w, http.StatusBadRequest, errors.New("user: this server keeps no directory"))
			return
		}
		if _, err := h.users.User(r.Context(), user); err != nil {
			apijson.Fail(w, r, h.log, fmt.Errorf("user %q: %w", user, err))
			return
		}
	}
	token := randomToken(32)
	now := h.now()
	inv := storage.Invitation{ID: randomHex(8), TokenHash: tokenHash(token), Label: req.Label, User: user, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := h.store.PutInvitation(r.Context(), &inv); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	// The URL holds the secret token: answered once, never stored or logged.
	apijson.WriteJSON(w, http.StatusCreated, invitationResponse{Invitation: inv, URL: h.cfg.PublicURL + "/enroll/" + token})
}

// ListInvitations serves GET /v1/enrollment/invitations.
func (h *Handler) ListInvitations(w http.ResponseWriter, r *http.Request) {
	after, limit, ok := h.page(w, r)
	if !ok {
		return
	}
	invs, err := h.store.ListInvitations(r.Context(), after, limit)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"invitations": nonNil(invs)})
}
