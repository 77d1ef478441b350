package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// ADEDevices finds the devices Apple Business Manager assigned to Orchard.
type ADEDevices interface {
	DEPDevice(ctx context.Context, serial string) (storage.DEPDevice, error)
	DEPProfile(ctx context.Context, tokenID, id string) (storage.DEPProfile, error)
}

// WithADE serves the Automated Device Enrollment profile URL, for the
// devices ADE sync brought in.
func WithADE(devices ADEDevices) Option { return func(h *Handler) { h.ade = devices } }

// ADEEnrollURL is the enrollment URL Orchard puts in the ADE profiles it
// defines at Apple; devices POST their signed MachineInfo to it during
// Setup Assistant.
func ADEEnrollURL(publicURL, tokenID, profileID string) string {
	q := url.Values{"token": {tokenID}, "profile": {profileID}}
	return publicURL + "/enroll/ade?" + q.Encode()
}

// WriteUpdateRequired answers Apple's 403 that makes a Setup Assistant
// device install a software update before it enrolls.
func WriteUpdateRequired(w http.ResponseWriter, e *UpdateRequiredError) {
	details := map[string]string{"OSVersion": e.Version}
	if e.Build != "" {
		details["BuildVersion"] = e.Build
	}
	body, _ := json.Marshal(map[string]any{
		"code":        "com.apple.softwareupdate.required",
		"description": "software update to " + e.Version + " required before enrollment",
		"details":     details,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write(body)
}

// adeProfile answers a device in Setup Assistant: only a serial that ADE
// sync brought in under that token, with that profile assigned, gets an
// enrollment profile, with a single-use challenge bound to its serial and
// UDID (marked Apple-verified when its MachineInfo is).
func (h *Handler) adeProfile(w http.ResponseWriter, r *http.Request) {
	if !h.pushCertReady(w) { // before the body: nothing can be served anyway
		return
	}
	info, ok := h.readMachineInfo(w, r, storage.KindADE)
	if !ok {
		return
	}
	token, profile := r.URL.Query().Get("token"), r.URL.Query().Get("profile")
	var refused *RefusedError
	var update *UpdateRequiredError
	p, err := h.adeAssigned(r.Context(), info, token, profile)
	if err == nil && p.UserAffinity == storage.AffinityModernAuth {
		// Its user signs in on configuration_web_url, which answers the
		// profile; a profile from here would skip the sign-in.
		const msg = "this device's enrollment profile requires signing in: Setup Assistant shows the sign-in page"
		err = h.refused(r.Context(), info, "signin_required", msg, msg)
	}
	switch {
	case errors.As(err, &update):
		WriteUpdateRequired(w, update)
		return
	case errors.As(err, &refused):
		h.fail(w, http.StatusForbidden, refused)
		return
	case err != nil:
		apijson.Fail(w, r, h.log, err)
		return
	}
	h.serveProfile(w, r, profileSpec{
		challenge: scep.ChallengeSpec{Kind: storage.KindADE, Ref: token + "/" + profile, ForUDID: info.UDID,
			ForSerial: info.Serial, AppleVerified: info.unverified == nil, TTL: OTAChallengeTTL},
		filename: "orchard-enroll.mobileconfig",
		commit:   func(ctx context.Context, ch *storage.Challenge) error { return h.store.PutChallenge(ctx, ch) },
	})
}
