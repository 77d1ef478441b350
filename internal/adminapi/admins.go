package adminapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/storage"
)

// AdminView is an admin account as the API shows it: never the hash.
type AdminView struct {
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	TwoFactor bool      `json:"two_factor"` // the console's TOTP second factor is on
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func adminView(a *storage.AdminAccount) AdminView {
	return AdminView{Username: a.Username, Role: a.Role, Disabled: a.Disabled, TwoFactor: len(a.TOTPSealed) > 0, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// TokenView is a token as listed: never the secret or its hash.
type TokenView struct {
	ID        string    `json:"id"`
	Admin     string    `json:"admin"`
	Name      string    `json:"name,omitempty"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Token is the secret, in the creation answer only.
	Token string `json:"token,omitempty"`
}

func tokenView(t *storage.APIToken) TokenView {
	return TokenView{ID: t.ID, Admin: t.Admin, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt}
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

const maxAdminBody = 16 << 10

func (a *API) listAdmins(w http.ResponseWriter, r *http.Request) {
	all, err := a.admins.ListAdmins(r.Context())
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := make([]AdminView, 0, len(all))
	for i := range all {
		out = append(out, adminView(&all[i]))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"admins": out})
}

func (a *API) createAdmin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Role     string `json:"role"`
	}
	if err := apijson.Decode(w, r, maxAdminBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if !usernameRE.MatchString(req.Username) {
		apijson.WriteError(w, http.StatusBadRequest, "username must be 1-64 of a-z 0-9 . _ @ - (lower case)")
		return
	}
	role, err := adminauth.ParseRole(req.Role)
	if err != nil {
		apijson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := adminauth.CheckPasswordPolicy(req.Password); err != nil {
		apijson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	hash, err := adminauth.HashPassword(req.Password)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	now := time.Now().UTC()
	acct := &storage.AdminAccount{Username: req.Username, Role: string(role), PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	if err := a.admins.CreateAdmin(r.Context(), acct); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, adminView(acct))
}

func (a *API) showAdmin(w http.ResponseWriter, r *http.Request) {
	acct, err := a.admins.GetAdmin(r.Context(), r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, adminView(acct))
}

func (a *API) updateAdmin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password *string `json:"password"`
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
	}
	if err := apijson.Decode(w, r, maxAdminBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	acct, err := a.admins.GetAdmin(r.Context(), r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if req.Role != nil {
		role, err := adminauth.ParseRole(*req.Role)
		if err != nil {
			apijson.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		acct.Role = string(role)
	}
	if req.Password != nil {
		if err := adminauth.CheckPasswordPolicy(*req.Password); err != nil {
			apijson.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if acct.PasswordHash, err = adminauth.HashPassword(*req.Password); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	if req.Disabled != nil {
		acct.Disabled = *req.Disabled
	}
	acct.UpdatedAt = time.Now().UTC()
	if err := a.admins.UpdateAdmin(r.Context(), acct); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if req.Password != nil || acct.Disabled {
		if err := a.endConsoleSessions(r.Context(), acct.Username); err != nil {
			apijson.Fail(w, r, a.log, err)
			return
		}
	}
	apijson.WriteJSON(w, http.StatusOK, adminView(acct))
}

// ConsoleSessionKind is the kind of the console's web sessions.
const ConsoleSessionKind = "console"

// endConsoleSessions signs an admin out of every console session: whoever
// holds one signed in with what was just changed or revoked.
func (a *API) endConsoleSessions(ctx context.Context, username string) error {
	if a.sessions == nil {
		return nil
	}
	if _, err := a.sessions.DeleteWebSessionsOf(ctx, ConsoleSessionKind, username); err != nil {
		return fmt.Errorf("end the console sessions of %s: %w", username, err)
	}
	return nil
}

// resetTwoFactor turns an admin's TOTP second factor off (a lost
// authenticator): the next console sign-in takes the password alone, and
// the admin can set up a new one. It ends the admin's console sessions,
// which may be a thief's. It is the owner's, and audited like every change.
func (a *API) resetTwoFactor(w http.ResponseWriter, r *http.Request) {
	acct, err := a.admins.GetAdmin(r.Context(), r.PathValue("username"))
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	acct.TOTPSealed, acct.TOTPUsedStep, acct.UpdatedAt = nil, 0, time.Now().UTC()
	if err := a.admins.UpdateAdmin(r.Context(), acct); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if err := a.endConsoleSessions(r.Context(), acct.Username); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, adminView(acct))
}

func (a *API) deleteAdmin(w http.ResponseWriter, r *http.Request) {
	if err := a.admins.DeleteAdmin(r.Context(), r.PathValue("username")); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, admin string) {
	toks, err := a.admins.ListAPITokens(r.Context(), admin)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	out := make([]TokenView, 0, len(toks))
	for i := range toks {
		out = append(out, tokenView(&toks[i]))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// createToken makes a token for admin with a role no higher than both the
// admin's and the caller's, and answers its secret once.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, admin string) {
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := apijson.Decode(w, r, maxAdminBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if len(req.Name) > 128 {
		apijson.WriteError(w, http.StatusBadRequest, "name is longer than 128 bytes")
		return
	}
	acct, err := a.admins.GetAdmin(r.Context(), admin)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	role := adminauth.Role(acct.Role)
	if req.Role != "" {
		if role, err = adminauth.ParseRole(req.Role); err != nil {
			apijson.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	caller := adminauth.ActorFrom(r.Context())
	if !role.AtMost(adminauth.Role(acct.Role)) || !role.AtMost(caller.Role) {
		apijson.WriteError(w, http.StatusBadRequest, fmt.Sprintf("role %s is higher than the admin's (%s) or yours (%s)", role, acct.Role, caller.Role))
		return
	}
	secret := make([]byte, 32)
	idb := make([]byte, 8)
	rand.Read(secret)
	rand.Read(idb)
	tokStr := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(tokStr))
	tok := &storage.APIToken{ID: hex.EncodeToString(idb), Admin: acct.Username, Name: req.Name, Role: string(role),
		Hash: sum[:], CreatedAt: time.Now().UTC()}
	if err := a.admins.CreateAPIToken(r.Context(), tok); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	v := tokenView(tok)
	v.Token = tokStr
	w.Header().Set("Cache-Control", "no-store")
	apijson.WriteJSON(w, http.StatusCreated, v)
}

// revokeToken deletes token id if it belongs to admin (404 otherwise, so
// nobody learns another admin's token IDs).
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, admin string) {
	id := r.PathValue("id")
	toks, err := a.admins.ListAPITokens(r.Context(), admin)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	found := false
	for _, t := range toks {
		found = found || t.ID == id
	}
	if !found {
		apijson.WriteError(w, http.StatusNotFound, "no such API token")
		return
	}
	if err := a.admins.DeleteAPIToken(r.Context(), id); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listAdminTokens(w http.ResponseWriter, r *http.Request) {
	a.listTokens(w, r, r.PathValue("username"))
}

func (a *API) createAdminToken(w http.ResponseWriter, r *http.Request) {
	a.createToken(w, r, r.PathValue("username"))
}

func (a *API) revokeAdminToken(w http.ResponseWriter, r *http.Request) {
	a.revokeToken(w, r, r.PathValue("username"))
}

// errNoAccount: the bootstrap key has no account, so no tokens of its own.
var errNoAccount = apijson.Errorf(http.StatusBadRequest, "the bootstrap API key has no admin account: use /v1/admins/{username}/tokens")

func (a *API) listOwnTokens(w http.ResponseWriter, r *http.Request) {
	actor := adminauth.ActorFrom(r.Context())
	if actor.Bootstrap {
		a.listTokens(w, r, "") // the bootstrap owner sees every token
		return
	}
	a.listTokens(w, r, actor.Admin)
}

func (a *API) createOwnToken(w http.ResponseWriter, r *http.Request) {
	actor := adminauth.ActorFrom(r.Context())
	if actor.Bootstrap {
		apijson.Fail(w, r, a.log, errNoAccount)
		return
	}
	a.createToken(w, r, actor.Admin)
}

func (a *API) revokeOwnToken(w http.ResponseWriter, r *http.Request) {
	actor := adminauth.ActorFrom(r.Context())
	if actor.Bootstrap {
		apijson.Fail(w, r, a.log, errNoAccount)
		return
	}
	a.revokeToken(w, r, actor.Admin)
}

// auditQuery reads the audit filters and paging from the query string.
func auditQuery(r *http.Request, maxLimit int) (storage.AuditFilter, string, int, error) {
	q := r.URL.Query()
	f := storage.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	if err := apijson.TimeRange(q, &f.Since, &f.Until); err != nil {
		return f, "", 0, err
	}
	limit := min(100, maxLimit)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return f, "", 0, apijson.Bad("limit must be 1..%d", maxLimit)
		}
		limit = n
	}
	return f, q.Get("after"), limit, nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	f, after, limit, err := auditQuery(r, maxPage)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	entries, err := a.admins.ListAudit(r.Context(), f, after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	body := map[string]any{"entries": entries}
	if entries == nil {
		body["entries"] = []storage.AuditEntry{}
	}
	if len(entries) == limit {
		body["next"] = entries[len(entries)-1].ID
	}
	apijson.WriteJSON(w, http.StatusOK, body)
}

// maxExport bounds one CSV export; page on with after= for more.
const maxExport = 100_000

func (a *API) exportAudit(w http.ResponseWriter, r *http.Request) {
	f, after, limit, err := auditQuery(r, maxExport)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if !r.URL.Query().Has("limit") {
		limit = maxExport
	}
	entries, err := a.admins.ListAudit(r.Context(), f, after, limit)
	if err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-audit.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "time", "actor", "source", "action", "target", "status", "result"})
	for _, e := range entries {
		cw.Write([]string{e.ID, e.Time.Format(time.RFC3339Nano), csvSafe(e.Actor), e.Source, e.Action, csvSafe(e.Target),
			strconv.Itoa(e.Status), csvSafe(e.Result)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		a.log.WarnContext(r.Context(), "audit export cut short", "err", err)
	}
}

// csvSafe keeps a spreadsheet from running a cell as a formula: targets
// and reasons come from callers.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
