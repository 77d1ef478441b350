package dep

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/orchardmdm/orchard/storage"
)

// ProfileView is a stored profile as the API shows it.
type ProfileView struct {
	ID        string `json:"id"`
	TokenID   string `json:"token_id"`
	AppleUUID string `json:"apple_uuid,omitempty"`
	ProfileSpec
	// Note is set when devices were re-assigned after an edit.
	Note       string `json:"note,omitempty"`
	Reassigned int    `json:"reassigned,omitempty"`
}

func viewProfile(p storage.DEPProfile, defaultID string) ProfileView {
	return ProfileView{ID: p.ID, TokenID: p.TokenID, AppleUUID: p.AppleUUID, ProfileSpec: SpecOf(p, p.ID == defaultID)}
}

// define sends a profile to Apple and records its new UUID in p.
func (s *Service) define(ctx context.Context, c *Client, p *storage.DEPProfile) error {
	prof := AppleProfile(*p, s.enrollURL(p.TokenID, p.ID))
	for _, der := range s.anchors {
		if b64 := base64.StdEncoding.EncodeToString(der); !slices.Contains(prof.AnchorCerts, b64) {
			prof.AnchorCerts = append(prof.AnchorCerts, b64)
		}
	}
	uuid, _, err := c.DefineProfile(ctx, prof)
	if err != nil {
		return fmt.Errorf("defining the profile at Apple: %w", err)
	}
	p.AppleUUID, p.DefinedAt = uuid, s.clock.Now()
	return nil
}

func (s *Service) usableToken(ctx context.Context, tokenID string) (storage.DEPToken, *Client, error) {
	t, err := s.store.DEPToken(ctx, tokenID)
	if err != nil {
		return t, nil, err
	}
	if t.Status != storage.DEPTokenOK {
		return t, nil, &TokenUnusableError{t.StatusReason}
	}
	c, err := s.client(t)
	return t, c, err
}

// CreateProfile validates spec, defines the profile at Apple and stores it.
// With spec.Default it becomes the token's default profile and is assigned
// to the token's devices that have no profile.
func (s *Service) CreateProfile(ctx context.Context, tokenID string, spec ProfileSpec) (ProfileView, error) {
	if err := spec.Validate(); err != nil {
		return ProfileView{}, err
	}
	_, c, err := s.usableToken(ctx, tokenID)
	if err != nil {
		return ProfileView{}, err
	}
	existing, err := s.store.DEPProfiles(ctx, tokenID)
	if err != nil {
		return ProfileView{}, err
	}
	if len(existing) >= MaxProfilesPerToken {
		return ProfileView{}, fmt.Errorf("at most %d profiles per token: %w", MaxProfilesPerToken, storage.ErrLimit)
	}
	now := s.clock.Now()
	p := spec.Record()
	p.ID, p.TokenID, p.CreatedAt, p.UpdatedAt = newID(), tokenID, now, now
	if err := s.define(ctx, c, &p); err != nil {
		return ProfileView{}, err
	}
	if err := s.store.CreateDEPProfile(ctx, p, MaxProfilesPerToken); err != nil {
		return ProfileView{}, err
	}
	v := viewProfile(p, "")
	if spec.Default {
		n, err := s.makeDefault(ctx, c, p)
		if err != nil {
			return v, err
		}
		v.Default, v.Reassigned = true, n
	}
	return v, nil
}

// makeDefault sets p as its token's default and assigns it to the token's
// devices that have no profile.
func (s *Service) makeDefault(ctx context.Context, c *Client, p storage.DEPProfile) (int, error) {
	if _, err := s.store.UpdateDEPToken(ctx, p.TokenID, func(t *storage.DEPToken) error {
		t.DefaultProfileID = p.ID
		return nil
	}); err != nil {
		return 0, err
	}
	missing, err := s.store.DEPDevices(ctx, storage.DEPDeviceFilter{TokenID: p.TokenID, Status: storage.DEPMissingProfile})
	if err != nil {
		return 0, err
	}
	now := s.clock.Now()
	serials := make([]string, 0, len(missing))
	for _, d := range missing {
		if !now.Before(d.AssignRetryAfter) {
			serials = append(serials, d.Serial)
		}
	}
	ar, err := s.assign(ctx, c, p, serials)
	return len(ar.Assigned), err
}

// resetNote is attached to edited profiles.
const resetNote = "devices get the changed profile only after they are erased and run Setup Assistant again"

// UpdateProfile replaces a profile's settings, redefines it at Apple and
// re-assigns the devices that had it.
func (s *Service) UpdateProfile(ctx context.Context, tokenID, id string, spec ProfileSpec) (ProfileView, error) {
	if err := spec.Validate(); err != nil {
		return ProfileView{}, err
	}
	t, c, err := s.usableToken(ctx, tokenID)
	if err != nil {
		return ProfileView{}, err
	}
	old, err := s.store.DEPProfile(ctx, tokenID, id)
	if err != nil {
		return ProfileView{}, err
	}
	p := spec.Record()
	p.ID, p.TokenID, p.CreatedAt, p.UpdatedAt = id, tokenID, old.CreatedAt, s.clock.Now()
	if err := s.define(ctx, c, &p); err != nil {
		return ProfileView{}, err
	}
	if err := s.store.PutDEPProfile(ctx, p); err != nil {
		return ProfileView{}, err
	}
	holders, err := s.store.DEPDevices(ctx, storage.DEPDeviceFilter{TokenID: tokenID, ProfileID: id})
	if err != nil {
		return ProfileView{}, err
	}
	serials := make([]string, 0, len(holders))
	for _, d := range holders {
		if d.Status != storage.DEPRemoved {
			serials = append(serials, d.Serial)
		}
	}
	ar, err := s.assign(ctx, c, p, serials)
	v := viewProfile(p, t.DefaultProfileID)
	v.Reassigned, v.Note = len(ar.Assigned), resetNote
	if err != nil {
		return v, err
	}
	switch {
	case spec.Default && t.DefaultProfileID != id:
		n, err := s.makeDefault(ctx, c, p)
		v.Default, v.Reassigned = true, v.Reassigned+n
		return v, err
	case !spec.Default && t.DefaultProfileID == id:
		_, err := s.store.UpdateDEPToken(ctx, tokenID, func(t *storage.DEPToken) error {
			if t.DefaultProfileID == id {
				t.DefaultProfileID = ""
			}
			return nil
		})
		v.Default = false
		return v, err
	}
	return v, nil
}

// Profile returns one profile.
func (s *Service) Profile(ctx context.Context, tokenID, id string) (ProfileView, error) {
	t, err := s.store.DEPToken(ctx, tokenID)
	if err != nil {
		return ProfileView{}, err
	}
	p, err := s.store.DEPProfile(ctx, tokenID, id)
	if err != nil {
		return ProfileView{}, err
	}
	return viewProfile(p, t.DefaultProfileID), nil
}

// Profiles lists a token's profiles.
func (s *Service) Profiles(ctx context.Context, tokenID string) ([]ProfileView, error) {
	t, err := s.store.DEPToken(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	ps, err := s.store.DEPProfiles(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	out := make([]ProfileView, 0, len(ps))
	for _, p := range ps {
		out = append(out, viewProfile(p, t.DefaultProfileID))
	}
	return out, nil
}

// DeleteProfile deletes a profile that is not its token's default.
func (s *Service) DeleteProfile(ctx context.Context, tokenID, id string) error {
	return s.store.DeleteDEPProfile(ctx, tokenID, id)
}

// AssignProfile assigns a profile to chosen serials of its token, in
// batches of MaxBatch. Serials unknown under the token are refused before
// anything is sent.
func (s *Service) AssignProfile(ctx context.Context, tokenID, id string, serials []string) (AssignResult, error) {
	if len(serials) == 0 {
		return AssignResult{}, invalid("devices: list at least one serial number")
	}
	_, c, err := s.usableToken(ctx, tokenID)
	if err != nil {
		return AssignResult{}, err
	}
	p, err := s.store.DEPProfile(ctx, tokenID, id)
	if err != nil {
		return AssignResult{}, err
	}
	seen := map[string]bool{}
	uniq := serials[:0:0]
	for _, serial := range serials {
		if seen[serial] {
			continue
		}
		seen[serial] = true
		d, err := s.store.DEPDevice(ctx, serial)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && d.TokenID != tokenID) {
			return AssignResult{}, invalid("device %s is not assigned to this token", serial)
		}
		if err != nil {
			return AssignResult{}, err
		}
		uniq = append(uniq, serial)
	}
	return s.assign(ctx, c, p, uniq)
}
