// Package console is Orchard's admin console at /console: server-rendered
// pages (internal/webui) over the admin API. Admins sign in with their
// account's password and, when enrolled, a TOTP code; every page reads and
// every form writes through the admin API in-process (adminapi.API.Do), as
// the signed-in admin, so access is decided by the route table's one rule,
// the services are the API's and every change lands in the same audit log.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// Prefix is where the console is mounted.
const Prefix = "/console"

// API is the admin API as the console uses it (*adminapi.API).
type API interface {
	// Do runs one request as actor and answers its status and JSON body.
	Do(ctx context.Context, actor *adminauth.Actor, source, method, target string, body []byte) (int, []byte)
	// Allows tells whether actor may make that request.
	Allows(actor *adminauth.Actor, method, target string) bool
}

// Sealer seals the TOTP secrets (*pki.SecretBox).
type Sealer interface {
	Seal(plaintext []byte, label string) []byte
	Open(sealed []byte, label string) ([]byte, error)
}

// Config wires the console; every field but Logger and Now is required.
type Config struct {
	API      API
	Admins   storage.AdminStore
	Sessions storage.WebSessionStore
	Box      Sealer
	Logger   *slog.Logger
	Now      func() time.Time
	// LimitOptions go to the sign-in rate limiters (tests set the clock).
	LimitOptions []ratelimit.Option
}

// Console serves /console/.
type Console struct {
	cfg    Config
	site   *webui.Site
	pages  *webui.Templates
	log    *slog.Logger
	byUser *ratelimit.Limiter
	byAddr *ratelimit.Limiter
	// dummy is a hash to verify against for unknown usernames, made at the
	// first such sign-in (64 MiB of argon2id is not for every start).
	dummy func() string
	stats *statsCache
	h     http.Handler
}

//go:embed templates/*.html
var templates embed.FS

// Sign-in limits: failures only cost a token. Five wrong passwords lock an
// account out for about five minutes (one attempt back a minute); an
// address gets twenty.
const (
	userBurst, userPerMinute = 5, 1
	addrBurst, addrPerMinute = 20, 5
)

// maxUpload bounds a multipart form: a corporate-identifier CSV or a terms
// document (256 KiB of text) with room to spare.
const maxUpload = 1 << 20

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Admins == nil || cfg.Sessions == nil || cfg.Box == nil {
		return nil, errors.New("console: the API, the admin store, the session store and the secret box are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	site, err := webui.New(webui.Options{Kind: "console", // adminapi.ConsoleSessionKind: the API ends these sessions
		Name: "Orchard console", Prefix: Prefix, Store: cfg.Sessions,
		MaxUploadBytes: maxUpload, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	byUser, err := ratelimit.New("console_signin_user", userBurst, userPerMinute, cfg.LimitOptions...)
	if err != nil {
		return nil, err
	}
	byAddr, err := ratelimit.New("console_signin_addr", addrBurst, addrPerMinute, cfg.LimitOptions...)
	if err != nil {
		return nil, err
	}
	dummy := sync.OnceValue(func() string {
		h, _ := adminauth.HashPassword("no admin has this password")
		return h
	})
	c := &Console{cfg: cfg, site: site, log: cfg.Logger, byUser: byUser, byAddr: byAddr, dummy: dummy, stats: &statsCache{}}
	c.pages, err = site.Templates(templates, template.FuncMap{
		"when": c.when, "ago": c.ago, "join": strings.Join, "deref": deref, "lower": strings.ToLower, "dict": dict,
	}, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c.h = site.Handler(c.routes())
	return c, nil
}

// ServeHTTP serves /console/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.h.ServeHTTP(w, r) }

// Site is the console's web foundation (the server sweeps its expired
// sessions).
func (c *Console) Site() *webui.Site { return c.site }

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET "+Prefix+"/static/", c.site.Static())
	m.HandleFunc("GET "+Prefix+"/sign-in", c.signInPage)
	m.HandleFunc("POST "+Prefix+"/sign-in", c.signIn)
	m.HandleFunc("GET "+Prefix+"/sign-in/code", c.codePage)
	m.HandleFunc("POST "+Prefix+"/sign-in/code", c.code)
	m.HandleFunc("POST "+Prefix+"/sign-out", c.signOut)
	pages := []route{
		{"GET " + Prefix + "/{$}", c.dashboard},
		{"GET " + Prefix + "/devices", c.devices},
		{"GET " + Prefix + "/devices/{id}", c.device},
		{"POST " + Prefix + "/devices/{id}/actions/{action}", c.action},
		{"GET " + Prefix + "/commands", c.commands},
		{"GET " + Prefix + "/commands.csv", c.exportCSV("/v1/commands.csv", commandFilters, "orchard-commands.csv")},
		{"GET " + Prefix + "/commands/{uuid}", c.command},
		{"GET " + Prefix + "/enrollment", c.enrollment},
		{"GET " + Prefix + "/push", c.pushPage},
		{"POST " + Prefix + "/push", c.pushUpload},
		{"GET " + Prefix + "/admins", c.admins},
		{"POST " + Prefix + "/admins", c.createAdmin},
		{"POST " + Prefix + "/tokens", c.createToken},
		{"POST " + Prefix + "/tokens/{id}/revoke", c.revokeToken},
		{"GET " + Prefix + "/audit", c.audit},
		{"GET " + Prefix + "/account", c.account},
		{"POST " + Prefix + "/account/totp", c.totpStart},
		{"POST " + Prefix + "/account/totp/confirm", c.totpConfirm},
		{"POST " + Prefix + "/account/totp/disable", c.totpDisable},
		{"GET " + Prefix + "/admins/{name}", c.adminPage},
		{"POST " + Prefix + "/admins/{name}/two-factor/reset", c.resetTwoFactor},
	}
	pages = append(pages, c.peopleRoutes()...)
	pages = append(pages, c.policyRoutes()...)
	pages = append(pages, c.reportRoutes()...)
	pages = append(pages, c.catalogRoutes()...)
	pages = append(pages, c.webhookRoutes()...)
	pages = append(pages, c.configRoutes()...)
	pages = append(pages, c.declarativeRoutes()...)
	for _, p := range pages {
		m.HandleFunc(p.pattern, c.signedIn(p.h))
	}
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "notfound", nil, &webui.Page{Title: "Not found"})
	})
	return m
}

// route is one signed-in page or form of the console.
type route struct {
	pattern string
	h       func(http.ResponseWriter, *http.Request, *adminauth.Actor)
}

// signedIn admits a request with a signed-in session of an enabled admin
// and hands the handler the actor: the admin with the account's role now
// (a demoted or disabled admin loses access at the next request).
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *adminauth.Actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := webui.Subject(r)
		if name == "" {
			if r.Method == http.MethodGet {
				c.site.Redirect(w, r, Prefix+"/sign-in", webui.Flash{})
				return
			}
			webui.Refuse(w, http.StatusUnauthorized, "unauthorized: sign in first")
			return
		}
		acct, err := c.cfg.Admins.GetAdmin(r.Context(), name)
		if err != nil || acct.Disabled {
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				c.fail(w, r, err)
				return
			}
			_ = c.site.SignOut(w, r)
			c.site.Redirect(w, r, Prefix+"/sign-in", webui.Flash{Error: true, Message: "Your account is no longer active."})
			return
		}
		role, err := adminauth.ParseRole(acct.Role)
		if err != nil {
			c.fail(w, r, fmt.Errorf("admin %s: %w", name, err))
			return
		}
		h(w, r, &adminauth.Actor{Admin: acct.Username, Role: role})
	}
}

// nav is the header's navigation, the pages an actor may read.
func (c *Console) nav(actor *adminauth.Actor) []webui.NavItem {
	items := []webui.NavItem{{Label: "Dashboard", Href: Prefix + "/"}, {Label: "Devices", Href: Prefix + "/devices"},
		{Label: "Commands", Href: Prefix + "/commands"}, {Label: "Enrollment", Href: Prefix + "/enrollment"},
		{Label: "Users", Href: Prefix + "/users"}, {Label: "Groups", Href: Prefix + "/groups"},
		{Label: "Enrollment policy", Href: Prefix + "/policy"},
		{Label: "Profiles", Href: Prefix + "/profiles"}, {Label: "Declarative management", Href: Prefix + "/declarations"},
		{Label: "Reports", Href: Prefix + "/reports"},
		{Label: "Categories", Href: Prefix + "/categories"}, {Label: "Terms", Href: Prefix + "/terms"},
		{Label: "Push certificate", Href: Prefix + "/push"}, {Label: "Admins and tokens", Href: Prefix + "/admins"},
		{Label: "Webhooks", Href: Prefix + "/webhooks"}, {Label: "Audit log", Href: Prefix + "/audit"}, {Label: "Account", Href: Prefix + "/account"}}
	return items
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, actor *adminauth.Actor, p *webui.Page) {
	if actor != nil {
		p.Nav = c.nav(actor)
	}
	c.pages.Render(w, r, status, name, p)
}

// fail answers a server fault: logged, not shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.ErrorContext(r.Context(), "console", "path", r.URL.Path, "err", err)
	webui.Refuse(w, http.StatusInternalServerError, "internal error (logged)")
}

// apiError is a non-2xx answer of the admin API: its status and one-line
// reason, which the pages show as they are.
type apiError struct {
	Status int
	Reason string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Reason) }

// call runs one admin API request as actor and decodes its answer into out
// (when not nil); a non-2xx answer is an *apiError.
func (c *Console) call(r *http.Request, actor *adminauth.Actor, method, target string, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("console: encode request: %w", err)
		}
	}
	resp, err := c.callRaw(r, actor, method, target, raw)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := decodeJSON(resp, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	return nil
}

// decodeJSON reads an API answer into out (an empty answer leaves it).
func decodeJSON(resp []byte, out any) error {
	if len(resp) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("console: decode the API's answer: %w", err)
	}
	return nil
}

// callRaw runs one admin API request with a body as it is (a CSV import)
// and answers the body as it came (a CSV export); a non-2xx answer is an
// *apiError.
func (c *Console) callRaw(r *http.Request, actor *adminauth.Actor, method, target string, body []byte) ([]byte, error) {
	st, resp := c.cfg.API.Do(r.Context(), actor, r.RemoteAddr, method, target, body)
	if st < 200 || st > 299 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(resp, &e)
		if e.Error == "" {
			e.Error = http.StatusText(st)
		}
		return nil, &apiError{Status: st, Reason: e.Error}
	}
	return resp, nil
}

// show renders a page whose API read failed: the API's reason with its
// status (a 403 for a role too low, a 404 for an unknown device), or a
// logged 500 for anything else.
func (c *Console) show(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		c.render(w, r, ae.Status, "problem", actor, &webui.Page{Title: http.StatusText(ae.Status), Data: ae})
		return
	}
	c.fail(w, r, err)
}

// after redirects a form post: with the API's reason as an error flash
// when it failed, or msg.
func (c *Console) after(w http.ResponseWriter, r *http.Request, to string, err error, msg string) {
	var ae *apiError
	switch {
	case err == nil:
		c.site.Redirect(w, r, to, webui.Flash{Message: msg})
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		// The API refused (and audited it); the console answers 403 too.
		webui.Refuse(w, http.StatusForbidden, ae.Reason)
	case errors.As(err, &ae):
		c.site.Redirect(w, r, to, webui.Flash{Error: true, Message: ae.Reason})
	default:
		c.fail(w, r, err)
	}
}

func (c *Console) when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	case *time.Time:
		if v == nil || v.IsZero() {
			return "—"
		}
		return v.UTC().Format("2006-01-02 15:04 UTC")
	}
	return "—"
}

func (c *Console) ago(t any) string {
	var v time.Time
	switch x := t.(type) {
	case time.Time:
		v = x
	case *time.Time:
		if x != nil {
			v = *x
		}
	}
	if v.IsZero() {
		return "never"
	}
	d := c.cfg.Now().Sub(v)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// dict makes a map of key, value pairs, to hand a shared template more
// than one value.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("dict: an odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, errors.New("dict: a key that is not a string")
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// deref reads an optional inventory value for a template.
func deref(v any) any {
	switch p := v.(type) {
	case *bool:
		if p != nil {
			return *p
		}
		return false
	case *int:
		if p != nil {
			return *p
		}
		return 0
	}
	return v
}
