package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/ratelimit"
)

// maxForm bounds a form post; the biggest (terms) names a few documents.
const maxForm = 16 << 10

// The steps of the flow, in order; each is skipped when it does not apply.
const (
	stepSignIn = iota + 1
	stepTerms
	stepCategory
	stepProfile
)

// session returns the request's session or sends the person to the start.
func (p *Portal) session(w http.ResponseWriter, r *http.Request, signedIn bool) (*Session, bool) {
	s, err := p.cfg.Sessions.Get(r)
	if err != nil {
		p.internal(w, r, err)
		return nil, false
	}
	if s == nil || signedIn && s.Flow.Username == "" {
		http.Redirect(w, r, "/portal", http.StatusSeeOther)
		return nil, false
	}
	return s, true
}

// form reads a bounded form post and checks its CSRF token.
func (p *Portal) form(w http.ResponseWriter, r *http.Request, s *Session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.message(w, r, http.StatusBadRequest, "Something went wrong", "The form could not be read.", "Reload the page and try again.")
		return false
	}
	if err := p.cfg.Sessions.CheckCSRF(r, s); err != nil {
		p.message(w, r, http.StatusForbidden, "Please try again", err.Error(), "")
		return false
	}
	return true
}

func (p *Portal) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("portal: internal error", "path", r.URL.Path, "err", err)
	p.message(w, r, http.StatusInternalServerError, "Something went wrong", "The server could not do this just now.", "Try again in a minute.")
}

func (p *Portal) record(r *http.Request, s *Session, stage string) {
	if p.cfg.Stages == nil {
		return
	}
	f := Facts{Username: s.Flow.Username, Method: "portal", Platform: s.Flow.Platform}
	if d := s.Flow.Device; d != nil {
		f.Method, f.Serial, f.UDID, f.Model, f.OSVersion = "setup-assistant", d.Serial, d.UDID, d.Product, d.OSVersion
	}
	if err := p.cfg.Stages.Record(r.Context(), s.ID, stage, f); err != nil {
		p.log.Warn("portal: record stage", "stage", stage, "err", err)
	}
}

// start serves GET /portal: a fresh session and the sign-in page.
func (p *Portal) start(w http.ResponseWriter, r *http.Request) {
	platform, _ := platformFromUA(r.UserAgent())
	s, err := p.cfg.Sessions.Start(w, r, Flow{Platform: platform})
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, s, StageSigninShown)
	p.signInPage(w, r, s, http.StatusOK, "", "")
}

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request, s *Session, status int, username, msg string) {
	v := view{Title: "Sign in to enroll", Step: stepSignIn, Steps: stepProfile, CSRF: s.CSRF, Username: username, Error: msg,
		SetupAssistant: s.Flow.Device != nil}
	p.platformView(r, &s.Flow, &v)
	p.render(w, r, status, "signin", v)
}

// signIn serves POST /portal/signin.
func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, false)
	if !ok || !p.form(w, r, s) {
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	u, err := p.cfg.Auth.Authenticate(r.Context(), username, r.PostFormValue("password"), ratelimit.SourceKey(r))
	var limited *directory.RateLimitedError
	switch {
	case errors.Is(err, directory.ErrBadCredentials):
		p.signInPage(w, r, s, http.StatusUnauthorized, username, "Wrong username or password.")
		return
	case errors.Is(err, directory.ErrDisabled):
		p.signInPage(w, r, s, http.StatusForbidden, username, "This account is disabled. Ask your IT team.")
		return
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(limited.RetryAfter))
		p.signInPage(w, r, s, http.StatusTooManyRequests, username, "Too many failed sign-ins: try again in a few minutes.")
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	// A new session ID on sign-in: one planted before it is worth nothing.
	f := s.Flow
	f.Username = u.Username
	if s, err = p.cfg.Sessions.Start(w, r, f); err != nil {
		p.internal(w, r, err)
		return
	}
	p.log.Info("portal: signed in", "username", u.Username, "setup_assistant", f.Device != nil)
	p.record(r, s, StageSignedIn)
	p.next(w, r, s)
}

// next sends the person to the first step they have not done; a Setup
// Assistant web view gets the profile itself at the end.
func (p *Portal) next(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	if !s.Flow.TermsDone {
		pending, err := p.pendingTerms(r, s)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		if len(pending) > 0 {
			http.Redirect(w, r, "/portal/terms", http.StatusSeeOther)
			return
		}
	}
	if !s.Flow.CategoryDone && p.cfg.Categories != nil {
		cats, err := p.cfg.Categories.PortalCategories(ctx)
		if err != nil {
			p.internal(w, r, err)
			return
		}
		if len(cats) > 0 {
			http.Redirect(w, r, "/portal/category", http.StatusSeeOther)
			return
		}
	}
	if s.Flow.Device != nil {
		p.setupAssistantProfile(w, r, s)
		return
	}
	http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
}

func (p *Portal) pendingTerms(r *http.Request, s *Session) ([]Document, error) {
	if p.cfg.Terms == nil {
		return nil, nil
	}
	return p.cfg.Terms.Pending(r.Context(), s.Flow.Username)
}

// setPlatform serves POST /portal/platform: the person corrects the
// platform read from the User-Agent.
func (p *Portal) setPlatform(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, false)
	if !ok || !p.form(w, r, s) {
		return
	}
	pl := r.PostFormValue("platform")
	if platformNames[pl] == "" {
		p.message(w, r, http.StatusBadRequest, "Unknown device", "Choose iPhone, iPad or Mac.", "")
		return
	}
	s.Flow.Platform, s.Flow.PlatformChosen = pl, true
	if err := p.cfg.Sessions.Save(r.Context(), s); err != nil {
		p.internal(w, r, err)
		return
	}
	if s.Flow.Username == "" {
		p.signInPage(w, r, s, http.StatusOK, "", "")
		return
	}
	http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
}

// termsPage serves GET /portal/terms.
func (p *Portal) termsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok {
		return
	}
	p.showTerms(w, r, s, http.StatusOK, "")
}

func (p *Portal) showTerms(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	pending, err := p.pendingTerms(r, s)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	if len(pending) == 0 {
		p.next(w, r, s)
		return
	}
	p.render(w, r, status, "terms", view{Title: "Terms and conditions", Step: stepTerms, Steps: stepProfile, CSRF: s.CSRF,
		Username: s.Flow.Username, Terms: pending, Error: msg, SetupAssistant: s.Flow.Device != nil})
}

// acceptTerms serves POST /portal/terms: the person accepts exactly the
// versions the page showed; a newer version since then is shown again.
func (p *Portal) acceptTerms(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok || !p.form(w, r, s) {
		return
	}
	if r.PostFormValue("accept") != "yes" {
		p.showTerms(w, r, s, http.StatusBadRequest, "Tick the box to accept the terms, or close this page.")
		return
	}
	pending, err := p.pendingTerms(r, s)
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
			p.showTerms(w, r, s, http.StatusConflict, "These terms changed while you were reading: read them again.")
			return
		}
	}
	for _, d := range pending {
		if err := p.cfg.Terms.Accept(r.Context(), s.Flow.Username, d.Name, d.Version, ratelimit.SourceKey(r), r.UserAgent()); err != nil {
			p.internal(w, r, err)
			return
		}
	}
	s.Flow.TermsDone = true
	if err := p.cfg.Sessions.Save(r.Context(), s); err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, s, StageTermsAccepted)
	p.next(w, r, s)
}

// categoryPage serves GET /portal/category.
func (p *Portal) categoryPage(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok {
		return
	}
	p.showCategories(w, r, s, http.StatusOK, "")
}

func (p *Portal) showCategories(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	var cats []Category
	if p.cfg.Categories != nil {
		var err error
		if cats, err = p.cfg.Categories.PortalCategories(r.Context()); err != nil {
			p.internal(w, r, err)
			return
		}
	}
	if len(cats) == 0 {
		s.Flow.CategoryDone = true
		p.next(w, r, s)
		return
	}
	p.render(w, r, status, "category", view{Title: "Device category", Step: stepCategory, Steps: stepProfile, CSRF: s.CSRF,
		Username: s.Flow.Username, Categories: cats, Error: msg, SetupAssistant: s.Flow.Device != nil})
}

// chooseCategory serves POST /portal/category.
func (p *Portal) chooseCategory(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok || !p.form(w, r, s) {
		return
	}
	if p.cfg.Categories == nil {
		p.next(w, r, s)
		return
	}
	cats, err := p.cfg.Categories.PortalCategories(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	name := r.PostFormValue("category")
	found := false
	for _, c := range cats {
		found = found || c.Name == name
	}
	if !found {
		p.showCategories(w, r, s, http.StatusBadRequest, "Choose one of these categories.")
		return
	}
	s.Flow.Category, s.Flow.CategoryDone = name, true
	if err := p.cfg.Sessions.Save(r.Context(), s); err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, s, StageCategoryChosen)
	p.next(w, r, s)
}

// ready reports whether the flow may hand out a profile: signed in, terms
// accepted (checked again: they may have changed), category chosen.
func (p *Portal) ready(w http.ResponseWriter, r *http.Request, s *Session) bool {
	pending, err := p.pendingTerms(r, s)
	if err != nil {
		p.internal(w, r, err)
		return false
	}
	needCategory := false
	if p.cfg.Categories != nil && !s.Flow.CategoryDone {
		cats, err := p.cfg.Categories.PortalCategories(r.Context())
		if err != nil {
			p.internal(w, r, err)
			return false
		}
		needCategory = len(cats) > 0
	}
	if len(pending) > 0 || needCategory {
		s.Flow.TermsDone = len(pending) == 0
		p.next(w, r, s)
		return false
	}
	return true
}

// profilePage serves GET /portal/profile: instructions and the button.
func (p *Portal) profilePage(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok || !p.ready(w, r, s) {
		return
	}
	if s.Flow.Device != nil {
		p.setupAssistantProfile(w, r, s)
		return
	}
	v := view{Title: "Get your enrollment profile", Step: stepProfile, Steps: stepProfile, CSRF: s.CSRF,
		Username: s.Flow.Username, Category: s.Flow.Category}
	p.platformView(r, &s.Flow, &v)
	p.render(w, r, http.StatusOK, "profile", v)
}

// downloadProfile serves POST /portal/profile: a signed profile whose
// single-use challenge carries the user and category.
func (p *Portal) downloadProfile(w http.ResponseWriter, r *http.Request) {
	s, ok := p.session(w, r, true)
	if !ok || !p.form(w, r, s) || !p.ready(w, r, s) {
		return
	}
	if s.Flow.Device != nil {
		p.setupAssistantProfile(w, r, s)
		return
	}
	raw, err := p.cfg.Enroll.UserProfile(r.Context(), s.Flow.Username, s.Flow.Category)
	if errors.Is(err, enroll.ErrNoPushCert) {
		p.message(w, r, http.StatusConflict, "Not ready yet", "This server cannot enroll devices yet.", "Your IT team must finish setting it up (push certificate).")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	s.Flow.Downloaded = true
	if err := p.cfg.Sessions.Save(r.Context(), s); err != nil {
		p.log.Warn("portal: save session", "err", err) // the profile goes out anyway
	}
	p.record(r, s, StageProfileDownloaded)
	p.log.Info("portal: enrollment profile handed out", "username", s.Flow.Username, "platform", s.Flow.Platform, "category", s.Flow.Category)
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
	s, ok := p.session(w, r, true)
	if !ok {
		return
	}
	if !s.Flow.Downloaded {
		http.Redirect(w, r, "/portal/profile", http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "done", view{Title: "You're done", Username: s.Flow.Username, PlatformName: platformNames[s.Flow.Platform]})
}
