// Package adminapi is Orchard's one admin HTTP surface: JSON over HTTPS
// under /v1/, behind bearer tokens (the bootstrap API key or an admin's
// token) and one role check per route (access.go). routes.go holds the whole route
// table; the handlers decode and check input, call the services (storage,
// the push, DEP, inventory and enrollment services) and answer through
// apijson, whose one map turns errors into status codes. Unknown routes
// and wrong methods answer JSON errors like every other failure.
package adminapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/category"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/enrollstage"
	"github.com/orchardmdm/orchard/internal/inventory"
	enrollpolicy "github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/profiles"
	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/internal/terms"
	"github.com/orchardmdm/orchard/internal/webhook"
	"github.com/orchardmdm/orchard/storage"
)

// MaxJSONBody bounds admin request bodies (commands can carry profiles).
const MaxJSONBody = 32 << 20

// Store is what the device and command routes read and write.
type Store interface {
	storage.CheckinStore
	storage.CommandQueue
}

// Commands sends commands (the command service).
type Commands interface {
	Send(ctx context.Context, req *command.Request) (*command.Outcome, error)
}

// Secrets opens a device's sealed secrets when the admin asks by name.
type Secrets interface {
	UnlockToken(ctx context.Context, channel string) ([]byte, error)
}

// PushService is the push certificate and the pushes; *push.Service.
type PushService interface {
	Upload(ctx context.Context, pc *apns.PushCert, appleID string, force bool) error
	Info(now time.Time) (*push.Info, error)
	Push(ctx context.Context, channels []string) ([]push.Target, error)
}

// Config wires the API. APIKey and Store are required; a nil service
// leaves its routes answering 503.
type Config struct {
	APIKey    string
	Store     Store
	Commands  Commands
	Secrets   Secrets
	Releaser  Releaser
	Push      PushService
	DEP       DEPService
	Inventory *inventory.Inventory
	Enroll    *enroll.Handler
	Backup    Backup
	Directory *directory.Service
	// Categories is device categories (internal/category).
	Categories *category.Service
	// Terms is terms and conditions (internal/terms).
	Terms *terms.Service
	// Stages is the enrollment-stage record (internal/enrollstage).
	Stages *enrollstage.Recorder
	// Admins keeps admin accounts, their tokens and the audit log; without
	// it only the API key works and nothing is audited.
	Admins storage.AdminStore
	// Sessions holds the console's sessions: a changed password, a
	// disabled account and a two-factor reset end that admin's sessions.
	Sessions    storage.WebSessionStore
	Profiles    *profiles.Handler
	Declarative Declarative
	// History answers a device's command history.
	History storage.CommandHistory
	// CommandLog answers the fleet-wide command list.
	CommandLog storage.CommandLog
	Webhooks   *webhook.Handler
	// Policy is the enrollment-policy engine (its routes answer 503 without).
	Policy *enrollpolicy.Engine
	Logger *slog.Logger
}

// API serves /v1/.
type API struct {
	store    Store
	commands Commands
	secrets  Secrets
	releaser Releaser
	push     PushService
	dep      DEPService
	inv      *inventory.Inventory
	enroll   *enroll.Handler
	backup   Backup
	dir      *directory.Service
	cats     *category.Service
	terms    *terms.Service
	stages   *enrollstage.Recorder
	admins   storage.AdminStore
	sessions storage.WebSessionStore
	profiles *profiles.Handler
	ddm      Declarative
	history  storage.CommandHistory
	cmdlog   storage.CommandLog
	webhooks *webhook.Handler
	policy   *enrollpolicy.Engine
	log      *slog.Logger
	key      atomic.Pointer[[sha256.Size]byte] // SHA-256 of the API key; SetAPIKey swaps it

	mux *http.ServeMux
	// paths has every route's path without its method, to tell a wrong
	// method (405) from an unknown path (404).
	paths *http.ServeMux
	allow map[string][]string // path pattern -> methods, for Allow
	// byPattern finds a route by its mux pattern, for Allows.
	byPattern map[string]route
}

// New builds the admin API.
func New(c Config) (*API, error) {
	if c.APIKey == "" || c.Store == nil {
		return nil, errors.New("adminapi: API key and store are required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	a := &API{store: c.Store, commands: c.Commands, secrets: c.Secrets, releaser: c.Releaser, push: c.Push,
		dep: c.DEP, inv: c.Inventory, enroll: c.Enroll, backup: c.Backup, admins: c.Admins, sessions: c.Sessions, profiles: c.Profiles, dir: c.Directory, ddm: c.Declarative, history: c.History, cmdlog: c.CommandLog, log: c.Logger, cats: c.Categories, webhooks: c.Webhooks, policy: c.Policy,
		terms: c.Terms, stages: c.Stages,
		mux: http.NewServeMux(), paths: http.NewServeMux(), allow: map[string][]string{}, byPattern: map[string]route{}}
	a.SetAPIKey(c.APIKey)
	for _, rt := range a.routes() {
		h := rt.handler
		if rt.needs != nil && !rt.needs(a) {
			h = unavailable
		}
		h = a.guard(rt, h)
		a.mux.HandleFunc(rt.method+" "+rt.path, h)
		a.byPattern[rt.method+" "+rt.path] = rt
		if _, ok := a.allow[rt.path]; !ok {
			a.paths.HandleFunc(rt.path, func(http.ResponseWriter, *http.Request) {})
		}
		a.allow[rt.path] = append(a.allow[rt.path], rt.method)
		if rt.method == http.MethodGet {
			a.allow[rt.path] = append(a.allow[rt.path], http.MethodHead)
		}
	}
	return a, nil
}

// SetAPIKey replaces the API key at once: requests with the old key get
// 401 from now on. An empty key is ignored (New refuses one too).
func (a *API) SetAPIKey(key string) {
	if key == "" {
		return
	}
	sum := sha256.Sum256([]byte(key))
	a.key.Store(&sum)
}

// route is one line of the route table.
type route struct {
	method, path string
	// access is what the request needs of its actor's role (access.go).
	access  access
	handler http.HandlerFunc
	// needs, when set, tells whether the service behind the route is wired.
	needs func(*API) bool
}

func unavailable(w http.ResponseWriter, r *http.Request) {
	apijson.WriteError(w, http.StatusServiceUnavailable, "this part of the API is not configured on this server")
}

// ServeHTTP checks the API key, then routes; anything unmatched under /v1/
// gets a JSON 404 or 405 instead of ServeMux's plain text.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	actor, err := a.authenticate(r.Context(), r)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if actor == nil {
		// Anyone without a key learns nothing, not even which routes exist.
		w.Header().Set("WWW-Authenticate", `Bearer realm="orchard"`)
		apijson.WriteError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	// The metrics middleware outside reads the route from its own request:
	// hand back the pattern the route table sets on this copy.
	orig := r
	r = r.WithContext(adminauth.WithActor(r.Context(), actor))
	defer func() { orig.Pattern = r.Pattern }()
	a.dispatch(w, r)
}

// dispatch routes a request whose actor is in its context.
func (a *API) dispatch(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	// No route matched: the request is metered as unmatched, not as "/v1/".
	r.Pattern = ""
	if _, path := a.paths.Handler(r); path != "" {
		methods := a.allow[path]
		w.Header().Set("Allow", strings.Join(methods, ", "))
		apijson.WriteError(w, http.StatusMethodNotAllowed, "method not allowed: this path takes "+strings.Join(methods, ", "))
		return
	}
	apijson.WriteError(w, http.StatusNotFound, "no such admin API route")
}

// Routes lists the route table as "METHOD /path" patterns, in table order.
func Routes() []string {
	var out []string
	for _, rt := range (&API{}).routes() {
		out = append(out, rt.method+" "+rt.path)
	}
	return slices.Clip(out)
}
