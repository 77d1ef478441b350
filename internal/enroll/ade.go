package enroll

import (
	"context"
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
	d, err := h.ade.DEPDevice(r.Context(), info.Serial)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		const msg = "this serial number is not assigned to this server in Apple Business Manager"
		h.refuse(w, r, storage.KindADE, info, "device_not_assigned", msg, msg)
		return
	case err != nil:
		apijson.Fail(w, r, h.log, err)
		return
	case d.TokenID != token || d.ProfileID != profile || d.Status == storage.DEPRemoved:
		const msg = "this device is not assigned this enrollment profile"
		h.refuse(w, r, storage.KindADE, info, "device_not_assigned", msg, msg)
		return
	}
	h.serveProfile(w, r, profileSpec{
		challenge: scep.ChallengeSpec{Kind: storage.KindADE, Ref: token + "/" + profile, ForUDID: info.UDID,
			ForSerial: info.Serial, AppleVerified: info.unverified == nil, TTL: OTAChallengeTTL},
		filename: "orchard-enroll.mobileconfig",
		commit:   func(ctx context.Context, ch *storage.Challenge) error { return h.store.PutChallenge(ctx, ch) },
	})
}
