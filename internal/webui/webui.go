// Package webui is what every server-rendered page of Orchard shares (the
// admin console, the enrollment portal): server-side sessions behind a
// __Host- cookie, CSRF protection of every state change, security headers,
// request size limits, a base html/template layout with its stylesheet, and
// flash messages. A surface makes one Site with its own session kind and
// mount prefix and wraps its mux in Site.Handler.
package webui

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// Options configure a Site. Kind, Prefix and Store are required.
type Options struct {
	// Kind names the surface ("console", "portal"): it is the session kind
	// in the store and part of the cookie names, so surfaces never share a
	// session.
	Kind string
	// Name is shown in every page's header ("Orchard console").
	Name string
	// Prefix is where the surface is mounted ("/console"); its stylesheet
	// is served under Prefix+"/static/".
	Prefix string
	Store  storage.WebSessionStore
	// IdleTimeout ends a session not used for that long (default 30 min);
	// MaxAge ends it anyway that long after sign-in (default 12 h).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// MaxFormBytes bounds a url-encoded form post (default 64 KiB);
	// MaxUploadBytes a multipart one (default 1 MiB).
	MaxFormBytes   int64
	MaxUploadBytes int64
	// AllowFraming drops X-Frame-Options and frame-ancestors, for pages
	// that must render inside another app's web view (the portal, in
	// Setup Assistant).
	AllowFraming bool
	Now          func() time.Time
	Logger       *slog.Logger
}

// Site is one surface's shared web machinery.
type Site struct {
	o      Options
	cop    *http.CrossOriginProtection
	static *staticFiles
}

// New checks o and fills its defaults.
func New(o Options) (*Site, error) {
	switch {
	case o.Kind == "" || strings.ContainsAny(o.Kind, " ;,=\x00"):
		return nil, errors.New("webui: a site needs a simple kind")
	case o.Store == nil:
		return nil, errors.New("webui: a site needs a session store")
	case o.Prefix != "" && (!strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/")):
		return nil, errors.New("webui: prefix must start and not end with /")
	}
	if o.Name == "" {
		o.Name = "Orchard"
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 12 * time.Hour
	}
	if o.MaxFormBytes <= 0 {
		o.MaxFormBytes = 64 << 10
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := loadStatic()
	if err != nil {
		return nil, err
	}
	s := &Site{o: o, cop: http.NewCrossOriginProtection(), static: st}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Refuse(w, http.StatusForbidden, "forbidden: cross-origin form post refused")
	}))
	return s, nil
}

// Kind is the surface's session kind.
func (s *Site) Kind() string { return s.o.Kind }

// Handler wraps a surface's pages: security headers on every answer, the
// request's session loaded into its context, and on every state-changing
// method a body limit, the cross-origin check and the CSRF token check,
// before next sees the request.
func (s *Site) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.headers(w, r)
		if strings.HasPrefix(r.URL.Path, s.o.Prefix+"/static/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		r, err := s.load(w, r)
		if err != nil {
			s.o.Logger.Error("web session", "kind", s.o.Kind, "err", err)
			Refuse(w, http.StatusInternalServerError, "internal error: session unavailable")
			return
		}
		if !safeMethod(r.Method) {
			if err := s.cop.Check(r); err != nil {
				Refuse(w, http.StatusForbidden, "forbidden: cross-origin form post refused")
				return
			}
			if !s.limitAndParse(w, r) {
				return
			}
			if !s.csrfOK(r) {
				Refuse(w, http.StatusForbidden, "forbidden: missing or wrong CSRF token (reload the page and try again)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Refuse answers a plain one-line reason, for the browser and for tests.
func Refuse(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(reason + "\n"))
}

// limitAndParse bounds and parses the form so the token can be read; a
// body over the limit answers 413, a malformed one 400.
func (s *Site) limitAndParse(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	multipart := strings.HasPrefix(ct, "multipart/form-data")
	limit := s.o.MaxFormBytes
	if multipart {
		limit = s.o.MaxUploadBytes
	}
	if r.ContentLength > limit {
		Refuse(w, http.StatusRequestEntityTooLarge, "request too large: the limit is "+byteSize(limit))
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	var err error
	if multipart {
		// Everything stays in memory: the limit is small.
		err = r.ParseMultipartForm(limit)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			Refuse(w, http.StatusRequestEntityTooLarge, "request too large: the limit is "+byteSize(limit))
		} else {
			Refuse(w, http.StatusBadRequest, "bad request: the form could not be read")
		}
		return false
	}
	return true
}

func byteSize(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// headers sets the security headers every answer carries. The policy
// allows no inline script or style: the one stylesheet (and any script a
// surface adds) comes from 'self'.
func (s *Site) headers(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	csp := "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; form-action 'self'; base-uri 'none'"
	if !s.o.AllowFraming {
		csp += "; frame-ancestors 'none'"
		h.Set("X-Frame-Options", "DENY")
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}
