package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/storage"
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
		p.saMessage(w, r, http.StatusForbidden, "This device cannot enroll", refused.Reason, "Ask your IT team.")
		return
	case errors.Is(err, enroll.ErrBadMachineInfo):
		p.saMessage(w, r, http.StatusBadRequest, "This device cannot enroll", "Open this page from Setup Assistant on the device: it did not identify itself.", "")
		return
	case errors.Is(err, enroll.ErrNoPushCert):
		p.saMessage(w, r, http.StatusConflict, "Not ready yet", "This server cannot enroll devices yet.", "Your IT team must upload an MDM push certificate first.")
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
	// The device info comes only with this first load: a session (with no
	// one signed in yet) keeps it for the sign-in that follows, on the
	// portal's sign-in page (whose form carries that session's token).
	f := Flow{ID: newID(), Platform: platform, Device: m, TokenID: token, ProfileID: profile}
	if _, err := p.cfg.Site.SignIn(w, r, "", flowData(f)); err != nil {
		p.internal(w, r, err)
		return
	}
	http.Redirect(w, r, "/portal", http.StatusSeeOther)
}

// setupAssistantProfile answers the Setup Assistant web view with the
// enrollment profile bound to the device's serial and UDID and to the
// signed-in user; the web view installs it and goes on. The terms are
// asked once more here, as the profile is made, and the enrollment policy
// with the user known (their device limit).
func (p *Portal) setupAssistantProfile(w http.ResponseWriter, r *http.Request, ws *storage.WebSession, f Flow) {
	if !p.termsAccepted(w, r, ws, f) || !p.allowed(w, r, ws.Subject, f) {
		return
	}
	raw, err := p.cfg.Enroll.ADEUserProfile(r.Context(), f.Device, f.TokenID, f.ProfileID, ws.Subject, f.Category, f.ID)
	if errors.Is(err, enroll.ErrNoPushCert) {
		p.saMessage(w, r, http.StatusConflict, "Not ready yet", "This server cannot enroll devices yet.", "")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	f.Downloaded = true
	if err := p.save(r, ws, f); err != nil {
		p.log.Warn("portal: save session", "err", err)
	}
	p.record(r, f, ws.Subject, StageProfileDownloaded)
	p.log.Info("portal: Setup Assistant profile handed out", "username", ws.Subject, "serial", f.Device.Serial)
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(raw)
}
