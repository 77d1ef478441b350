package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/policy"
	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// The steps of the flow, in order; each is skipped when it does not apply.
const (
	stepSignIn = iota + 1
	stepTerms
	stepCategory
	stepProfile
)

// signedIn returns the request's signed-in session and flow, or sends the
// person to the start.
func (p *Portal) signedIn(w http.ResponseWriter, r *http.Request) (*storage.WebSession, Flow, bool) {
	ws, f := current(r)
	if ws == nil || ws.Subject == "" {
		http.Redirect(w, r, "/portal", http.StatusSeeOther)
		return nil, f, false
	}
	return ws, f, true
}

func (p *Portal) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("portal: internal error", "path", r.URL.Path, "err", err)
	p.message(w, r, http.StatusInternalServerError, "Something went wrong", "The server could not do this just now.", "Try again in a minute.")
}

func (p *Portal) record(r *http.Request, f Flow, username, stage string) {
	if p.cfg.Stages == nil {
		return
	}
	facts := Facts{Username: username, Method: "portal", Platform: f.Platform}
	if d := f.Device; d != nil {
		facts.Method, facts.Serial, facts.UDID, facts.Model, facts.OSVersion = "setup-assistant", d.Serial, d.UDID, d.Product, d.OSVersion
	}
	if err := p.cfg.Stages.Record(r.Context(), f.ID, stage, facts); err != nil {
		p.log.Warn("portal: record stage", "stage", stage, "err", err)
	}
}

// start serves GET /portal: the sign-in page, or the next step of a
// signed-in person.
func (p *Portal) start(w http.ResponseWriter, r *http.Request) {
	ws, f := current(r)
	if ws != nil && ws.Subject != "" {
		p.next(w, r, ws, f)
		return
	}
	if ws == nil {
		f = Flow{ID: anonymousID(r)}
		f.Platform, _ = platformFromUA(r.UserAgent())
	}
	p.record(r, f, "", StageSigninShown)
	p.signInPage(w, r, f, http.StatusOK, "", "")
}

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request, f Flow, status int, username, msg string) {
	v := view{Step: stepSignIn, Steps: stepProfile, Username: username, SetupAssistant: f.Device != nil}
	platformView(r, &f, &v)
	p.render(w, r, status, "signin", "Sign in to enroll", msg, v)
}

// signIn serves POST /portal/signin (the site checked its CSRF token).
func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	ws, f := current(r)
	if ws == nil {
		f = Flow{ID: anonymousID(r)}
		f.Platform, _ = platformFromUA(r.UserAgent())
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	u, err := p.cfg.Auth.Authenticate(r.Context(), username, r.PostFormValue("password"), ratelimit.SourceKey(r))
	var limited *directory.RateLimitedError
	switch {
	case errors.Is(err, directory.ErrBadCredentials):
		p.signInPage(w, r, f, http.StatusUnauthorized, username, "Wrong username or password.")
		return
	case errors.Is(err, directory.ErrDisabled):
		p.signInPage(w, r, f, http.StatusForbidden, username, "This account is disabled. Ask your IT team.")
		return
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(limited.RetryAfter))
		p.signInPage(w, r, f, http.StatusTooManyRequests, username, "Too many failed sign-ins: try again in a few minutes.")
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	// A new session (and ID) at sign-in: one planted before is worth nothing.
	ws, err = p.cfg.Site.SignIn(w, r, u.Username, flowData(f))
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.log.Info("portal: signed in", "username", u.Username, "setup_assistant", f.Device != nil)
	p.record(r, f, u.Username, StageSignedIn)
	p.next(w, r, ws, f)
}

// signOut serves POST /portal/sign-out.
func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	if err := p.cfg.Site.SignOut(w, r); err != nil {
		p.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// next sends the person to the first step they have not done; a Setup
// Assistant web view gets the profile itself at the end.
func (p *Portal) next(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow) {
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(pending) > 0 {
		http.Redirect(w, r, "/portal/terms", http.StatusSeeOther)
		return
	}
	if !f.CategoryDone {
		cats, err := p.categories(r)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		if len(cats) > 0 {
			http.Redirect(w, r, "/portal/category", http.StatusSeeOther)
			return
		}
	}
	if f.Device != nil {
		p.setupAssistantProfile(w, r, ws, f)
		return
	}
	http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
}

func (p *Portal) pendingTerms(r *http.Request, username string) ([]Document, error) {
	if p.cfg.Terms == nil {
		return nil, nil
	}
	return p.cfg.Terms.Pending(r.Context(), username)
}

func (p *Portal) categories(r *http.Request) ([]Category, error) {
	if p.cfg.Categories == nil {
		return nil, nil
	}
	return p.cfg.Categories.PortalCategories(r.Context())
}

// setPlatform serves POST /portal/platform: the person corrects the
// platform read from the User-Agent.
func (p *Portal) setPlatform(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	pl := r.PostFormValue("platform")
	if platformNames[pl] == "" {
		p.message(w, r, http.StatusBadRequest, "Unknown device", "Choose iPhone, iPad or Mac.", "")
		return
	}
	f.Platform, f.PlatformChosen = pl, true
	if err := p.save(r, ws, f); err != nil {
		p.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
}

// termsPage serves GET /portal/terms.
func (p *Portal) termsPage(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	p.showTerms(w, r, ws, f, http.StatusOK, "")
}

func (p *Portal) showTerms(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow, status int, msg string) {
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(pending) == 0 {
		p.next(w, r, ws, f)
		return
	}
	if status == http.StatusOK {
		p.record(r, f, ws.Subject, StageTermsShown)
	}
	p.render(w, r, status, "terms", "Terms and conditions", msg, view{Step: stepTerms, Steps: stepProfile,
		Username: ws.Subject, Terms: pending, SetupAssistant: f.Device != nil})
}

// acceptTerms serves POST /portal/terms: the person accepts exactly the
// versions the page showed; a version newer than that is shown again.
func (p *Portal) acceptTerms(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	// The Decline button of the same form (a forged post naming both
	// declines: the safer reading).
	if r.PostFormValue("decline") != "" {
		p.declineTerms(w, r, ws, f)
		return
	}
	if r.PostFormValue("accept") != "yes" {
		p.showTerms(w, r, ws, f, http.StatusBadRequest, "Tick the box to accept the terms, or close this page.")
		return
	}
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	shown := map[string]bool{}
	for _, d := range r.PostForm["doc"] {
		shown[d] = true
	}
	for _, d := range pending {
		if !shown[d.Name+":"+strconv.Itoa(d.Version)] {
			p.showTerms(w, r, ws, f, http.StatusConflict, "These terms changed while you were reading: read them again.")
			return
		}
	}
	for _, d := range pending {
		if err := p.cfg.Terms.Accept(r.Context(), ws.Subject, d.Name, d.Version, ratelimit.SourceKey(r), r.UserAgent()); err != nil {
			p.internal(w, r, err)
			return
		}
	}
	f.TermsDone = true
	if err := p.save(r, ws, f); err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, f, ws.Subject, StageTermsAccepted)
	p.next(w, r, ws, f)
}

// categoryPage serves GET /portal/category.
func (p *Portal) categoryPage(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	p.showCategories(w, r, ws, f, http.StatusOK, "")
}

func (p *Portal) showCategories(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow, status int, msg string) {
	cats, err := p.categories(r)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(cats) == 0 {
		f.CategoryDone = true
		p.next(w, r, ws, f)
		return
	}
	if status == http.StatusOK {
		p.record(r, f, ws.Subject, StageCategoryShown)
	}
	p.render(w, r, status, "category", "Device category", msg, view{Step: stepCategory, Steps: stepProfile,
		Username: ws.Subject, Categories: cats, SetupAssistant: f.Device != nil})
}

// termsFirst sends a person with terms still to accept to the terms page
// (a page out of order): nothing of a later step is kept before them.
func (p *Portal) termsFirst(w http.ResponseWriter, r *http.Request, ws *storage.WebSession) bool {
	pending, err := p.pendingTerms(r, ws.Subject)
	if err != nil {
		p.internal(w, r, err)
		return true
	}
	if len(pending) > 0 {
		http.Redirect(w, r, "/portal/terms", http.StatusSeeOther)
		return true
	}
	return false
}

// chooseCategory serves POST /portal/category.
func (p *Portal) chooseCategory(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok || p.termsFirst(w, r, ws) {
		return
	}
	cats, err := p.categories(r)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	name := r.PostFormValue("category")
	found := false
	for _, c := range cats {
		found = found || c.Name == name
	}
	if !found && len(cats) > 0 {
		p.showCategories(w, r, ws, f, http.StatusBadRequest, "Choose one of these categories.")
		return
	}
	f.Category, f.CategoryDone = name, true
	if err := p.save(r, ws, f); err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, f, ws.Subject, StageCategoryChosen)
	p.next(w, r, ws, f)
}

// categoryReady reports whether the flow has its category: chosen, or
// none to choose from. If not, the person is sent to the step.
func (p *Portal) categoryReady(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow) bool {
	if f.CategoryDone {
		return true
	}
	cats, err := p.categories(r)
	if err != nil {
		p.internal(w, r, err)
		return false
	}
	if len(cats) > 0 {
		p.next(w, r, ws, f)
		return false
	}
	return true
}

// profilePage serves GET /portal/profile: instructions and the button.
func (p *Portal) profilePage(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok || p.termsFirst(w, r, ws) || !p.categoryReady(w, r, ws, f) {
		return
	}
	if f.Device != nil {
		p.setupAssistantProfile(w, r, ws, f)
		return
	}
	if !p.allowed(w, r, ws.Subject, f) {
		return
	}
	v := view{Step: stepProfile, Steps: stepProfile, Username: ws.Subject, Category: f.Category}
	platformView(r, &f, &v)
	p.render(w, r, http.StatusOK, "profile", "Get your enrollment profile", "", v)
}

// downloadProfile serves POST /portal/profile: a signed profile whose
// single-use challenge carries the user and category. The page that leads
// here needs the terms accepted, but a post can come without it (forged,
// or terms re-issued since): that is refused, not sent round again.
func (p *Portal) downloadProfile(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok || !p.termsAccepted(w, r, ws, f) || !p.categoryReady(w, r, ws, f) {
		return
	}
	if f.Device != nil {
		p.setupAssistantProfile(w, r, ws, f)
		return
	}
	if !p.allowed(w, r, ws.Subject, f) {
		return
	}
	raw, err := p.cfg.Enroll.UserProfile(r.Context(), ws.Subject, f.Category, f.ID)
	if errors.Is(err, enroll.ErrNoPushCert) {
		p.message(w, r, http.StatusConflict, "Not ready yet", "This server cannot enroll devices yet.",
			"Your IT team must upload an MDM push certificate first.")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	f.Downloaded = true
	if err := p.save(r, ws, f); err != nil {
		p.log.Warn("portal: save session", "err", err) // the profile goes out anyway
	}
	p.record(r, f, ws.Subject, StageProfileDownloaded)
	p.log.Info("portal: enrollment profile handed out", "username", ws.Subject, "platform", f.Platform, "category", f.Category)
	writeProfile(w, raw)
}

func writeProfile(w http.ResponseWriter, raw []byte) {
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="orchard-enroll.mobileconfig"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(raw)
}

// donePage serves GET /portal/done.
func (p *Portal) donePage(w http.ResponseWriter, r *http.Request) {
	ws, f, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	if !f.Downloaded {
		http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "done", "You're done", "", view{Username: ws.Subject, PlatformName: platformNames[f.Platform]})
}

// allowed asks the enrollment policy whether this user may enroll the
// flow's device: in the portal, a device of the flow's platform (the device
// limit, platform and OS rules known before the device speaks); in Setup
// Assistant, the device its verified MachineInfo named, by ADE (corporate,
// so only a platform block or the limit can refuse it). A refusal is
// recorded and shown with the rule's message and what to do; Authenticate
// decides again with what the device reports, and takes the slot.
func (p *Portal) allowed(w http.ResponseWriter, r *http.Request, username string, f Flow) bool {
	if p.cfg.Policy == nil {
		return true
	}
	a := enroll.PolicyAttempt{Method: policy.MethodPortal, Platform: f.Platform, User: username}
	if d := f.Device; d != nil {
		// As the first load asked, now with the user.
		a = enroll.PolicyAttempt{Method: storage.KindADE, Platform: mdm.Platform(d.Product, ""), OSVersion: d.OSVersion,
			DeviceID: d.UDID, Serial: d.Serial, User: username}
	}
	d, err := p.cfg.Policy.Decide(r.Context(), a)
	if err != nil {
		p.internal(w, r, err)
		return false
	}
	if d.Allowed {
		return true
	}
	p.log.Info("portal: enrollment refused by policy", "username", username, "platform", a.Platform, "method", a.Method,
		"reason", d.Reason, "policy", d.Policy, "rule", d.Rule)
	p.recordFailure(r, f, &storage.EnrollmentFailure{Reason: d.Message, Code: d.Reason, Stage: failureStagePortal,
		User: username, Policy: d.Policy, Rule: d.Rule})
	p.flowMessage(w, r, f, http.StatusForbidden, view{Heading: "This device cannot be enrolled", Message: d.Message, Hint: d.Remedy})
	return false
}
