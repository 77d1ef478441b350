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
	"github.com/orchardmdm/orchard/storage"
)

// Enrollment is what the portal asks of internal/enroll.
type Enrollment interface {
	Invitation(ctx context.Context, token string) (*storage.Invitation, error)
	InvitationProfile(ctx context.Context, token string) ([]byte, error)
	UserProfile(ctx context.Context, username, category string) ([]byte, error)
	SetupAssistantDevice(ctx context.Context, header, tokenID, profileID string) (*enroll.MachineInfo, error)
	ADEUserProfile(ctx context.Context, m *enroll.MachineInfo, tokenID, profileID, username, category string) ([]byte, error)
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
	StageTermsAccepted     = "terms_accepted"
	StageCategoryChosen    = "category_chosen"
	StageProfileDownloaded = "profile_downloaded"
)

// Config is what the portal is built from; Enroll, Auth and Sessions are
// required.
type Config struct {
	Enroll     Enrollment
	Auth       directory.Authenticator
	Sessions   Sessions
	Terms      Terms
	Categories Categories
	Stages     Stages
	// PublicURL is the server's https base URL (form posts must come from it).
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
}

// Portal serves the pages.
type Portal struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New builds the portal.
func New(cfg Config) (*Portal, error) {
	if cfg.Enroll == nil || cfg.Auth == nil || cfg.Sessions == nil {
		return nil, errors.New("portal: enrollment, authenticator and sessions are required")
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Register mounts the pages on the public mux.
func (p *Portal) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /portal", p.start)
	mux.HandleFunc("GET /portal/{$}", p.start)
	mux.Handle("GET /portal/static/", http.StripPrefix("/portal/static/", staticFiles()))
	mux.HandleFunc("POST /portal/signin", p.signIn)
	mux.HandleFunc("POST /portal/platform", p.setPlatform)
	mux.HandleFunc("GET /portal/terms", p.termsPage)
	mux.HandleFunc("POST /portal/terms", p.acceptTerms)
	mux.HandleFunc("GET /portal/category", p.categoryPage)
	mux.HandleFunc("POST /portal/category", p.chooseCategory)
	mux.HandleFunc("GET /portal/profile", p.profilePage)
	mux.HandleFunc("POST /portal/profile", p.downloadProfile)
	mux.HandleFunc("GET /portal/done", p.donePage)
	// GET and HEAD of a link show what it is and use nothing: link
	// scanners and chat previews fetch them. The page's POST hands out.
	mux.HandleFunc("GET /enroll/{token}", p.cfg.Enroll.LimitTokens(p.invitationPage))
	mux.HandleFunc("POST /enroll/{token}", p.cfg.Enroll.LimitTokens(p.invitationProfile))
	mux.HandleFunc("GET /enroll/ade", p.cfg.Enroll.LimitMachineInfo(p.setupAssistant))
}
