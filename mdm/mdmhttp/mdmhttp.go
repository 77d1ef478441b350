// Package mdmhttp adapts the MDM service to HTTP: the check-in and connect
// handlers devices talk to, and the middleware that limits bodies, checks
// content types and establishes the device identity. Status codes are
// chosen here and only here.
package mdmhttp

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/mdm/service"
)

// Body limits: check-ins are small; command results can be large
// (InstalledApplicationList on a Mac with many apps).
const (
	MaxCheckinBody = 1 << 20
	MaxReportBody  = 20 << 20
)

// Content types Apple devices send.
const (
	ContentTypeCheckin = "application/x-apple-aspen-mdm-checkin"
	ContentTypeConnect = "application/x-apple-aspen-mdm"
)

// Observer receives one call per device request, for metrics. Outcome is a
// short label: ok, bad_request, forbidden, gone, conflict, error...
type Observer interface {
	Checkin(messageType, outcome string)
	Connect(status, outcome string)
	IdentityFailure(reason string)
}

// Service is the MDM core the handlers hand messages to (mdm/service).
type Service interface {
	Checkin(ctx context.Context, id *identity.Identity, c *mdm.Checkin) ([]byte, error)
	Report(ctx context.Context, id *identity.Identity, r *mdm.Report) ([]byte, error)
	ReportUnreadable(ctx context.Context, id *identity.Identity)
	// AuthorizeReport refuses, before the body is read, a certificate that
	// is not bound to an enrollment.
	AuthorizeReport(ctx context.Context, id *identity.Identity) error
}

type nopObserver struct{}

func (nopObserver) Checkin(string, string) {}
func (nopObserver) Connect(string, string) {}
func (nopObserver) IdentityFailure(string) {}

// Handler serves /mdm/checkin and /mdm/connect.
type Handler struct {
	svc      Service
	verifier *identity.Verifier
	log      *slog.Logger
	obs      Observer
	bodies   *budget
	bodyWait time.Duration
}

// Option configures a Handler.
type Option func(*Handler)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithObserver sets the metrics observer.
func WithObserver(o Observer) Option { return func(h *Handler) { h.obs = o } }

// WithBodyBudget bounds the bytes of large bodies (over 64 KiB) read and
// handled at once (DefaultBodyBudget); a request waits at most wait for
// its share, then gets 503.
func WithBodyBudget(bytes int64, wait time.Duration) Option {
	return func(h *Handler) { h.bodies, h.bodyWait = newBudget(bytes), wait }
}

// New builds the device-facing handler.
func New(svc Service, v *identity.Verifier, opts ...Option) (*Handler, error) {
	if svc == nil || v == nil {
		return nil, errors.New("mdmhttp: service and verifier are required")
	}
	h := &Handler{svc: svc, verifier: v, log: slog.Default(), obs: nopObserver{},
		bodies: newBudget(DefaultBodyBudget), bodyWait: 30 * time.Second}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// Register mounts the device endpoints on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	// An unbound certificate may check in (to Authenticate), but its
	// reports are refused before their bodies are read.
	checkin := h.device(MaxCheckinBody, []string{ContentTypeCheckin}, nil, h.checkin)
	mux.Handle("PUT /mdm/checkin", checkin)
	// A profile without CheckInURL (one made by another MDM, say) sends
	// check-ins to the ServerURL: by their content type they take the
	// check-in path. Some clients (mdmb, NanoMDM's) send connects without
	// a content type.
	connect := h.device(MaxReportBody, []string{ContentTypeConnect, ""}, h.svc.AuthorizeReport, h.connect)
	// With the check-in content type the body is read on the check-in
	// terms (1 MiB, no binding needed before it, for an Authenticate); a
	// report sent that way still gets its binding checked before it is
	// decoded.
	checkinOrReport := h.device(MaxCheckinBody, []string{ContentTypeCheckin}, nil, h.checkinOrReport)
	mux.Handle("PUT /mdm/connect", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentTypeOK(r.Header.Get("Content-Type"), []string{ContentTypeCheckin}) {
			checkinOrReport.ServeHTTP(w, r)
			return
		}
		connect.ServeHTTP(w, r)
	}))
}

// checkinOrReport takes a message that came to the ServerURL with the
// check-in content type: a check-in when it has a MessageType, else a
// report, which must come from a bound certificate like any other.
func (h *Handler) checkinOrReport(w http.ResponseWriter, r *http.Request, body []byte) {
	if c, err := mdm.DecodeCheckin(body); err == nil {
		h.serveCheckin(w, r, c)
		return
	}
	if err := h.svc.AuthorizeReport(r.Context(), IdentityFrom(r.Context())); err != nil {
		h.obs.Connect("unknown", h.refuse(w, r, err))
		return
	}
	h.connect(w, r, body)
}

type ctxKey int

const identityKey ctxKey = 0

// IdentityFrom returns the device identity the middleware established.
func IdentityFrom(ctx context.Context) *identity.Identity {
	id, _ := ctx.Value(identityKey).(*identity.Identity)
	return id
}

// device is the middleware chain for device requests: content type, the
// certificate (and, with authorize, its binding) from the TLS handshake or
// the Mdm-Signature header, the body under the size limit and the body
// budget, the signature over the body, then the handler with the body.
// Nothing of the body is read for a request whose identity is refused.
func (h *Handler) device(limit int64, types []string, authorize func(context.Context, *identity.Identity) error, next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !contentTypeOK(r.Header.Get("Content-Type"), types) {
			h.fail(w, r, http.StatusUnsupportedMediaType, "content type must be "+types[0])
			return
		}
		id, sig, err := h.identify(r)
		if err != nil {
			h.identityFailed(w, r, err)
			return
		}
		if authorize != nil {
			if err := authorize(r.Context(), id); err != nil {
				h.obs.Connect("unknown", h.refuse(w, r, err)) // only reports are authorized early
				return
			}
		}
		body, release, err := h.readBody(w, r, limit)
		defer release()
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			h.fail(w, r, http.StatusRequestEntityTooLarge, "body is over the limit")
			return
		case errors.Is(err, errBusy):
			w.Header().Set("Retry-After", "30")
			h.fail(w, r, http.StatusServiceUnavailable, err.Error())
			return
		case err != nil:
			h.fail(w, r, http.StatusBadRequest, "could not read body")
			return
		}
		if sig != nil {
			if id, err = sig.Verify(body); err != nil {
				h.identityFailed(w, r, err)
				return
			}
		}
		next(w, r.WithContext(context.WithValue(r.Context(), identityKey, id)), body)
	})
}

// contentTypeOK: "" in allowed admits a request without Content-Type.
func contentTypeOK(header string, allowed []string) bool {
	if header == "" {
		return slices.Contains(allowed, "")
	}
	for _, a := range allowed {
		if strings.EqualFold(header, a) {
			return true // the usual header, without parameters: nothing to parse
		}
	}
	if !strings.Contains(header, ";") {
		// Without parameters the media type is the header, trimmed (no
		// parse, no allocation: every connect asks first whether it is
		// a check-in).
		header = strings.TrimSpace(header)
		for _, a := range allowed {
			if a != "" && strings.EqualFold(header, a) {
				return true
			}
		}
		return false
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(mt, a) {
			return true
		}
	}
	return false
}

// identify prefers a verified TLS client certificate, else the signer of
// Mdm-Signature (for servers behind a TLS-terminating proxy), whose
// signature over the body is still to be checked.
func (h *Handler) identify(r *http.Request) (*identity.Identity, *identity.Signature, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := h.verifier.VerifyCert(r.Context(), r.TLS.PeerCertificates[0])
		return id, nil, err
	}
	sig, err := h.verifier.VerifySigner(r.Context(), r.Header.Get("Mdm-Signature"))
	if err != nil {
		return nil, nil, err
	}
	return sig.Signer(), sig, nil
}

func (h *Handler) identityFailed(w http.ResponseWriter, r *http.Request, err error) {
	var ie *identity.Error
	if !errors.As(err, &ie) {
		h.serverError(w, r, err)
		return
	}
	h.obs.IdentityFailure(ie.Reason)
	h.log.Warn("device identity refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", ie.Reason)
	// The detail can hold parser output (ASN.1, digests) over several
	// lines: useful to debug, not to the client.
	h.log.Debug("device identity refused", "path", r.URL.Path, "reason", ie.Reason, "detail", ie.Detail)
	// Never 401 and never an ErrorUnrecognizedDevice body: both can make
	// a device unenroll itself.
	http.Error(w, identity.ErrIdentity.Error()+": "+ie.Reason, http.StatusForbidden)
}

func (h *Handler) checkin(w http.ResponseWriter, r *http.Request, body []byte) {
	c, err := mdm.DecodeCheckin(body)
	if err != nil {
		h.obs.Checkin("unknown", "bad_request")
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	h.serveCheckin(w, r, c)
}

// serveCheckin handles a decoded check-in, so that paths which decoded
// the body to tell a check-in from a report do not decode it again.
func (h *Handler) serveCheckin(w http.ResponseWriter, r *http.Request, c *mdm.Checkin) {
	c.Params = urlParams(r)
	resp, err := h.svc.Checkin(r.Context(), IdentityFrom(r.Context()), c)
	ctype := "application/xml"
	if c.Type == mdm.TypeDeclarativeManagement {
		ctype = "application/json" // the declarative protocol speaks JSON
	}
	outcome := h.respond(w, r, resp, err, ctype)
	h.obs.Checkin(string(c.Type), outcome)
	if h.log.Enabled(r.Context(), slog.LevelDebug) { // the arguments cost allocations on every request
		h.log.Debug("check-in", "type", c.Type, "channel", c.Channel.ID(), "outcome", outcome)
	}
}

func (h *Handler) connect(w http.ResponseWriter, r *http.Request, body []byte) {
	rep, err := mdm.DecodeReport(body)
	if err != nil {
		// A check-in sent to the ServerURL with the connect content type
		// (or none) has a MessageType and no Status. Only tried once the
		// report fails, so reports pay nothing for it.
		if c, cerr := mdm.DecodeCheckin(body); cerr == nil {
			h.serveCheckin(w, r, c)
			return
		}
		h.svc.ReportUnreadable(r.Context(), IdentityFrom(r.Context()))
		h.obs.Connect("unknown", "bad_request")
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	rep.Params = urlParams(r)
	resp, err := h.svc.Report(r.Context(), IdentityFrom(r.Context()), rep)
	outcome := h.respond(w, r, resp, err, "application/xml")
	h.obs.Connect(string(rep.Status), outcome)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.Debug("connect", "status", rep.Status, "channel", rep.Channel.ID(), "command", rep.CommandUUID, "outcome", outcome)
	}
}

// respond writes the service's answer or maps its error; it returns the outcome label.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, body []byte, err error, ctype string) string {
	if err == nil {
		if len(body) > 0 {
			w.Header().Set("Content-Type", ctype)
		}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		return "ok"
	}
	return h.refuse(w, r, err)
}

// refuse maps a service error to its status; it returns the outcome label.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) string {
	for _, m := range statusMap {
		if errors.Is(err, m.err) {
			h.fail(w, r, m.code, err.Error())
			return m.label
		}
	}
	h.serverError(w, r, err)
	return "error"
}

var statusMap = []struct {
	err   error
	code  int
	label string
}{
	{service.ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{service.ErrNotSupported, http.StatusBadRequest, "not_supported"},
	{service.ErrForbidden, http.StatusForbidden, "forbidden"},
	{service.ErrConflict, http.StatusConflict, "conflict"},
	{service.ErrGone, http.StatusGone, "gone"},
	{service.ErrNotFound, http.StatusNotFound, "not_found"},
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code int, reason string) {
	if code == http.StatusForbidden {
		h.log.Warn("device request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason)
	} else {
		h.log.Debug("device request rejected", "path", r.URL.Path, "code", code, "reason", reason)
	}
	http.Error(w, firstLine(reason), code)
}

// serverError answers 500 so the device retries later; the cause is logged.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("device request failed", "path", r.URL.Path, "err", err)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// maxURLParams bounds the query parameters passed on with a message.
const maxURLParams = 32

// urlParams is the first value of each query parameter of the request
// (nil without any): webhook consumers may key enrollments on them.
func urlParams(r *http.Request) map[string]string {
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	out := make(map[string]string, min(len(q), maxURLParams))
	for k, v := range q {
		if len(out) == maxURLParams {
			break
		}
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
