package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/storage"
)

// TestBrowserSignInSearchLock: in Chromium, the owner signs in, finds one
// device among 1,000 by name, opens it, locks it (typing nothing: lock is
// not destructive), and sees the lock in the device's command history and
// in the audit log under its own name.
func TestBrowserSignInSearchLock(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 1000)
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"

	if st := browsertest.Load(t, ctx, chromedp.Navigate(base+"/")); st != http.StatusOK {
		t.Fatalf("console: %d", st)
	}
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); !strings.HasPrefix(h, "Sign in") {
		t.Fatalf("not signed in, the console shows %q", h)
	}
	st := browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), "olga"),
		chromedp.SendKeys(chromedp.CSS("#password"), ownerPW),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); st != http.StatusOK || h != "Dashboard" {
		t.Fatalf("after sign-in: %d %q", st, h)
	}
	if n := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".big"))); n != "1000" {
		t.Errorf("dashboard counts %q enrolled devices, want 1000", n)
	}
	browsertest.Screenshot(t, ctx, "dashboard")

	browsertest.Load(t, ctx, chromedp.Navigate(base+"/devices"))
	browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#q"), "device 0777"),
		chromedp.Click(chromedp.CSS("#search")),
	)
	rows := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#devices tbody")))
	if !strings.Contains(rows, "Device 0777") || strings.Count(rows, "Device ") != 1 {
		t.Fatalf("search for device 0777 lists %q", rows)
	}
	browsertest.Screenshot(t, ctx, "search")
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS("#devices tbody a")))
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); h != "Device 0777" {
		t.Fatalf("device page of %q", h)
	}
	browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#msg-lock"), "Found at the front desk"),
		chromedp.Click(chromedp.CSS("#action-lock")),
	)
	if f := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash"))); !strings.HasPrefix(f, "Lock queued as command ") {
		t.Fatalf("after the lock: %q", f)
	}
	hist := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#history tbody")))
	if !strings.Contains(hist, "DeviceLock") || !strings.Contains(hist, "Queued") {
		t.Fatalf("command history: %q", hist)
	}
	browsertest.Screenshot(t, ctx, "device")

	browsertest.Load(t, ctx, chromedp.Navigate(base+"/audit?action=%2Factions%2F"))
	audit := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#audit tbody")))
	if !strings.Contains(audit, "olga") || !strings.Contains(audit, "id="+ids[777]+" action=lock") || !strings.Contains(audit, "201 ok") {
		t.Fatalf("audit log: %q", audit)
	}
	// The fleet's command list has it, sent by olga; its row opens the command.
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/commands"))
	browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#sender"), "olga"),
		chromedp.Click(chromedp.CSS("#filter")),
	)
	cmds := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#commands tbody")))
	if !strings.Contains(cmds, "DeviceLock") || !strings.Contains(cmds, ids[777]) || strings.Count(cmds, "DeviceLock") != 1 {
		t.Fatalf("commands sent by olga: %q", cmds)
	}
	browsertest.Screenshot(t, ctx, "commands")
	browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS(`#commands tbody a[href*="/commands/"]`)))
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); !strings.HasPrefix(h, "DeviceLock ") {
		t.Fatalf("command page of %q", h)
	}
	if req := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#request"))); !strings.Contains(req, "Found at the front desk") {
		t.Fatalf("command request: %q", req)
	}
	// The lock really is queued for that device, through the command service.
	var hv struct {
		Commands []struct {
			RequestType string `json:"request_type"`
		} `json:"commands"`
	}
	if code := srv.API(t, "GET", "/v1/devices/"+ids[777]+"/commands", nil, &hv); code != 200 || len(hv.Commands) != 1 || hv.Commands[0].RequestType != "DeviceLock" {
		t.Fatalf("history over the API: %d %+v", code, hv)
	}
}

// TestBrowserHelpdeskCannotErase: a helpdesk admin sees no erase or retire
// button, and the server refuses the erase post with 403 anyway (audited
// as denied); the device gets no command.
func TestBrowserHelpdeskCannotErase(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 3)
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"
	browserSignIn(t, ctx, base, "hana", helpdeskPW)
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/devices/"+ids[1]))
	buttons := browsertest.Get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('button[id^=action-]')].map(b => b.id)`))
	got := strings.Join(buttons, " ")
	if !strings.Contains(got, "action-lock") || strings.Contains(got, "action-erase") || strings.Contains(got, "action-retire") ||
		strings.Contains(got, "action-restart") {
		t.Fatalf("helpdesk sees buttons %v", buttons)
	}
	browsertest.Screenshot(t, ctx, "helpdesk-device")

	// The post itself, with a valid session and token and the name typed.
	c := newClient(t, srv)
	if st, body := c.signIn("hana", helpdeskPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", st, body)
	}
	tok := c.csrf("/console/devices/" + ids[1])
	for _, action := range []string{"erase", "retire"} {
		st, body := c.post("/console/devices/"+ids[1]+"/actions/"+action, url.Values{"csrf": {tok}, "confirm": {"Device 0001"}})
		if st != http.StatusForbidden || !strings.Contains(body, "forbidden: role helpdesk") {
			t.Fatalf("helpdesk %s: %d %q", action, st, body)
		}
	}
	hist, err := srv.Store().ChannelCommands(t.Context(), ids[1], 0, 10)
	if err != nil || len(hist) != 0 {
		t.Fatalf("the device got commands: %+v, %v", hist, err)
	}
	audit, err := srv.Store().ListAudit(t.Context(), storage.AuditFilter{Actor: "hana", Action: "/actions/"}, "", 0)
	if err != nil || len(audit) != 2 || audit[0].Result != "denied" || audit[0].Status != http.StatusForbidden {
		t.Fatalf("audit of the refused posts: %+v, %v", audit, err)
	}
}

// TestBrowserWrongPasswordLockout: in Chromium, wrong passwords are
// refused without telling which part was wrong, then the account is
// locked out: even the right password is refused for a while.
func TestBrowserWrongPasswordLockout(t *testing.T) {
	srv := start(t)
	ctx := browsertest.New(t)
	base := srv.AdminURL + "/console"
	browsertest.Load(t, ctx, chromedp.Navigate(base+"/sign-in"))
	for i := range 5 {
		st := browsertest.Load(t, ctx,
			chromedp.SetValue(chromedp.CSS("#username"), "olga"),
			chromedp.SetValue(chromedp.CSS("#password"), "not the password"),
			chromedp.Click(chromedp.CSS("#sign-in")),
		)
		msg := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash-error")))
		if st != http.StatusUnauthorized || msg != "Wrong username or password." {
			t.Fatalf("wrong password %d: %d %q", i+1, st, msg)
		}
	}
	st := browsertest.Load(t, ctx,
		chromedp.SetValue(chromedp.CSS("#username"), "olga"),
		chromedp.SetValue(chromedp.CSS("#password"), ownerPW),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
	msg := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash-error")))
	if st != http.StatusTooManyRequests || !strings.HasPrefix(msg, "Too many failed sign-ins.") {
		t.Fatalf("right password after five wrong ones: %d %q", st, msg)
	}
	browsertest.Screenshot(t, ctx, "locked-out")
	// Another admin is not locked out by olga's failures.
	c := newClient(t, srv)
	if st, _ := c.signIn("hana", helpdeskPW); st != http.StatusSeeOther {
		t.Fatalf("hana after olga's lockout: %d", st)
	}
}

// TestCSRFLessPostRefused: a signed-in admin's post without the form's
// token answers 403 and queues nothing.
func TestCSRFLessPostRefused(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 1)
	c := newClient(t, srv)
	if st, _ := c.signIn("olga", ownerPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	st, body := c.post("/console/devices/"+ids[0]+"/actions/lock", url.Values{"message": {"x"}})
	if st != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: missing or wrong CSRF token") {
		t.Fatalf("post without a token: %d %q", st, body)
	}
	if hist, err := srv.Store().ChannelCommands(t.Context(), ids[0], 0, 10); err != nil || len(hist) != 0 {
		t.Fatalf("the device got commands: %+v, %v", hist, err)
	}
	// Without a session at all, the sign-in form is protected too.
	anon := newClient(t, srv)
	if st, _ := anon.post("/console/sign-in", url.Values{"username": {"olga"}, "password": {ownerPW}}); st != http.StatusForbidden {
		t.Fatalf("sign-in without a token: %d", st)
	}
}

// TestDestructiveNeedsTheName: an owner's erase is only sent once the
// device's name is typed exactly.
func TestDestructiveNeedsTheName(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 1)
	c := newClient(t, srv)
	c.signIn("olga", ownerPW)
	tok := c.csrf("/console/devices/" + ids[0])
	if st, _ := c.post("/console/devices/"+ids[0]+"/actions/erase", url.Values{"csrf": {tok}, "confirm": {"Device 000"}}); st != http.StatusSeeOther {
		t.Fatalf("erase with the wrong name: %d", st)
	}
	if _, page := c.get("/console/devices/" + ids[0]); !strings.Contains(page, "Erase not sent: type the device&#39;s name (Device 0000)") {
		t.Fatalf("no refusal shown: %s", page)
	}
	if hist, _ := srv.Store().ChannelCommands(t.Context(), ids[0], 0, 10); len(hist) != 0 {
		t.Fatalf("erase sent without the name: %+v", hist)
	}
	if st, _ := c.post("/console/devices/"+ids[0]+"/actions/erase", url.Values{"csrf": {tok}, "confirm": {"Device 0000"}}); st != http.StatusSeeOther {
		t.Fatalf("erase with the name: %d", st)
	}
	if hist, _ := srv.Store().ChannelCommands(t.Context(), ids[0], 0, 10); len(hist) != 1 || hist[0].Command.RequestType != "EraseDevice" {
		t.Fatalf("erase with the name: %+v", hist)
	}
}

// TestTOTP: an admin enrols a TOTP secret (sealed in the account), and the
// next sign-in needs a current code, each code once.
func TestTOTP(t *testing.T) {
	srv := start(t)
	c := newClient(t, srv)
	c.signIn("olga", ownerPW)
	secret, code := c.enrollTOTP()
	acct, err := srv.Store().GetAdmin(t.Context(), "olga")
	if err != nil || len(acct.TOTPSealed) == 0 || strings.Contains(string(acct.TOTPSealed), string(secret)) {
		t.Fatalf("stored second factor: %+v, %v", acct, err)
	}
	// A fresh browser: the password alone no longer signs in.
	c2 := newClient(t, srv)
	if st, _ := c2.signIn("olga", ownerPW); st != http.StatusSeeOther {
		t.Fatalf("password step: %d", st)
	}
	if st, _ := c2.get("/console/"); st != http.StatusSeeOther {
		t.Fatalf("dashboard before the code: %d, want a redirect to sign in", st)
	}
	ctok := c2.csrf("/console/sign-in/code")
	if st, _ := c2.post("/console/sign-in/code", url.Values{"csrf": {ctok}, "code": {"000000"}}); st != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", st)
	}
	// The code that confirmed enrolment was used: it does not sign in.
	if st, _ := c2.post("/console/sign-in/code", url.Values{"csrf": {ctok}, "code": {code}}); st != http.StatusUnauthorized {
		t.Fatalf("reused code: %d", st)
	}
	next := adminauth.TOTPCode(secret, time.Now().Add(30*time.Second), 6)
	if st, _ := c2.post("/console/sign-in/code", url.Values{"csrf": {ctok}, "code": {next}}); st != http.StatusSeeOther {
		t.Fatalf("right code: %d", st)
	}
	if st, body := c2.get("/console/"); st != http.StatusOK || !strings.Contains(body, "<h1>Dashboard</h1>") {
		t.Fatalf("dashboard after the code: %d", st)
	}
}

// TestAdminListen: with --admin-listen, /v1 and /console are served there
// and the main listener answers 404 for them.
func TestAdminListen(t *testing.T) {
	srv := start(t, func(c *server.Config) { c.AdminListen = "127.0.0.1:0" })
	if srv.AdminURL == srv.URL {
		t.Fatal("no admin listener")
	}
	for _, p := range []string{"/v1/devices", "/console/", "/console/sign-in", "/metrics"} {
		resp, err := srv.Client.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("main listener %s: %d, want 404", p, resp.StatusCode)
		}
	}
	c := newClient(t, srv)
	if st, _ := c.signIn("olga", ownerPW); st != http.StatusSeeOther {
		t.Fatalf("console sign-in on the admin listener: %d", st)
	}
	if st, body := c.get("/console/"); st != http.StatusOK || !strings.Contains(body, "Dashboard") {
		t.Fatalf("console on the admin listener: %d", st)
	}
	resp, err := srv.Client.Get(srv.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics on the admin listener: %d", resp.StatusCode)
	}
	// Devices still reach the main listener.
	resp, err = srv.Client.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz on the main listener: %d", resp.StatusCode)
	}
}

// TestEveryPageRenders: every page answers 200 with its heading for an
// owner, and for an auditor the device page has no action and the admins
// page no form to create one; without a session each page sends the
// browser to sign in.
func TestEveryPageRenders(t *testing.T) {
	srv := start(t)
	ids := seed(t, srv.Store(), 2)
	if st := srv.API(t, "POST", "/v1/admins", map[string]string{"username": "avi", "role": "auditor", "password": "avi-auditor-password"}, nil); st != http.StatusCreated {
		t.Fatalf("create auditor: %d", st)
	}
	pages := map[string]string{
		"/console/":                  "<h1>Dashboard</h1>",
		"/console/devices":           "<h1>Devices</h1>",
		"/console/devices?q=0001":    "Device 0001",
		"/console/devices/" + ids[0]: "<h1>Device 0000</h1>",
		"/console/commands":          "<h1>Commands</h1>",
		"/console/enrollment":        "<h1>Enrollment</h1>",
		"/console/push":              "<h1>Push certificate</h1>",
		"/console/admins":            "<h1>Admins and tokens</h1>",
		"/console/audit":             "<h1>Audit log</h1>",
		"/console/account":           "<h1>Account</h1>",
		"/console/admins/hana":       "<h1>Admin hana</h1>",
		"/console/webhooks":          "<h1>Webhooks</h1>",
		"/console/webhooks/new":      "<h1>New webhook</h1>",
		"/console/webhooks/events":   "<h1>Webhook events</h1>",
	}
	anon := newClient(t, srv)
	for p := range pages {
		if st, _ := anon.get(p); st != http.StatusSeeOther {
			t.Errorf("%s without a session: %d, want 303 to sign in", p, st)
		}
	}
	owner := newClient(t, srv)
	owner.signIn("olga", ownerPW)
	for p, want := range pages {
		if st, body := owner.get(p); st != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("owner %s: %d, want %q", p, st, want)
		}
	}
	if st, _ := owner.get("/console/devices/00008030-0000000000000BAD"); st != http.StatusNotFound {
		t.Errorf("an unknown device: %d", st)
	}
	aud := newClient(t, srv)
	if st, _ := aud.signIn("avi", "avi-auditor-password"); st != http.StatusSeeOther {
		t.Fatalf("auditor sign-in: %d", st)
	}
	if _, body := aud.get("/console/devices/" + ids[0]); strings.Contains(body, `id="action-`) || !strings.Contains(body, "Your role cannot act on devices.") {
		t.Errorf("auditor device page offers actions")
	}
	if _, body := aud.get("/console/admins"); strings.Contains(body, "New admin") {
		t.Errorf("auditor admins page offers to create admins")
	}
	if st, _ := aud.post("/console/devices/"+ids[0]+"/actions/lock", url.Values{"csrf": {aud.csrf("/console/account")}}); st != http.StatusForbidden {
		t.Errorf("auditor lock: %d, want 403", st)
	}
}

// TestTwoFactorOffAndReset: an admin turns their own second factor off
// only with the right password and a current code, and that is audited;
// an owner resets another admin's, an admin (not an owner) is refused
// with 403, and both are in the audit log.
func TestTwoFactorOffAndReset(t *testing.T) {
	srv := start(t)
	if st := srv.API(t, "POST", "/v1/admins", map[string]string{"username": "adam", "role": "admin", "password": "adam-admin-password"}, nil); st != http.StatusCreated {
		t.Fatalf("create admin: %d", st)
	}
	twoFactor := func(name string) bool {
		acct, err := srv.Store().GetAdmin(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		return len(acct.TOTPSealed) > 0
	}
	c := newClient(t, srv)
	c.signIn("olga", ownerPW)
	secret, used := c.enrollTOTP()
	if _, page := c.get("/console/account"); !strings.Contains(page, `id="totp-disable"`) {
		t.Fatal("no form to turn two-factor sign-in off")
	}
	next := adminauth.TOTPCode(secret, time.Now().Add(30*time.Second), 6)
	tok := c.csrf("/console/account")
	for _, bad := range []url.Values{
		{"password": {ownerPW}, "code": {"000000"}},
		{"password": {ownerPW}, "code": {used}}, // the code that turned it on was used
		{"password": {"not-the-password"}, "code": {next}},
		{"code": {next}},
	} {
		bad.Set("csrf", tok)
		if st, _ := c.post("/console/account/totp/disable", bad); st != http.StatusSeeOther || !twoFactor("olga") {
			t.Fatalf("turned off with %v: %d", bad, st)
		}
	}
	if _, page := c.get("/console/account"); !strings.Contains(page, "Two-factor sign-in is still on: wrong password or code") {
		t.Fatal("no reason shown for a refused turn-off")
	}
	if st, _ := c.post("/console/account/totp/disable", url.Values{"csrf": {tok}, "password": {ownerPW}, "code": {next}}); st != http.StatusSeeOther || twoFactor("olga") {
		t.Fatalf("turn off with the password and a current code: %d, still on %v", st, twoFactor("olga"))
	}
	// The password alone signs in again.
	if st, _ := newClient(t, srv).signIn("olga", ownerPW); st != http.StatusSeeOther {
		t.Fatalf("sign-in after turning off: %d", st)
	}

	h := newClient(t, srv)
	h.signIn("hana", helpdeskPW)
	h.enrollTOTP()
	a := newClient(t, srv)
	a.signIn("adam", "adam-admin-password")
	if _, page := a.get("/console/admins/hana"); strings.Contains(page, "reset-two-factor") || !strings.Contains(page, `<dd id="two-factor">on</dd>`) {
		t.Fatalf("an admin's view of hana: %s", page)
	}
	if st, body := a.post("/console/admins/hana/two-factor/reset", url.Values{"csrf": {a.csrf("/console/admins/hana")}}); st != http.StatusForbidden ||
		!strings.Contains(body, "forbidden: role admin") || !twoFactor("hana") {
		t.Fatalf("admin resets hana's two-factor: %d %q", st, body)
	}
	if _, page := c.get("/console/admins/hana"); !strings.Contains(page, `id="reset-two-factor"`) {
		t.Fatal("the owner gets no reset button")
	}
	if st, _ := h.get("/console/"); st != http.StatusOK {
		t.Fatalf("hana signed in before the reset: %d", st)
	}
	if st, _ := c.post("/console/admins/hana/two-factor/reset", url.Values{"csrf": {c.csrf("/console/admins/hana")}}); st != http.StatusSeeOther || twoFactor("hana") {
		t.Fatalf("owner resets hana's two-factor: %d, still on %v", st, twoFactor("hana"))
	}
	// The reset ends hana's sessions: whoever holds one may hold the lost
	// authenticator too.
	if st, _ := h.get("/console/"); st != http.StatusSeeOther {
		t.Fatalf("hana's session after the reset: %d, want a redirect to sign in", st)
	}
	if _, page := c.get("/console/admins"); !strings.Contains(page, `<a href="/console/admins/hana">hana</a></td><td>helpdesk</td><td>active</td><td>off</td>`) {
		t.Fatalf("admins list after the reset: %s", page)
	}

	entries, err := srv.Store().ListAudit(t.Context(), storage.AuditFilter{Action: "two-factor"}, "", 0)
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit of the resets: %+v, %v", entries, err)
	}
	if e := entries[0]; e.Actor != "adam" || e.Result != "denied" || e.Target != "username=hana" || e.Action != "DELETE /v1/admins/{username}/two-factor" {
		t.Errorf("the refused reset: %+v", e)
	}
	if e := entries[1]; e.Actor != "olga" || e.Result != "ok" || e.Target != "username=hana" {
		t.Errorf("the owner's reset: %+v", e)
	}
	off, err := srv.Store().ListAudit(t.Context(), storage.AuditFilter{Action: "/account/totp/disable"}, "", 0)
	if err != nil || len(off) != 1 || off[0].Actor != "olga" || off[0].Result != "ok" {
		t.Fatalf("audit of the turn-off: %+v, %v", off, err)
	}
}
