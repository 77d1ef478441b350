// Package portal serves the pages people open to enroll a device: the
// self-service enrollment portal (/portal: sign in, terms, category, the
// enrollment profile bound to the user), the landing pages of one-time
// invitation links (/enroll/{token}), and the Setup Assistant sign-in of
// ADE profiles with modern authentication (GET /enroll/ade?...&auth=modern).
// Every page is server-rendered HTML without script; every form carries a
// CSRF token; no secret is put in a URL. Profiles and MachineInfo checks
// come from internal/enroll, sign-in from directory.Authenticator.
package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/internal/directory"
	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// Enrollment is what the portal asks of internal/enroll.
type Enrollment interface {
	Invitation(ctx context.Context, token string) (*storage.Invitation, error)
	InvitationProfile(ctx context.Context, token string) ([]byte, error)
	UserProfile(ctx context.Context, username, category, session string) ([]byte, error)
	SetupAssistantDevice(ctx context.Context, header, tokenID, profileID string) (*enroll.MachineInfo, error)
	ADEUserProfile(ctx context.Context, m *enroll.MachineInfo, tokenID, profileID, username, category, session string) ([]byte, error)
	LimitTokens(next http.HandlerFunc) http.HandlerFunc
	LimitMachineInfo(next http.HandlerFunc) http.HandlerFunc
	SpendGuess(r *http.Request)
}

// Document is a terms-and-conditions document a user must accept.
type Document struct {
	Name, Title, Summary, Text string
	Version                    int
}

// Terms are the documents a user must still accept (nil: no terms).
type Terms interface {
	Pending(ctx context.Context, username string) ([]Document, error)
	Accept(ctx context.Context, username, name string, version int, addr, userAgent string) error
}

// Category is a device category a user may pick.
type Category struct{ Name, Description string }

// Categories lists the device categories (nil: none).
type Categories interface {
	PortalCategories(ctx context.Context) ([]Category, error)
}

// Facts are what is known about the device at a stage.
type Facts struct {
	Username, Method, Platform     string
	Serial, UDID, Model, OSVersion string
}

// Stages records each stage an enrollment reaches, for the
// incomplete-enrollment report (nil: not recorded).
type Stages interface {
	Record(ctx context.Context, sessionID, stage string, facts Facts) error
}

// Stage names, in the order a person meets them.
const (
	StageSigninShown       = "signin_shown"
	StageSignedIn          = "signed_in"
	StageTermsShown        = "terms_shown"
	StageTermsAccepted     = "terms_accepted"
	StageTermsDeclined     = "terms_declined"
	StageCategoryShown     = "category_shown"
	StageCategoryChosen    = "category_chosen"
	StageProfileDownloaded = "profile_downloaded"
)

// Config is what the portal is built from; Enroll, Auth and Site are
// required.
type Config struct {
	Enroll Enrollment
	Auth   directory.Authenticator
	// Site is the portal's web machinery (internal/webui, kind "portal",
	// prefix "/portal", framing allowed for Setup Assistant): sessions,
	// CSRF, headers, layout.
	Site       *webui.Site
	Terms      Terms
	Categories Categories
	Stages     Stages
	// Policy is the enrollment policy, asked before a profile is handed
	// out so that a refused person learns why on a page instead of from a
	// failed install (nil: only Authenticate applies it).
	Policy enroll.Decider
	// Failures records the portal's refusals: the policy's, terms not
	// accepted at hand-out, terms declined (nil: not recorded).
	Failures storage.EnrollmentFailureStore
	Logger   *slog.Logger
	Now      func() time.Time
}

// Portal serves the pages.
type Portal struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	pages *webui.Templates
}

// New builds the portal.
func New(cfg Config) (*Portal, error) {
	if cfg.Enroll == nil || cfg.Auth == nil || cfg.Site == nil {
		return nil, errors.New("portal: enrollment, authenticator and web site are required")
	}
	pages, err := cfg.Site.Templates(templateFS, nil, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, now: cfg.Now, pages: pages}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Register mounts the pages on the public mux, every one behind the
// site's sessions, headers and CSRF check.
func (p *Portal) Register(mux *http.ServeMux) {
	m := http.NewServeMux()
	m.HandleFunc("GET /portal", p.start)
	m.HandleFunc("GET /portal/{$}", p.start)
	m.Handle("GET /portal/static/", p.cfg.Site.Static())
	m.HandleFunc("POST /portal/signin", p.signIn)
	m.HandleFunc("POST /portal/sign-out", p.signOut)
	m.HandleFunc("POST /portal/platform", p.setPlatform)
	m.HandleFunc("GET /portal/terms", p.termsPage)
	m.HandleFunc("POST /portal/terms", p.acceptTerms)
	m.HandleFunc("GET /portal/category", p.categoryPage)
	m.HandleFunc("POST /portal/category", p.chooseCategory)
	m.HandleFunc("GET /portal/profile", p.profilePage)
	m.HandleFunc("POST /portal/profile", p.downloadProfile)
	m.HandleFunc("GET /portal/done", p.donePage)
	// GET and HEAD of a link show what it is and use nothing: link
	// scanners and chat previews fetch them. The page's POST hands out.
	m.HandleFunc("GET /enroll/{token}", p.cfg.Enroll.LimitTokens(p.invitationPage))
	m.HandleFunc("POST /enroll/{token}", p.cfg.Enroll.LimitTokens(p.invitationProfile))
	m.HandleFunc("GET /enroll/ade", p.cfg.Enroll.LimitMachineInfo(p.setupAssistant))
	h := p.cfg.Site.Handler(m)
	for _, pattern := range []string{"/portal", "/portal/", "GET /enroll/{token}", "POST /enroll/{token}", "GET /enroll/ade"} {
		mux.Handle(pattern, h)
	}
}
