package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// pendingFor bounds how long a password stays good for its second step.
const pendingFor = 5 * time.Minute

func addrOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

type signInData struct {
	Username string
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if webui.Subject(r) != "" {
		c.site.Redirect(w, r, Prefix+"/", webui.Flash{})
		return
	}
	c.render(w, r, http.StatusOK, "signin", nil, &webui.Page{Title: "Sign in", Data: signInData{}})
}

// refuseSignIn shows the form again with one reason that tells nothing
// about which part was wrong.
func (c *Console) refuseSignIn(w http.ResponseWriter, r *http.Request, status int, username, msg string) {
	c.render(w, r, status, "signin", nil, &webui.Page{Title: "Sign in", Data: signInData{Username: username},
		Errors: webui.FormErrors{"": msg}})
}

// limited checks both limiters before any password is looked at.
func (c *Console) limited(w http.ResponseWriter, r *http.Request, name string) bool {
	addr := addrOf(r)
	wait, ok := c.byAddr.Check(addr)
	if ok {
		wait, ok = c.byUser.Check(name)
	}
	if ok {
		return false
	}
	c.log.WarnContext(r.Context(), "console sign-in refused", "username", name, "addr", addr, "reason", "rate limited")
	w.Header().Set("Retry-After", fmt.Sprint(int(wait.Round(time.Second)/time.Second)+1))
	c.refuseSignIn(w, r, http.StatusTooManyRequests, name,
		fmt.Sprintf("Too many failed sign-ins. Try again in %s.", wait.Round(time.Second)+time.Second))
	return true
}

// failed charges a failure to the username and the address and logs it,
// never with the password or the code.
func (c *Console) failed(r *http.Request, name, reason string) {
	addr := addrOf(r)
	c.byAddr.Spend(addr)
	c.byUser.Spend(name)
	c.log.WarnContext(r.Context(), "console sign-in failed", "username", name, "addr", addr, "reason", reason)
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	pw := r.PostFormValue("password")
	if len(name) > 64 {
		name = name[:64]
	}
	if c.limited(w, r, name) {
		return
	}
	const wrong = "Wrong username or password."
	var acct *storage.AdminAccount
	var err error
	if name != "" && len(pw) <= adminauth.MaxPasswordLen {
		acct, err = c.cfg.Admins.GetAdmin(r.Context(), name)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			c.fail(w, r, err)
			return
		}
	}
	if acct == nil {
		// Spend the time of a real check, so timing reveals no usernames.
		_ = adminauth.VerifyPassword(c.dummy(), pw)
		c.failed(r, name, "unknown admin")
		c.refuseSignIn(w, r, http.StatusUnauthorized, name, wrong)
		return
	}
	if err := adminauth.VerifyPassword(acct.PasswordHash, pw); err != nil {
		if !errors.Is(err, adminauth.ErrBadPassword) {
			c.fail(w, r, err)
			return
		}
		c.failed(r, name, "wrong password")
		c.refuseSignIn(w, r, http.StatusUnauthorized, name, wrong)
		return
	}
	if acct.Disabled {
		c.failed(r, name, "account disabled")
		c.refuseSignIn(w, r, http.StatusUnauthorized, name, wrong)
		return
	}
	if len(acct.TOTPSealed) > 0 {
		// The password was right; the session is not signed in until the
		// code is.
		if _, err := c.site.SignIn(w, r, "", map[string]string{"pending": acct.Username}); err != nil {
			c.fail(w, r, err)
			return
		}
		c.site.Redirect(w, r, Prefix+"/sign-in/code", webui.Flash{})
		return
	}
	c.complete(w, r, acct.Username)
}

func (c *Console) complete(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := c.site.SignIn(w, r, name, nil); err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.InfoContext(r.Context(), "console sign-in", "username", name, "addr", addrOf(r))
	c.site.Redirect(w, r, Prefix+"/", webui.Flash{Message: "Signed in as " + name + "."})
}

// pending is the username whose password was right and whose code is
// awaited, or "".
func (c *Console) pending(r *http.Request) string {
	ws := webui.Session(r)
	if ws == nil || ws.Subject != "" || c.cfg.Now().Sub(ws.CreatedAt) > pendingFor {
		return ""
	}
	return ws.Data["pending"]
}

func (c *Console) codePage(w http.ResponseWriter, r *http.Request) {
	if c.pending(r) == "" {
		c.site.Redirect(w, r, Prefix+"/sign-in", webui.Flash{})
		return
	}
	c.render(w, r, http.StatusOK, "code", nil, &webui.Page{Title: "Sign-in code"})
}

func (c *Console) code(w http.ResponseWriter, r *http.Request) {
	name := c.pending(r)
	if name == "" {
		c.site.Redirect(w, r, Prefix+"/sign-in", webui.Flash{Error: true, Message: "Sign in again."})
		return
	}
	if c.limited(w, r, name) {
		return
	}
	acct, err := c.cfg.Admins.GetAdmin(r.Context(), name)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	step, ok := c.checkCode(acct, strings.TrimSpace(r.PostFormValue("code")))
	if !ok || acct.Disabled {
		c.failed(r, name, "wrong or reused code")
		c.render(w, r, http.StatusUnauthorized, "code", nil, &webui.Page{Title: "Sign-in code",
			Errors: webui.FormErrors{"code": "Wrong code, or one already used. Enter the current code."}})
		return
	}
	acct.TOTPUsedStep = step
	if err := c.cfg.Admins.UpdateAdmin(r.Context(), acct); err != nil {
		c.fail(w, r, err)
		return
	}
	c.complete(w, r, name)
}

func totpLabel(username string) string { return "admin-totp/" + username }

// checkCode accepts the code of now or one step either side, and only of a
// step after the last one used; it answers the step.
func (c *Console) checkCode(acct *storage.AdminAccount, code string) (int64, bool) {
	secret, err := c.cfg.Box.Open(acct.TOTPSealed, totpLabel(acct.Username))
	if err != nil || len(code) != 6 {
		return 0, false
	}
	return matchStep(secret, code, c.cfg.Now(), acct.TOTPUsedStep)
}

func matchStep(secret []byte, code string, now time.Time, usedStep int64) (int64, bool) {
	step := now.Unix() / 30
	var found int64
	for _, s := range []int64{step - 1, step, step + 1} {
		want := adminauth.TOTPCode(secret, time.Unix(s*30, 0), 6)
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && s > usedStep {
			found = s
		}
	}
	return found, found != 0
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if err := c.site.SignOut(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	c.site.Redirect(w, r, Prefix+"/sign-in", webui.Flash{Message: "Signed out."})
}

// Account: the second factor.

type accountData struct {
	Username string
	Role     adminauth.Role
	HasTOTP  bool
	// Enrolling: shown once, while the new secret waits for its first code.
	URI, Secret string
}

func (c *Console) account(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	acct, err := c.cfg.Admins.GetAdmin(r.Context(), actor.Admin)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "account", actor, &webui.Page{Title: "Account",
		Data: accountData{Username: acct.Username, Role: actor.Role, HasTOTP: len(acct.TOTPSealed) > 0}})
}

// totpStart makes a new secret, keeps it sealed in the session until a
// code confirms it, and shows its otpauth URI this once.
func (c *Console) totpStart(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	secret := make([]byte, 20)
	_, _ = rand.Read(secret)
	ws := webui.Session(r)
	if ws.Data == nil {
		ws.Data = map[string]string{}
	}
	ws.Data["totp_pending"] = base64.StdEncoding.EncodeToString(c.cfg.Box.Seal(secret, totpLabel(actor.Admin)))
	if err := c.site.Save(r.Context(), ws); err != nil {
		c.fail(w, r, err)
		return
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	uri := "otpauth://totp/" + url.PathEscape("Orchard:"+actor.Admin) + "?" + url.Values{
		"secret": {b32}, "issuer": {"Orchard"}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}.Encode()
	c.render(w, r, http.StatusOK, "account", actor, &webui.Page{Title: "Account",
		Data: accountData{Username: actor.Admin, Role: actor.Role, URI: uri, Secret: b32}})
}

func (c *Console) totpConfirm(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	ws := webui.Session(r)
	sealed, err := base64.StdEncoding.DecodeString(ws.Data["totp_pending"])
	if err != nil || len(sealed) == 0 {
		c.site.Redirect(w, r, Prefix+"/account", webui.Flash{Error: true, Message: "Start the enrolment again."})
		return
	}
	secret, err := c.cfg.Box.Open(sealed, totpLabel(actor.Admin))
	if err != nil {
		c.site.Redirect(w, r, Prefix+"/account", webui.Flash{Error: true, Message: "Start the enrolment again."})
		return
	}
	step, ok := matchStep(secret, strings.TrimSpace(r.PostFormValue("code")), c.cfg.Now(), 0)
	if !ok {
		c.site.Redirect(w, r, Prefix+"/account", webui.Flash{Error: true, Message: "Wrong code: start the enrolment again."})
		return
	}
	acct, err := c.cfg.Admins.GetAdmin(r.Context(), actor.Admin)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	acct.TOTPSealed, acct.TOTPUsedStep, acct.UpdatedAt = sealed, step, c.cfg.Now().UTC()
	if err := c.cfg.Admins.UpdateAdmin(r.Context(), acct); err != nil {
		c.fail(w, r, err)
		return
	}
	delete(ws.Data, "totp_pending")
	if err := c.site.Save(r.Context(), ws); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditOwn(r, actor, "POST "+Prefix+"/account/totp/confirm", "username="+actor.Admin)
	c.site.Redirect(w, r, Prefix+"/account", webui.Flash{Message: "Two-factor sign-in is on: the next sign-in asks for a code."})
}

// totpDisable turns the account's own second factor off, given the
// current password and a current code (a stolen session alone cannot);
// wrong ones cost sign-in attempts like a wrong sign-in.
func (c *Console) totpDisable(w http.ResponseWriter, r *http.Request, actor *adminauth.Actor) {
	back := Prefix + "/account"
	if wait, ok := c.byUser.Check(actor.Admin); !ok {
		c.site.Redirect(w, r, back, webui.Flash{Error: true,
			Message: fmt.Sprintf("Too many failed attempts. Try again in %s.", wait.Round(time.Second)+time.Second)})
		return
	}
	acct, err := c.cfg.Admins.GetAdmin(r.Context(), actor.Admin)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(acct.TOTPSealed) == 0 {
		c.site.Redirect(w, r, back, webui.Flash{Message: "Two-factor sign-in is already off."})
		return
	}
	pw := r.PostFormValue("password")
	pwErr := adminauth.ErrBadPassword
	if len(pw) <= adminauth.MaxPasswordLen {
		pwErr = adminauth.VerifyPassword(acct.PasswordHash, pw)
	}
	if pwErr != nil && !errors.Is(pwErr, adminauth.ErrBadPassword) {
		c.fail(w, r, pwErr)
		return
	}
	_, codeOK := c.checkCode(acct, strings.TrimSpace(r.PostFormValue("code")))
	if pwErr != nil || !codeOK {
		c.failed(r, actor.Admin, "wrong password or code to turn off two-factor sign-in")
		c.site.Redirect(w, r, back, webui.Flash{Error: true, Message: "Two-factor sign-in is still on: wrong password or code (a code signs in once; wait for the next)."})
		return
	}
	acct.TOTPSealed, acct.TOTPUsedStep, acct.UpdatedAt = nil, 0, c.cfg.Now().UTC()
	if err := c.cfg.Admins.UpdateAdmin(r.Context(), acct); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditOwn(r, actor, "POST "+Prefix+"/account/totp/disable", "username="+actor.Admin)
	c.site.Redirect(w, r, back, webui.Flash{Message: "Two-factor sign-in is off: the password alone signs in."})
}

// auditOwn records a console change that has no admin API route (the
// account's own second factor), in the same log and shape.
func (c *Console) auditOwn(r *http.Request, actor *adminauth.Actor, action, target string) {
	e := &storage.AuditEntry{Time: c.cfg.Now().UTC(), Actor: actor.String(), Source: addrOf(r), Action: action,
		Target: target, Status: http.StatusSeeOther, Result: "ok"}
	if err := c.cfg.Admins.AppendAudit(r.Context(), e); err != nil {
		c.log.ErrorContext(r.Context(), "audit entry not stored", "action", action, "actor", e.Actor, "err", err)
	}
}
