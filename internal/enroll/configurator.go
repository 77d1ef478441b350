package enroll

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// AdminProfile serves GET /v1/enrollment/profile.
func (h *Handler) AdminProfile(w http.ResponseWriter, r *http.Request) {
	h.serveProfile(w, r, profileSpec{
		challenge: scep.ChallengeSpec{Kind: storage.KindProfile, Ref: "admin", TTL: OTAChallengeTTL},
		filename:  "orchard-enroll.mobileconfig",
		commit:    h.store.PutChallenge,
	})
}

type configuratorRequest struct {
	Name         string `json:"name"`
	Description  string `json:"description"`
	UserAffinity bool   `json:"user_affinity"`
}

// configuratorView is a profile with what the admin exports from it.
type configuratorView struct {
	storage.ConfiguratorProfile
	// SetupAssistantURL is the enrollment URL to give Apple Configurator.
	SetupAssistantURL string `json:"setup_assistant_url"`
	// DirectEnrollment is the .mobileconfig download path, or why there is none.
	DirectEnrollmentURL  string `json:"direct_enrollment_url,omitempty"`
	DirectEnrollmentNote string `json:"direct_enrollment_note,omitempty"`
}

const noDirectWithAffinity = "direct enrollment requires a profile without user affinity"

func (h *Handler) view(p storage.ConfiguratorProfile) configuratorView {
	v := configuratorView{ConfiguratorProfile: p, SetupAssistantURL: h.cfg.PublicURL + "/enroll/configurator/" + p.ID}
	if p.UserAffinity {
		v.DirectEnrollmentNote = noDirectWithAffinity
	} else {
		v.DirectEnrollmentURL = "/v1/configurator/profiles/" + p.ID + "/mobileconfig"
	}
	return v
}

// CreateConfigurator serves POST /v1/configurator/profiles.
func (h *Handler) CreateConfigurator(w http.ResponseWriter, r *http.Request) {
	if !h.pushCertReady(w) {
		return
	}
	var req configuratorRequest
	if !h.decodeJSON(w, r, &req) {
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "":
		h.fail(w, http.StatusBadRequest, errors.New("name is required"))
		return
	case len(req.Name) > 128 || len(req.Description) > 1024:
		h.fail(w, http.StatusBadRequest, errors.New("name (128) or description (1024 characters) too long"))
		return
	}
	p := storage.ConfiguratorProfile{ID: randomHex(8), Name: req.Name, Description: req.Description,
		UserAffinity: req.UserAffinity, CreatedAt: h.now()}
	if err := h.store.PutConfiguratorProfile(r.Context(), &p); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusCreated, h.view(p))
}

// ListConfigurators serves GET /v1/configurator/profiles.
func (h *Handler) ListConfigurators(w http.ResponseWriter, r *http.Request) {
	ps, err := h.store.ListConfiguratorProfiles(r.Context())
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	views := make([]configuratorView, 0, len(ps))
	for _, p := range ps {
		views = append(views, h.view(p))
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"profiles": views})
}

// ShowConfigurator serves GET /v1/configurator/profiles/{id}.
func (h *Handler) ShowConfigurator(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.ConfiguratorProfile(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusOK, h.view(*p))
}

// DeleteConfigurator serves DELETE /v1/configurator/profiles/{id}.
func (h *Handler) DeleteConfigurator(w http.ResponseWriter, r *http.Request) {
	if err := h.store.DeleteConfiguratorProfile(r.Context(), r.PathValue("id"), h.now()); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DirectEnrollmentProfile answers a .mobileconfig with its own multi-use
// challenge valid 14 days from this download. The expiry is the
// challenge's, on the server: a PayloadExpirationDate in the profile
// would make enrolled devices show an expired MDM profile.
func (h *Handler) DirectEnrollmentProfile(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.ConfiguratorProfile(r.Context(), r.PathValue("id"))
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	if p.UserAffinity {
		h.fail(w, http.StatusConflict, errors.New(noDirectWithAffinity))
		return
	}
	h.serveProfile(w, r, profileSpec{
		challenge: scep.ChallengeSpec{Kind: storage.KindConfigurator, Ref: p.ID, MultiUse: true, TTL: DirectEnrollmentTTL},
		filename:  "orchard-" + p.ID + ".mobileconfig",
		commit:    h.store.PutChallenge,
	})
}

// download is a challenge as the admin sees it (never the secret).
type download struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Uses      int       `json:"uses"`
	Revoked   bool      `json:"revoked"`
	Expired   bool      `json:"expired"`
}

// ListDownloads serves GET /v1/configurator/profiles/{id}/downloads.
func (h *Handler) ListDownloads(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.store.ConfiguratorProfile(r.Context(), id); err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	chs, err := h.store.ChallengesFor(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	now := h.now()
	out := []download{}
	for _, c := range chs {
		if !c.MultiUse {
			continue // Setup Assistant challenges are not downloads
		}
		out = append(out, download{ID: c.ID, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, Uses: c.Uses,
			Revoked: !c.RevokedAt.IsZero(), Expired: !now.Before(c.ExpiresAt)})
	}
	apijson.WriteJSON(w, http.StatusOK, map[string]any{"downloads": out})
}

// RevokeDownload serves DELETE /v1/configurator/profiles/{id}/downloads/{download}.
func (h *Handler) RevokeDownload(w http.ResponseWriter, r *http.Request) {
	ch, err := h.store.Challenge(r.Context(), r.PathValue("download"))
	if err == nil && ch.Ref != r.PathValue("id") {
		err = storage.ErrNotFound
	}
	if err == nil {
		err = h.store.RevokeChallenge(r.Context(), ch.ID, h.now())
	}
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setupAssistantProfile answers a device in Setup Assistant: its signed
// MachineInfo must name a serial assigned to this profile.
func (h *Handler) setupAssistantProfile(w http.ResponseWriter, r *http.Request) {
	if !h.pushCertReady(w) { // before the body: nothing can be served anyway
		return
	}
	info, ok := h.readMachineInfo(w, r, storage.KindConfigurator)
	if !ok {
		return
	}
	id := r.PathValue("id")
	p, err := h.store.ConfiguratorProfile(r.Context(), id)
	if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	a, err := h.store.Serial(r.Context(), info.Serial)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && a.ProfileID != p.ID) {
		const msg = "this device's serial number is not assigned to this profile"
		h.refuse(w, r, storage.KindConfigurator, info, "device_not_assigned", msg, msg)
		return
	} else if err != nil {
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.serveProfile(w, r, profileSpec{
		challenge: scep.ChallengeSpec{Kind: storage.KindConfigurator, Ref: p.ID, ForUDID: info.UDID,
			ForSerial: info.Serial, AppleVerified: info.unverified == nil, TTL: OTAChallengeTTL},
		filename: "orchard-enroll.mobileconfig",
		commit:   func(ctx context.Context, ch *storage.Challenge) error { return h.store.PutChallenge(ctx, ch) },
	})
}
