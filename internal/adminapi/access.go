package adminapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/storage"
)

// access says what a request on a route needs; most routes need the same
// for every request, a few look at the request (which device action).
type access func(*http.Request) adminauth.Need

func need(n adminauth.Need) access { return func(*http.Request) adminauth.Need { return n } }

var (
	read    = need(adminauth.Read)
	act     = need(adminauth.Action)
	destroy = need(adminauth.Destructive)
	policy  = need(adminauth.Policy)
	manage  = need(adminauth.ManageAdmins)
)

// actionNeeds: the device actions helpdesk may take are the listed
// non-destructive ones; restart and shutdown interrupt the user and rename
// changes what the device is, so they take more. An unknown action takes
// the most a device action can (the handler then refuses it).
var actionNeeds = map[string]adminauth.Need{
	"sync": adminauth.Action, "refresh": adminauth.Action, "lock": adminauth.Action,
	"clear-passcode": adminauth.Action, "lost-mode-enable": adminauth.Action,
	"lost-mode-disable": adminauth.Action, "lost-mode-location": adminauth.Action,
	"restart": adminauth.Destructive, "shutdown": adminauth.Destructive,
	"rename": adminauth.Policy, "erase": adminauth.Destructive, "retire": adminauth.Destructive,
}

func deviceAction(r *http.Request) adminauth.Need {
	if n, ok := actionNeeds[r.PathValue("action")]; ok {
		return n
	}
	return adminauth.Destructive
}

// readOrReveal: a device record is a read, unless it asks for the
// device's secrets (push token, push magic, unlock token).
func readOrReveal(r *http.Request) adminauth.Need {
	if r.URL.Query().Has("reveal") {
		return adminauth.Policy
	}
	return adminauth.Read
}

// TokenPrefix starts every per-admin API token, so a leaked one is easy to
// recognise in a scanner.
const TokenPrefix = "orch_"

// authenticate finds the request's actor: the bootstrap key (owner), or an
// admin's API token, bounded by the admin's current role. nil: refused.
func (a *API) authenticate(ctx context.Context, r *http.Request) (*adminauth.Actor, error) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" || len(got) > 256 {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], a.key.Load()[:]) == 1 {
		return &adminauth.Actor{Bootstrap: true, Role: adminauth.Owner}, nil
	}
	if a.admins == nil || !strings.HasPrefix(got, TokenPrefix) {
		return nil, nil
	}
	tok, err := a.admins.APITokenByHash(ctx, sum[:])
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	acct, err := a.admins.GetAdmin(ctx, tok.Admin)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if acct.Disabled {
		return nil, nil
	}
	return &adminauth.Actor{Admin: acct.Username, TokenID: tok.ID,
		Role: adminauth.Lower(adminauth.Role(tok.Role), adminauth.Role(acct.Role))}, nil
}

// guard wraps a route's handler with the one role check and the audit
// record. Every mutation (any method but GET and HEAD), every read that
// needs more than Read (secrets, the backup) and every refusal is audited.
// A mutation's answer is held until its audit entry is committed, so an
// answered mutation is always in the log; a read's entry is written after
// it is answered (a backup is streamed).
func (a *API) guard(rt route, h http.HandlerFunc) http.HandlerFunc {
	action := rt.method + " " + rt.path
	params := pathParams(rt.path)
	return func(w http.ResponseWriter, r *http.Request) {
		actor := adminauth.ActorFrom(r.Context())
		n := rt.access(r)
		mutation := r.Method != http.MethodGet && r.Method != http.MethodHead
		entry := func(status int, result string) *storage.AuditEntry {
			return &storage.AuditEntry{Time: time.Now().UTC(), Actor: actor.String(), Source: source(r), Action: action,
				Target: target(r, params), Status: status, Result: result}
		}
		if actor == nil || !actor.Role.Allows(n) {
			role := "none"
			if actor != nil {
				role = string(actor.Role)
			}
			a.audit(r, entry(http.StatusForbidden, "denied"))
			apijson.WriteError(w, http.StatusForbidden, "forbidden: role "+role+" cannot do this (it needs "+n.String()+" access)")
			return
		}
		if !mutation && n == adminauth.Read {
			h(w, r)
			return
		}
		if !mutation {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			h(sw, r)
			a.audit(r, entry(sw.status, result(sw.status, nil)))
			return
		}
		bw := &bufferedWriter{header: w.Header(), status: http.StatusOK}
		h(bw, r)
		a.audit(r, entry(bw.status, result(bw.status, bw.body.Bytes())))
		w.WriteHeader(bw.status)
		w.Write(bw.body.Bytes())
	}
}

// audit commits e; a failure is logged loudly (the change it records has
// already been made and is answered as it happened).
func (a *API) audit(r *http.Request, e *storage.AuditEntry) {
	if a.admins == nil {
		return
	}
	// The entry outlives a client that hangs up.
	ctx := context.WithoutCancel(r.Context())
	if err := a.admins.AppendAudit(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "audit entry not stored", "action", e.Action, "actor", e.Actor, "status", e.Status, "err", err)
	}
}

func result(status int, body []byte) string {
	switch {
	case status < 400:
		return "ok"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "denied"
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if len(e.Error) > 200 {
			e.Error = e.Error[:200]
		}
		return "failed: " + e.Error
	}
	return "failed"
}

// pathParams lists a pattern's wildcard names in order.
func pathParams(pattern string) []string {
	var out []string
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(seg, "{"), "}"))
		}
	}
	return out
}

// target is the route's path values ("id=... action=lock"): IDs,
// usernames and serials, never a body or a query string.
func target(r *http.Request, params []string) string {
	parts := make([]string, 0, len(params))
	for _, p := range params {
		v := r.PathValue(p)
		if len(v) > 128 {
			v = v[:128]
		}
		parts = append(parts, p+"="+v)
	}
	return strings.Join(parts, " ")
}

func source(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bufferedWriter holds a mutation's answer until it is audited; mutation
// answers are small JSON.
type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
