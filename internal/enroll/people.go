package enroll

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/osversion"
	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/storage"
)

// What the pages people open (internal/portal) ask of enrollment: links
// looked up without spending them, profiles for signed-in users, and the
// Setup Assistant web view's MachineInfo. The pages render every error
// themselves, so these answer errors, never HTTP.

// Errors the pages turn into what a person reads.
var (
	// ErrNoPushCert: no profile can go out before a push certificate.
	ErrNoPushCert = errNoPushCert
	// ErrLinkGone: an invitation link already used or expired.
	ErrLinkGone = errors.New("this enrollment link was already used or has expired")
	// ErrBadMachineInfo: the device info is not a signed MachineInfo.
	ErrBadMachineInfo = errors.New("bad MachineInfo")
)

// RefusedError is a Setup Assistant refusal, already recorded in the
// enrollment-failures report; Reason is what the device is told.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// UpdateRequiredError: the device runs an OS below the ADE profile's
// minimum and can update in Setup Assistant (Apple's
// com.apple.softwareupdate.required answer).
type UpdateRequiredError struct{ Version, Build string }

func (e *UpdateRequiredError) Error() string {
	return "a software update to " + e.Version + " is required before enrollment"
}

// MachineInfo is a Setup Assistant device, from its verified MachineInfo.
type MachineInfo struct {
	UDID, Serial, Product, Version, OSVersion string
	CanRequestSoftwareUpdate                  bool
	// AppleVerified: the signature chains to Apple's root.
	AppleVerified bool
}

// LimitTokens rations a route that looks links up per source address,
// like GET /enroll/{token} (nil limiter: unlimited). A guess spends only
// through SpendGuess.
func (h *Handler) LimitTokens(next http.HandlerFunc) http.HandlerFunc {
	return h.limited(h.tokenLimit, false, next)
}

// LimitMachineInfo rations a route that checks MachineInfo: every request spends.
func (h *Handler) LimitMachineInfo(next http.HandlerFunc) http.HandlerFunc {
	return h.limited(h.infoLimit, true, next)
}

// SpendGuess charges the request's source for an unknown link.
func (h *Handler) SpendGuess(r *http.Request) {
	if h.tokenLimit != nil {
		h.tokenLimit.Spend(ratelimit.SourceKey(r))
	}
}

// Invitation looks up the link with that token without spending it:
// storage.ErrNotFound for an unknown one, ErrLinkGone for a used or
// expired one.
func (h *Handler) Invitation(ctx context.Context, token string) (*storage.Invitation, error) {
	inv, err := h.store.InvitationByToken(ctx, tokenHash(token))
	if err != nil {
		return nil, err
	}
	if !inv.SpentAt.IsZero() || !h.now().Before(inv.ExpiresAt) {
		return nil, ErrLinkGone
	}
	return inv, nil
}

// InvitationProfile spends the link and answers its signed profile, whose
// single-use challenge is consumed only at SCEP.
func (h *Handler) InvitationProfile(ctx context.Context, token string) ([]byte, error) {
	hash := tokenHash(token)
	return h.issue(ctx, scep.ChallengeSpec{Kind: storage.KindInvitation, TTL: OTAChallengeTTL},
		func(ctx context.Context, ch *storage.Challenge) error {
			_, err := h.store.SpendInvitation(ctx, hash, h.now(), ch)
			if errors.Is(err, storage.ErrGone) {
				return ErrLinkGone
			}
			return err
		})
}

// UserProfile answers a signed profile for a user signed in to the
// portal: its single-use challenge carries the user (who becomes the
// device's primary user at Authenticate) and the category they chose.
// session is the portal's enrollment session, recorded as enrolled when
// the device enrolls.
func (h *Handler) UserProfile(ctx context.Context, username, category, session string) ([]byte, error) {
	spec := scep.ChallengeSpec{Kind: storage.KindPortal, Ref: username, User: username, ForCategory: category, ForSession: session,
		TTL: OTAChallengeTTL}
	return h.issue(ctx, spec, func(ctx context.Context, ch *storage.Challenge) error { return h.store.PutChallenge(ctx, ch) })
}

// issue builds and signs first, so a failure there spends nothing.
func (h *Handler) issue(ctx context.Context, spec scep.ChallengeSpec, commit func(context.Context, *storage.Challenge) error) ([]byte, error) {
	if h.cfg.Topic() == "" {
		return nil, ErrNoPushCert
	}
	secret, ch, err := scep.NewChallenge(spec, h.now())
	if err != nil {
		return nil, err
	}
	raw, err := h.buildProfile(secret, spec)
	if err != nil {
		return nil, err
	}
	if err := commit(ctx, ch); err != nil {
		return nil, err
	}
	return raw, nil
}

// SetupAssistantDevice reads the x-apple-aspen-deviceinfo header of a
// Setup Assistant web view (base64 of a CMS-signed MachineInfo) and checks
// that ABM assigned that serial this server's token and profile, and that
// its OS is recent enough. Refusals are recorded (RefusedError,
// UpdateRequiredError); ErrBadMachineInfo for a header that is no signed
// MachineInfo.
func (h *Handler) SetupAssistantDevice(ctx context.Context, header, tokenID, profileID string) (*MachineInfo, error) {
	if h.ade == nil {
		return nil, &RefusedError{Reason: "this server does not serve Automated Device Enrollment"}
	}
	if header == "" || len(header) > maxMachineInfoBody*4/3+4 {
		return nil, fmt.Errorf("%w: no x-apple-aspen-deviceinfo header", ErrBadMachineInfo)
	}
	raw, err := decodeBase64(header)
	if err != nil {
		return nil, fmt.Errorf("%w: x-apple-aspen-deviceinfo is not base64", ErrBadMachineInfo)
	}
	info, err := parseMachineInfo(raw, h.infoRoots, h.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMachineInfo, err)
	}
	if info.unverified != nil && !h.insecureInfo {
		const msg = "MachineInfo is not signed by an Apple device certificate"
		return nil, h.refused(ctx, info, "machineinfo_invalid", msg, "MachineInfo not verified against Apple's root: "+oneLine(info.unverified.Error()))
	}
	if info.unverified != nil {
		h.log.Warn("enroll: accepting MachineInfo not verified against Apple's root (--insecure-machineinfo is on)",
			"method", storage.KindADE, "serial", info.Serial, "udid", info.UDID)
	}
	if h.policy != nil {
		d, err := h.policy.Decide(ctx, PolicyAttempt{Method: storage.KindADE, Platform: mdm.Platform(info.Product, ""),
			OSVersion: info.OSVersion, DeviceID: info.UDID, Serial: info.Serial})
		if err != nil {
			return nil, err
		}
		if !d.Allowed {
			msg := d.Message + "; " + d.Remedy
			h.recordBy(ctx, info, d, msg)
			return nil, &RefusedError{Reason: msg}
		}
	}
	if _, err := h.adeAssigned(ctx, info, tokenID, profileID); err != nil {
		return nil, err
	}
	return &MachineInfo{UDID: info.UDID, Serial: info.Serial, Product: info.Product, Version: info.Version,
		OSVersion: info.OSVersion, CanRequestSoftwareUpdate: info.CanRequestSoftwareUpdate, AppleVerified: info.unverified == nil}, nil
}

// ADEUserProfile answers the profile for a Setup Assistant device whose
// user signed in: bound to its serial and UDID, and to the user.
func (h *Handler) ADEUserProfile(ctx context.Context, m *MachineInfo, tokenID, profileID, username, category, session string) ([]byte, error) {
	spec := scep.ChallengeSpec{Kind: storage.KindADE, Ref: tokenID + "/" + profileID, ForUDID: m.UDID, ForSerial: m.Serial,
		AppleVerified: m.AppleVerified, User: username, ForCategory: category, ForSession: session, TTL: OTAChallengeTTL}
	return h.issue(ctx, spec, func(ctx context.Context, ch *storage.Challenge) error { return h.store.PutChallenge(ctx, ch) })
}

// decodeBase64 reads standard base64, padded or not, ignoring line breaks.
func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("\r", "", "\n", "", " ", "").Replace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// refused records a Setup Assistant refusal (code is its stable reason
// code) and returns it.
func (h *Handler) refused(ctx context.Context, info *machineInfo, code, msg, why string) error {
	h.recordBy(ctx, info, PolicyDecision{Reason: code}, why)
	h.log.Warn("enroll: Setup Assistant enrollment refused", "method", storage.KindADE, "serial", info.Serial, "udid", info.UDID, "why", why)
	return &RefusedError{Reason: msg}
}

func (h *Handler) recordBy(ctx context.Context, info *machineInfo, d PolicyDecision, why string) {
	f := storage.EnrollmentFailure{At: h.now(), UDID: info.UDID, Serial: info.Serial, Method: storage.KindADE, Reason: why,
		Code: d.Reason, Stage: "machineinfo", Platform: mdm.Platform(info.Product, ""), OSVersion: info.OSVersion,
		Policy: d.Policy, Rule: d.Rule}
	if err := h.store.RecordEnrollmentFailure(ctx, &f); err != nil {
		h.log.Error("enroll: record enrollment failure", "err", err)
	}
}

// adeAssigned checks that ABM assigned the device this token and profile,
// and that it runs the profile's minimum OS; it answers the profile.
func (h *Handler) adeAssigned(ctx context.Context, info *machineInfo, tokenID, profileID string) (storage.DEPProfile, error) {
	d, err := h.ade.DEPDevice(ctx, info.Serial)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		const msg = "this serial number is not assigned to this server in Apple Business Manager"
		return storage.DEPProfile{}, h.refused(ctx, info, "device_not_assigned", msg, msg)
	case err != nil:
		return storage.DEPProfile{}, err
	case d.TokenID != tokenID || d.ProfileID != profileID || d.Status == storage.DEPRemoved:
		const msg = "this device is not assigned this enrollment profile"
		return storage.DEPProfile{}, h.refused(ctx, info, "device_not_assigned", msg, msg)
	}
	p, err := h.ade.DEPProfile(ctx, tokenID, profileID)
	if errors.Is(err, storage.ErrNotFound) {
		const msg = "this device's enrollment profile no longer exists on this server"
		return p, h.refused(ctx, info, "device_not_assigned", msg, msg)
	}
	if err != nil {
		return p, err
	}
	min, ok := p.MinimumOS[platformOf(info.Product)]
	if !ok || !versionBelow(info.OSVersion, min.Version) {
		return p, nil
	}
	if info.CanRequestSoftwareUpdate {
		h.recordBy(ctx, info, PolicyDecision{Reason: "os_update_required"}, fmt.Sprintf("runs %s, needs %s: told to update in Setup Assistant", oneLine(info.OSVersion), min.Version))
		h.log.Info("enroll: Setup Assistant device must update first", "serial", info.Serial, "os_version", info.OSVersion, "minimum", min.Version)
		return p, &UpdateRequiredError{Version: min.Version, Build: min.Build}
	}
	msg := fmt.Sprintf("this device runs %s and needs %s or later to enroll; update it, then start again", oneLine(info.OSVersion), min.Version)
	return p, h.refused(ctx, info, "os_update_required", msg, msg+" (the device cannot update in Setup Assistant)")
}

// platformOf is the minimum-OS platform of a MachineInfo PRODUCT
// ("iPhone14,2", "iPad13,4", "MacBookPro18,1", "Mac14,2").
func platformOf(product string) string {
	if strings.HasPrefix(product, "iPhone") || strings.HasPrefix(product, "iPad") || strings.HasPrefix(product, "iPod") {
		return "iOS"
	}
	return "macOS"
}

// versionBelow says whether a device's version is below an ADE profile's
// minimum, through the one OS version reading (mdm/osversion) the
// enrollment policy and software-update enforcement use; an unreadable
// version counts as below, so it is never let through.
func versionBelow(have, want string) bool {
	ok, err := osversion.AtLeast(have, want)
	return err != nil || !ok
}
