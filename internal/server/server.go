// Package server wires Orchard together: it opens the data dir (database,
// keys), builds the services and handlers, and serves HTTPS until its
// context ends. This is the one place where the parts meet.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/internal/adminapi"
	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/console"
	"github.com/orchardmdm/orchard/internal/declarative"
	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/internal/inventory"
	"github.com/orchardmdm/orchard/internal/metrics"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/portal"
	"github.com/orchardmdm/orchard/internal/profiles"
	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/internal/version"
	"github.com/orchardmdm/orchard/internal/webhook"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/mdm/commands"
	"github.com/orchardmdm/orchard/mdm/enrollprofile"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/mdm/mdmhttp"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
	"github.com/orchardmdm/orchard/storage/postgres"
)

// Config is what `orchard serve` takes from flags and environment.
type Config struct {
	DataDir   string // default ./orchard-data
	Listen    string // default :8443
	PublicURL string // base URL devices use; default https://<hostname>:<port>
	TLSCert   string // PEM files; when empty a self-signed pair is generated
	TLSKey    string
	// PlainHTTP serves without TLS, for a TLS-terminating proxy in front.
	// Devices still sign every message (Mdm-Signature), so identity holds.
	PlainHTTP bool
	// UserAuthentication admits macOS network users' user channels
	// (UserAuthenticate); off, devices are answered 410 Gone.
	UserAuthentication bool
	// APNsURL overrides Apple's push endpoint (proxies, tests); APNsCA is
	// a PEM file of extra roots to trust for it; APNsSandbox uses Apple's
	// development endpoint.
	APNsURL     string
	APNsCA      string
	APNsSandbox bool
	// MetricsListen serves /metrics on its own plain-HTTP listener (e.g.
	// 127.0.0.1:9100) instead of the main one.
	MetricsListen string
	// AdminListen serves the admin API (/v1), the console (/console) and
	// /metrics (unless MetricsListen) on their own listener, with the same
	// TLS as the main one; the main listener then answers 404 for them.
	// Empty: everything on the main listener. AdminListener, when set, is
	// that listener already open (tests).
	AdminListen   string
	AdminListener net.Listener
	// DEPURL overrides Apple's device assignment service (tests, proxies).
	DEPURL string
	// Storage picks the backend when OpenStore is nil: "bolt" (default, the
	// file orchard.db in the data dir) or "postgres" at StorageDSN.
	Storage    string
	StorageDSN string
	// OpenStore opens the storage backend for the data dir, overriding
	// Storage. Tests pass another backend's opener.
	OpenStore func(dataDir string) (storage.Store, error)
	Logger    *slog.Logger

	// MachineInfoRoots replaces Apple's root as the trust for Setup
	// Assistant MachineInfo signatures (tests; nil: Apple's).
	MachineInfoRoots []*x509.Certificate
	// InsecureMachineInfo accepts MachineInfo not verified against the root
	// (labs), with a warning at start and on every use; such enrollments
	// never take over an enrolled device.
	InsecureMachineInfo bool
	// RenewBefore is how long before its identity certificate expires a
	// device is sent a fresh enrollment profile (0: 30 days).
	RenewBefore time.Duration
	// RenewEvery is how often the renewal scan runs (0: hourly); tests
	// shorten it.
	RenewEvery time.Duration
	// Now is the clock of every part that reads one (nil: time.Now); tests
	// move it to years ahead.
	Now func() time.Time

	// WebhookRetryBase and WebhookRetryMax bound the backoff of webhook
	// retries (0: 5 s doubling, at most 5 min); tests shorten them.
	WebhookRetryBase time.Duration
	WebhookRetryMax  time.Duration
	// WebhookURL keeps an endpoint "flag" posting mdm.* events there
	// (NanoMDM's -webhook-url), beside those made through the API.
	WebhookURL string

	// RateLimit is the per-minute budget, per source address, of wrong
	// SCEP challenges, unknown enrollment tokens and MachineInfo posts
	// (0: DefaultRateLimit; negative: no limits).
	RateLimit int
}

// Server is a running Orchard.
type Server struct {
	cfg        Config
	log        *slog.Logger
	store      storage.Store
	ca         *pki.CA
	box        *pki.SecretBox
	apiKey     string // guarded by keyMu once serving (ReloadAPIKey)
	keyMu      sync.Mutex
	admin      *adminapi.API
	tlsCert    tls.Certificate
	selfSigned bool
	svc        *service.Service
	cmds       *command.Service
	dep        *dep.Service
	push       *push.Service
	metrics    *metrics.Metrics
	bg         context.Context // lives until Serve returns or Close
	stopBg     context.CancelFunc
	renewer    *enroll.Renewer
	// scepRefusals collects SCEP-stage refusals, written in batches.
	scepRefusals *enroll.SCEPRefusals
	verifier     *identity.Verifier
	profiles     *profiles.Reconciler
	handler      http.Handler
	jobs         heldJobs // exclusive jobs and whether this replica runs them
	console      *console.Console
	// adminHandler serves the admin listener when AdminListen is set.
	adminHandler http.Handler
	hooks        *webhook.Dispatcher
	journal      *webhook.Journal
	hooksAPI     *webhook.Handler
}

// New opens the data dir and builds everything; it serves nothing yet.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "orchard-data"
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8443"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OpenStore == nil {
		open, err := StoreOpener(cfg.Storage, cfg.StorageDSN)
		if err != nil {
			return nil, err
		}
		cfg.OpenStore = open
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := s.loadKeys(); err != nil {
		return nil, err
	}
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = defaultPublicURL(cfg.Listen)
	}
	if _, err := url.Parse(s.cfg.PublicURL); err != nil {
		return nil, fmt.Errorf("--public-url: %w", err)
	}
	store, err := cfg.OpenStore(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.store = store
	// A backend may have found something on open that an admin should know
	// (bbolt: records that differ only in the case of their UDID).
	if n, ok := store.(interface{ Notes() []string }); ok {
		for _, note := range n.Notes() {
			s.log.Warn("storage: " + note)
		}
	}
	if err := s.build(); err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) loadKeys() error {
	var err error
	if s.ca, err = pki.LoadOrCreateCA(s.cfg.DataDir); err != nil {
		return err
	}
	if s.box, err = pki.LoadOrCreateSecretBox(s.cfg.DataDir); err != nil {
		return err
	}
	if s.apiKey, err = loadOrCreateAPIKey(filepath.Join(s.cfg.DataDir, "api-key"), s.log); err != nil {
		return err
	}
	certPath, keyPath := s.cfg.TLSCert, s.cfg.TLSKey
	if (certPath == "") != (keyPath == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if certPath == "" {
		s.selfSigned = true
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
		var public string
		if s.cfg.PublicURL != "" {
			if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Hostname() != "" {
				public = u.Hostname()
				hosts = append(hosts, public)
			}
		}
		var replaced bool
		if certPath, keyPath, replaced, err = pki.LoadOrCreateServerTLS(s.cfg.DataDir, hosts, public); err != nil {
			return err
		}
		if replaced {
			s.log.Warn("the --public-url host is not in the self-signed TLS certificate: made a new one (the device CA is kept); devices enrolled under the old host need a new enrollment profile",
				"host", public, "file", certPath)
		}
	}
	if s.tlsCert, err = tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		return fmt.Errorf("load TLS pair: %w", err)
	}
	if s.selfSigned {
		s.log.Info("serving a self-signed TLS certificate", "sha256", pki.Fingerprint(s.tlsCert.Leaf), "file", certPath)
	}
	return nil
}

// loadOrCreateAPIKey reads the admin key, creating it on first start.
func loadOrCreateAPIKey(path string, log *slog.Logger) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(data))
		if len(key) < 16 {
			return "", fmt.Errorf("%s: API key too short", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	b := make([]byte, 32)
	rand.Read(b)
	key := base64.RawURLEncoding.EncodeToString(b)
	if err := pki.WriteFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info("created the admin API key", "file", path)
	return key, nil
}

func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://localhost:8443"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return "https://" + net.JoinHostPort(host, port)
}

func (s *Server) build() error {
	s.bg, s.stopBg = context.WithCancel(context.Background())
	s.metrics = metrics.New()
	if err := s.registerGauges(); err != nil {
		return err
	}
	if err := s.buildWebhooks(); err != nil {
		return err
	}
	events := eventStore{Store: s.store, s: s}
	apnsOpts, err := s.apnsOptions()
	if err != nil {
		return err
	}
	s.push, err = push.New(s.bg, s.store, s.box, push.WithLogger(s.log), push.WithAPNsOptions(apnsOpts...),
		push.WithObserver(s.metrics.PushResult))
	if err != nil {
		return err
	}
	now := s.cfg.Now
	verifier, err := identity.NewVerifier(s.ca.Pool(), s.store, identity.WithClock(now))
	if err != nil {
		return err
	}
	depKeys, err := dep.LoadOrCreateKeyPair(s.cfg.DataDir)
	if err != nil {
		return err
	}
	depOpts := []dep.Option{dep.WithServiceLogger(s.log), dep.WithServiceMetrics(s.metrics)}
	if s.cfg.DEPURL != "" {
		depOpts = append(depOpts, dep.WithClientOptions(dep.WithBaseURL(s.cfg.DEPURL)))
	}
	var anchors [][]byte
	if s.selfSigned {
		anchors = [][]byte{s.tlsCert.Leaf.Raw}
	}
	s.dep, err = dep.New(context.Background(), dep.Config{
		Store: s.store, Box: s.box, Keys: depKeys, AnchorCerts: anchors,
		EnrollURL: func(tokenID, profileID string) string {
			return enroll.ADEEnrollURL(s.cfg.PublicURL, tokenID, profileID)
		},
	}, depOpts...)
	if err != nil {
		return err
	}
	// Every command is queued through s.cmds. It asks the inventory what a
	// target is, the inventory queues through it and needs the service's
	// unlock tokens, the service reports to the inventory: the closures
	// break the cycles.
	var inv *inventory.Inventory
	s.cmds, err = command.New(s.store, s.store, s.push, command.WithLogger(s.log), command.WithObserver(s.metrics), command.WithClock(now),
		command.WithTargets(command.TargetsFunc(func(ctx context.Context, e *storage.Enrollment) commands.Target { return inv.Target(ctx, e) })))
	if err != nil {
		return err
	}
	inv, err = inventory.New(s.store,
		inventory.UnlockTokenFunc(func(ctx context.Context, ch string) ([]byte, error) { return s.svc.UnlockToken(ctx, ch) }),
		s.cmds, inventory.WithPusher(s.push), inventory.WithLogger(s.log), inventory.WithClock(now))
	if err != nil {
		return err
	}
	adeSetup, err := enroll.NewADESetup(s.dep, s.cmds, s.log)
	if err != nil {
		return err
	}
	scepLimit, enrollLimit, err := limitOptions(s.cfg.RateLimit, s.metrics.RateLimited)
	if err != nil {
		return err
	}
	s.scepRefusals = enroll.NewSCEPRefusals(s.store, s.log)
	scepSrv, err := scep.New(s.ca, s.store, append(scepLimit, scep.WithLogger(s.log), scep.WithObserver(s.metrics.SCEP), scep.WithClock(now),
		scep.WithRefusals(s.scepRefusals))...)
	if err != nil {
		return err
	}
	signer, err := enrollprofile.LoadOrCreateSigner(s.cfg.DataDir, s.ca)
	if err != nil {
		return err
	}
	policies, err := policy.New(s.store, s.log, policy.WithClock(now))
	if err != nil {
		return err
	}
	enrollment, err := enroll.New(enroll.Config{
		PublicURL:       s.cfg.PublicURL,
		TLSCert:         s.tlsCert.Leaf,
		TLSSelfSigned:   s.selfSigned,
		Topic:           s.push.Topic,
		DevelopmentAPNS: s.cfg.APNsSandbox,
		Logger:          s.log,
	}, revokingStore{Store: events, forget: verifier.Forget}, signer, scepSrv, append(append(enrollLimit, s.machineInfoOptions()...), enroll.WithClock(now), enroll.WithUsers(s.store),
		enroll.WithPolicy(setupPolicy{policies}), enroll.WithSCEPRefusals(s.scepRefusals))...)
	if err != nil {
		return err
	}
	if s.renewer, err = enroll.NewRenewer(enrollment, events, s.cmds, s.cfg.RenewBefore); err != nil {
		return err
	}
	if err := s.metrics.SetIdentitiesExpiringFunc(func() float64 {
		n, err := s.renewer.Expiring(s.bg)
		if err != nil {
			s.log.Error("metrics", "err", err)
		}
		return float64(n)
	}); err != nil {
		return err
	}
	if err := s.metrics.SetJobsFunc(s.jobs.snapshot); err != nil {
		return err
	}
	// Profiles and declaration sets are scoped by one resolver; groups are
	// the directory's (a device's primary user's groups). A membership
	// change reconciles the devices it touches (onMembership is set once
	// both consumers exist, before anything serves).
	// Categories are internal/category's, and their writes are observed the
	// same way.
	var onMembership []func(ctx context.Context, deviceIDs ...string)
	membershipChanged := func(ctx context.Context, ids []string) {
		for _, fn := range onMembership {
			fn(ctx, ids...)
		}
	}
	users, err := directory.New(s.store, directory.WithClock(now), directory.WithMembershipHook(membershipChanged))
	if err != nil {
		return err
	}
	categories, err := category.New(s.store, category.WithClock(now), category.WithChangeHook(membershipChanged))
	if err != nil {
		return err
	}
	resolver := &scope.Resolver{Devices: scope.StoreDevices{Store: s.store}, Groups: users, Categories: categories}
	if s.profiles, err = profiles.New(events, s.cmds, resolver, s.log); err != nil {
		return err
	}
	userSetup, err := enroll.NewUserSetup(s.cmds, s.log)
	if err != nil {
		return err
	}
	ddmEngine, err := declarative.New(s.store, s.cmds, declarative.WithLogger(s.log), declarative.WithClock(now),
		declarative.WithResolver(resolver))
	if err != nil {
		return err
	}
	onMembership = append(onMembership, s.profiles.MembershipChanged, ddmEngine.MembershipChanged)
	termsService, err := terms.New(s.store, terms.WithClock(now))
	if err != nil {
		return err
	}
	stages, err := enrollstage.New(s.store, enrollstage.WithClock(now))
	if err != nil {
		return err
	}
	affinity, err := enroll.NewAffinity(s.store, categorySetter{categories}, s.log,
		enroll.WithEnrolledStages(portalStages{stages}))
	if err != nil {
		return err
	}
	userAuth := s.cfg.UserAuthentication
	s.svc, err = service.New(s.store, s.box, service.WithLogger(s.log), service.WithClock(now),
		service.WithDeclarative(ddmEngine),
		service.WithUserAuthentication(func() bool { return userAuth }),
		service.WithTopic(s.push.Topic),
		service.WithFailureRecorder(events),
		service.WithJournal(s.journal), // the webhook outbox, written before the device is answered
		service.WithResultEffects(inv), // the inventory from a result, written with it
		service.WithAdmission(policy.Admission{Engine: policies}),
		// What reacts to device events, in the order it runs.
		service.WithObserver(s.metrics),
		// Before adeSetup: an enrolled device's profiles are queued ahead
		// of DeviceConfigured, so it leaves Setup Assistant configured.
		service.WithObserver(s.profiles),
		service.WithObserver(ddmEngine), // before adeSetup: the sync goes ahead of DeviceConfigured
		service.WithObserver(adeSetup),
		service.WithObserver(userSetup),
		service.WithObserver(affinity),
		service.WithObserver(s.renewer),
		service.WithObserver(inv))
	if err != nil {
		return err
	}
	s.verifier = verifier
	if _, ok := s.store.(storage.Notifier); ok {
		s.readThrough() // until Serve has subscribed to other replicas' changes
	}
	device, err := mdmhttp.New(s.svc, verifier, mdmhttp.WithLogger(s.log), mdmhttp.WithObserver(s.metrics))
	if err != nil {
		return err
	}

	profileAPI, err := profiles.NewHandler(s.store, s.profiles, signer, s.log)
	if err != nil {
		return err
	}
	s.admin, err = adminapi.New(adminapi.Config{APIKey: s.apiKey, Store: s.store, Commands: s.cmds, Secrets: s.svc,
		Releaser: eventReleaser{next: s.svc, s: s}, Push: s.push, DEP: s.dep, Inventory: inv, Enroll: enrollment, Backup: s.backup(), Admins: s.store, Sessions: s.store, Logger: s.log,
		Profiles: profileAPI, Directory: users, Declarative: ddmEngine,
		Categories: categories, History: s.store, CommandLog: s.store, Webhooks: s.hooksAPI, Policy: policies,
		Terms: termsService, Stages: stages})
	if err != nil {
		return err
	}

	s.console, err = console.New(console.Config{API: s.admin, Admins: s.store, Sessions: s.store, Box: s.box, Logger: s.log, Now: now})
	if err != nil {
		return err
	}

	signIn, err := directory.NewPasswordAuth(users, s.log)
	if err != nil {
		return err
	}
	// Framing is allowed site-wide for Setup Assistant's web view; the
	// portal's other pages take it back themselves.
	portalSite, err := webui.New(webui.Options{Kind: "portal", Name: "Orchard enrollment", Prefix: "/portal", Store: s.store,
		IdleTimeout: 30 * time.Minute, MaxAge: 2 * time.Hour, MaxFormBytes: 16 << 10, AllowFraming: true, Now: now, Logger: s.log})
	if err != nil {
		return err
	}
	pages, err := portal.New(portal.Config{Enroll: enrollment, Auth: signIn, Site: portalSite, Logger: s.log, Now: now,
		Categories: portalCategories{s.store}, Policy: setupPolicy{policies}, Failures: events,
		Terms: portalTerms{termsService}, Stages: portalStages{stages}})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	device.Register(mux)
	enrollment.RegisterPublic(mux)
	pages.Register(mux) // /portal, invitation links, Setup Assistant sign-in (people, on the public listener)
	healthz := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		// "ok" stays the first line for probes that read only that.
		w.Write([]byte("ok\n" + version.Get().String() + "\n"))
	}
	mux.HandleFunc("GET /healthz", healthz)
	adminMux := mux
	if s.cfg.AdminListen != "" || s.cfg.AdminListener != nil {
		adminMux = http.NewServeMux()
		adminMux.HandleFunc("GET /healthz", healthz)
	}
	adminMux.Handle("/v1/", s.admin) // the whole admin API: routes in internal/adminapi/routes.go
	adminMux.Handle(console.Prefix+"/", s.console)
	adminMux.Handle("GET "+console.Prefix, http.RedirectHandler(console.Prefix+"/", http.StatusMovedPermanently))
	if s.cfg.MetricsListen == "" {
		adminMux.Handle("GET /metrics", s.metrics.Handler())
	}
	s.handler = s.metrics.Instrument(mux)
	if adminMux != mux {
		s.adminHandler = s.metrics.Instrument(adminMux)
	}
	return nil
}

// revokingStore tells the identity verifier when a certificate is revoked,
// so its cached issuance record is dropped at once.
type revokingStore struct {
	storage.Store
	forget func(serial string)
}

func (r revokingStore) RevokeCert(ctx context.Context, serial string, at time.Time) error {
	if err := r.Store.RevokeCert(ctx, serial, at); err != nil {
		return err
	}
	r.forget(serial)
	return nil
}

// registerGauges exposes the queue depth, enrolled devices and the push
// certificate's and ABM tokens' expiries. Counting
// walks the database, so a scrape reuses a count up to 30 seconds old.
func (s *Server) registerGauges() error {
	var mu sync.Mutex
	var at time.Time
	var queued, enrolled int
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > 30*time.Second {
			q, e, err := s.store.Counts(s.bg)
			if err != nil {
				s.log.Error("count queue and devices for metrics", "err", err)
			} else {
				queued, enrolled, at = q, e, time.Now()
			}
		}
		return queued, enrolled
	}
	if err := s.metrics.SetQueueDepthFunc(func() float64 { q, _ := counts(); return float64(q) }); err != nil {
		return err
	}
	// Expiries are read at scrape time (s.push is set before any scrape).
	pushExpiry := func() (time.Time, bool) {
		info, err := s.push.Info(time.Now())
		if err != nil {
			return time.Time{}, false
		}
		return info.NotAfter, true
	}
	tokenExpiries := func() []metrics.TokenExpiry {
		tokens, err := s.store.DEPTokens(s.bg)
		if err != nil {
			s.log.Error("list ABM tokens for metrics", "err", err)
			return nil
		}
		out := make([]metrics.TokenExpiry, 0, len(tokens))
		for _, t := range tokens {
			out = append(out, metrics.TokenExpiry{ID: t.ID, Name: t.Name, NotAfter: t.AccessTokenExpiry})
		}
		return out
	}
	if err := s.metrics.SetExpiryFuncs(pushExpiry, tokenExpiries); err != nil {
		return err
	}
	return s.metrics.SetEnrolledDevicesFunc(func() float64 { _, e := counts(); return float64(e) })
}

// apnsOptions turns the APNs settings into pusher options.
func (s *Server) apnsOptions() ([]apns.Option, error) {
	var opts []apns.Option
	if s.cfg.APNsSandbox {
		opts = append(opts, apns.WithSandbox())
	}
	if s.cfg.APNsURL != "" {
		opts = append(opts, apns.WithBaseURL(s.cfg.APNsURL))
	}
	if s.cfg.APNsCA != "" {
		pemBytes, err := os.ReadFile(s.cfg.APNsCA)
		if err != nil {
			return nil, fmt.Errorf("--apns-ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--apns-ca: %s holds no PEM certificate", s.cfg.APNsCA)
		}
		opts = append(opts, apns.WithRootCAs(pool))
	}
	return opts, nil
}

// RenewIdentities runs one identity renewal scan now (Serve runs one an
// hour); tests call it after moving the clock.
func (s *Server) RenewIdentities(ctx context.Context) error { return s.renewer.Scan(ctx) }

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// CA is the device-identity CA.
func (s *Server) CA() *pki.CA { return s.ca }

// Store is the storage backend.
func (s *Server) Store() storage.Store { return s.store }

// OpenBolt opens the default backend: the bbolt file orchard.db in dataDir.
func OpenBolt(dataDir string) (storage.Store, error) {
	return bolt.Open(filepath.Join(dataDir, "orchard.db"), bolt.Options{})
}

// OpenPostgres returns an opener of the PostgreSQL database at dsn; the
// data dir still holds the keys.
func OpenPostgres(dsn string) func(dataDir string) (storage.Store, error) {
	return func(string) (storage.Store, error) {
		return postgres.Open(context.Background(), dsn, postgres.Options{})
	}
}

// StoreOpener maps --storage and --storage-dsn to an opener.
func StoreOpener(kind, dsn string) (func(dataDir string) (storage.Store, error), error) {
	switch kind {
	case "", "bolt":
		if dsn != "" {
			return nil, errors.New("--storage-dsn is for --storage postgres; bolt keeps orchard.db in the data dir")
		}
		return OpenBolt, nil
	case "postgres":
		if dsn == "" {
			return nil, errors.New("--storage postgres needs --storage-dsn (e.g. postgres://orchard@db/orchard)")
		}
		return OpenPostgres(dsn), nil
	}
	return nil, fmt.Errorf("--storage %q: want bolt or postgres", kind)
}

// APIKey is the admin bearer key.
func (s *Server) APIKey() string {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.apiKey
}

// TLSCertificate is the server's TLS pair.
func (s *Server) TLSCertificate() tls.Certificate { return s.tlsCert }

// PublicURL is the base URL devices are told to use.
func (s *Server) PublicURL() string { return s.cfg.PublicURL }

// TLSConfig asks for (but does not require) a client certificate, so
// devices may authenticate at the TLS layer; the MDM handlers verify it.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{s.tlsCert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
	}
}

// Serve serves HTTPS on ln until ctx ends, then shuts down gracefully and
// closes the database.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 3)
	if s.cfg.MetricsListen != "" {
		ml, err := net.Listen("tcp", s.cfg.MetricsListen)
		if err != nil {
			ln.Close()
			s.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		metricsMux := http.NewServeMux()
		metricsMux.Handle("GET /metrics", s.metrics.Handler())
		msrv := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := msrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		defer msrv.Close()
		s.log.Info("metrics served", "listen", ml.Addr().String())
	}

	if s.adminHandler != nil {
		aln := s.cfg.AdminListener
		if aln == nil {
			var err error
			if aln, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
				ln.Close()
				s.Close()
				return fmt.Errorf("--admin-listen: %w", err)
			}
		}
		asrv := &http.Server{
			Handler: s.adminHandler, TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 2 * time.Minute, WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		go func() {
			var err error
			if s.cfg.PlainHTTP {
				err = asrv.Serve(aln)
			} else {
				err = asrv.ServeTLS(aln, "", "")
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin listener: %w", err)
			}
		}()
		defer func() {
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			asrv.Shutdown(shutdown)
		}()
		s.log.Info("admin API and console served", "listen", aln.Addr().String())
	}

	bg, stop := context.WithCancel(ctx)
	defer stop()
	go s.sweepWebSessions(bg)
	reconciling := make(chan struct{})
	go func() { s.profiles.Run(bg); close(reconciling) }()
	renewing, warning := make(chan struct{}), make(chan struct{})
	every := s.cfg.RenewEvery
	if every <= 0 {
		every = time.Hour
	}
	// Scheduled work runs on one replica at a time (see runExclusive);
	// what each replica does for its own requests (profile reconciling of
	// its events, last-seen flushing, cache coherence) runs everywhere.
	go func() {
		s.logExclusive("identity renewal", s.runExclusive(bg, jobRenewal, func(ctx context.Context) error {
			s.renewer.Run(ctx, every)
			return nil
		}))
		close(renewing)
	}()
	go func() {
		s.logExclusive("push certificate expiry warnings", s.runExclusive(bg, jobPushExpiry, func(ctx context.Context) error {
			s.push.RunExpiryWarnings(ctx)
			return nil
		}))
		close(warning)
	}()
	flushed, synced, followed, delivered := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		s.logExclusive("webhook delivery", s.runExclusive(bg, jobWebhooks, s.hooks.Run))
		close(delivered)
	}()
	go func() { s.followChanges(bg); close(followed) }()
	go func() { s.svc.RunLastSeenFlusher(bg, 30*time.Second); close(flushed) }()
	refusalsWritten := make(chan struct{})
	go func() { s.scepRefusals.Run(bg, scepRefusalsEvery); close(refusalsWritten) }()
	go func() {
		s.logExclusive("ABM sync", s.runExclusive(bg, jobDEPSync, s.dep.Run))
		close(synced)
	}()
	go func() {
		if s.cfg.PlainHTTP {
			errc <- srv.Serve(ln)
		} else {
			errc <- srv.ServeTLS(ln, "", "")
		}
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	// Whatever ended serving, stop taking requests before closing storage.
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	if serr := srv.Shutdown(shutdown); err == nil {
		err = serr
	}
	cancel()
	stop()
	<-flushed
	<-refusalsWritten
	<-synced
	<-renewing
	<-warning
	<-followed
	<-delivered
	<-reconciling
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	s.push.Close(drain)
	cancel()
	s.stopBg()
	if cerr := s.store.Close(); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = cerr
	}
	return err
}

// scepRefusalsEvery is how often the SCEP refusals collected are written:
// a flood of bad challenges costs at most one write this often.
const scepRefusalsEvery = 10 * time.Second

// sweepWebSessions deletes expired console sessions now and then (each
// is also dropped when it comes back); every replica may run it.
func (s *Server) sweepWebSessions(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.console.Site().DeleteExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("expired web sessions not deleted", "err", err)
			} else if n > 0 {
				s.log.Debug("expired web sessions deleted", "n", n)
			}
		}
	}
}

// exclusiveRunner is a store shared by replicas that can make one of them
// at a time run a job (PostgreSQL: an advisory lock).
type exclusiveRunner interface {
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) error
}

// runExclusive runs a background job that must not run on two replicas at
// once (ABM sync: Apple throttles it per token; renewal scans would queue
// a due renewal twice) on whichever replica holds the store's lock, taking
// over when that one goes away: a replica that stops or crashes ends its
// database session, which releases the lock. A store for one process only
// runs it.
func (s *Server) runExclusive(ctx context.Context, name string, fn func(context.Context) error) error {
	s.jobs.set(name, false)
	held := func(ctx context.Context) error {
		s.jobs.set(name, true)
		defer s.jobs.set(name, false)
		s.log.Info("running exclusive job", "job", name)
		return fn(ctx)
	}
	ex, ok := s.store.(exclusiveRunner)
	if !ok {
		return held(ctx)
	}
	for {
		err := ex.RunExclusive(ctx, name, held)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("exclusive job ended; waiting for its lock again", "job", name, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.store.Close()
		return err
	}
	s.log.Info("orchard serving", "version", version.Get().String(), "listen", ln.Addr().String(), "public_url", s.cfg.PublicURL, "data", s.cfg.DataDir)
	s.logNextStep()
	return s.Serve(ctx, ln)
}

// logNextStep tells a new admin what to do first: without a push
// certificate no device can enroll.
func (s *Server) logNextStep() {
	if s.push.Topic() != "" {
		return
	}
	s.log.Warn("no MDM push certificate yet: devices cannot enroll until one is uploaded. Next: " +
		"`orchard push-cert csr --email you@example.com -o push.csr`, have the CSR signed by your push certificate vendor, " +
		"upload it at https://identity.apple.com, then `orchard push-cert upload --cert MDM_Certificate.pem`")
}

// Close releases the database when Serve was never called.
func (s *Server) Close() error {
	s.stopBg()
	return s.store.Close()
}

// machineInfoOptions are the enrollment options for Setup Assistant
// MachineInfo: the ADE route and the trust of its signatures.
func (s *Server) machineInfoOptions() []enroll.Option {
	opts := []enroll.Option{enroll.WithADE(s.store)}
	if s.cfg.MachineInfoRoots != nil {
		opts = append(opts, enroll.WithMachineInfoRoots(s.cfg.MachineInfoRoots))
	}
	if s.cfg.InsecureMachineInfo {
		s.log.Warn("--insecure-machineinfo is on: ADE and Apple Configurator enrollments are accepted without " +
			"verifying MachineInfo against Apple's root; anyone who knows an assigned serial can enroll")
		opts = append(opts, enroll.WithInsecureMachineInfo())
	}
	return opts
}
