package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/enroll"
)

// setupAssistant serves GET /enroll/ade?token=&profile=&auth=modern, the
// configuration_web_url of ADE profiles with modern authentication.
// Setup Assistant opens it in a web view with the device's signed
// MachineInfo in the x-apple-aspen-deviceinfo header (on this first load
// only); a verified, assigned device gets the sign-in page, and after the
// sign-in (and terms, and category) the enrollment profile itself.
func (p *Portal) setupAssistant(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("auth") != "modern" {
		p.message(w, r, http.StatusNotFound, "Not here", "Devices post their MachineInfo to this address during Setup Assistant.", "")
		return
	}
	token, profile := q.Get("token"), q.Get("profile")
	m, err := p.cfg.Enroll.SetupAssistantDevice(r.Context(), r.Header.Get("x-apple-aspen-deviceinfo"), token, profile)
	var refused *enroll.RefusedError
	var update *enroll.UpdateRequiredError
	switch {
	case errors.As(err, &update):
		enroll.WriteUpdateRequired(w, update)
		return
	case errors.As(err, &refused):
		p.render(w, r, http.StatusForbidden, "message", view{Title: "This device cannot enroll", Message: refused.Reason,
			Hint: "Ask your IT team.", SetupAssistant: true})
		return
	case errors.Is(err, enroll.ErrBadMachineInfo):
		p.render(w, r, http.StatusBadRequest, "message", view{Title: "This device cannot enroll",
			Message: "Open this page from Setup Assistant on the device: it did not identify itself.", SetupAssistant: true})
		return
	case errors.Is(err, enroll.ErrNoPushCert):
		p.render(w, r, http.StatusConflict, "message", view{Title: "Not ready yet", Message: "This server cannot enroll devices yet.",
			Hint: "Your IT team must finish setting it up (push certificate).", SetupAssistant: true})
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	platform := macOS
	switch {
	case strings.HasPrefix(m.Product, "iPad"):
		platform = iPadOS
	case strings.HasPrefix(m.Product, "iPhone"), strings.HasPrefix(m.Product, "iPod"):
		platform = iOS
	}
	s, err := p.cfg.Sessions.Start(w, r, Flow{Platform: platform, Device: m, TokenID: token, ProfileID: profile})
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.record(r, s, StageSigninShown)
	p.signInPage(w, r, s, http.StatusOK, "", "")
}

// setupAssistantProfile answers the Setup Assistant web view with the
// enrollment profile bound to the device's serial and UDID and to the
// signed-in user; the web view installs it and goes on.
func (p *Portal) setupAssistantProfile(w http.ResponseWriter, r *http.Request, s *Session) {
	f := s.Flow
	raw, err := p.cfg.Enroll.ADEUserProfile(r.Context(), f.Device, f.TokenID, f.ProfileID, f.Username, f.Category)
	if errors.Is(err, enroll.ErrNoPushCert) {
		p.render(w, r, http.StatusConflict, "message", view{Title: "Not ready yet", Message: "This server cannot enroll devices yet.", SetupAssistant: true})
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	s.Flow.Downloaded = true
	if err := p.cfg.Sessions.Save(r.Context(), s); err != nil {
		p.log.Warn("portal: save session", "err", err)
	}
	p.record(r, s, StageProfileDownloaded)
	p.log.Info("portal: Setup Assistant profile handed out", "username", f.Username, "serial", f.Device.Serial)
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(raw)
}
