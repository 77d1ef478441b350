package portal

import (
	"errors"
	"net/http"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/storage"
)

// invitationPage serves GET and HEAD /enroll/{token}: what the link is and
// a button. It uses nothing, so a link scanner or a chat preview that
// fetches it leaves it working.
func (p *Portal) invitationPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	inv, err := p.cfg.Enroll.Invitation(r.Context(), token)
	if !p.invitationError(w, r, err) {
		return
	}
	p.render(w, r, http.StatusOK, "invitation", "Enroll your device", "", view{Label: inv.Label,
		Expires: inv.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC"), Action: "/enroll/" + token})
}

// invitationProfile serves POST /enroll/{token}, the landing page's
// button (its CSRF token checked by the site): it spends the link and
// answers the profile.
func (p *Portal) invitationProfile(w http.ResponseWriter, r *http.Request) {
	raw, err := p.cfg.Enroll.InvitationProfile(r.Context(), r.PathValue("token"))
	if !p.invitationError(w, r, err) {
		return
	}
	writeProfile(w, raw)
}

// invitationError renders a link's refusal; it reports whether err is nil.
func (p *Portal) invitationError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, storage.ErrNotFound):
		p.cfg.Enroll.SpendGuess(r) // only unknown links spend the address's budget
		p.message(w, r, http.StatusNotFound, "Link not found", "This enrollment link is not known here.",
			"Check that you opened the whole link, or ask your IT team for a new one.")
	case errors.Is(err, enroll.ErrLinkGone):
		p.message(w, r, http.StatusGone, "This link was already used", "This enrollment link was already used or has expired.",
			"Each link works once. Ask your IT team for a new one, or sign in to the enrollment portal at /portal.")
	case errors.Is(err, enroll.ErrNoPushCert):
		p.message(w, r, http.StatusConflict, "Not ready yet", "This server cannot enroll devices yet.",
			"Your IT team must upload an MDM push certificate first; the link still works afterwards.")
	default:
		p.internal(w, r, err)
	}
	return false
}
