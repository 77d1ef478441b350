package storage

import (
	"context"
	"time"
)

// ProfileState is where one configuration profile stands on one channel.
type ProfileState string

const (
	ProfilePending  ProfileState = "pending"  // InstallProfile queued
	ProfileSent     ProfileState = "sent"     // the device fetched it
	ProfileVerified ProfileState = "verified" // seen in ProfileList with the right identifier and UUID
	ProfileFailed   ProfileState = "failed"   // refused twice, or removed by the user (report mode)
	ProfileRemoving ProfileState = "removing" // RemoveProfile queued
	ProfileRemoved  ProfileState = "removed"  // gone from the device
)

// Profile is one configuration profile of the library. ID is its top-level
// PayloadIdentifier, unique in the library.
type Profile struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name,omitempty"`
	Version     int       `json:"version"` // the current version, 1..
	UUID        string    `json:"uuid"`    // PayloadUUID of the current version
	Reinstall   bool      `json:"reinstall"`
	Scope       []byte    `json:"scope,omitempty"` // a scope.Scope as JSON, opaque here
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ProfileVersion is one uploaded version of a profile; versions are never
// rewritten.
type ProfileVersion struct {
	ProfileID string    `json:"profile_id"`
	Version   int       `json:"version"`
	UUID      string    `json:"uuid"`
	Data      []byte    `json:"data"` // what is sent in InstallProfile (signed or plain)
	Signed    bool      `json:"signed"`
	CreatedAt time.Time `json:"created_at"`
}

// ChannelProfile is one profile's state on one channel.
type ChannelProfile struct {
	ProfileID   string       `json:"profile_id"`
	ChannelID   string       `json:"channel_id"`
	Version     int          `json:"version"`
	UUID        string       `json:"uuid"`
	State       ProfileState `json:"state"`
	CommandUUID string       `json:"command_uuid,omitempty"`
	Attempts    int          `json:"attempts"`         // installs sent for this version
	Errors      []string     `json:"errors,omitempty"` // the error chain of the last failure
	UpdatedAt   time.Time    `json:"updated_at"`
}

// ProfileStore keeps the profile library and per-channel profile states.
type ProfileStore interface {
	// PutProfile writes p and, when v is not nil, its new version v in one
	// write. A new version must be p.Version and the next one after the
	// stored profile's (or 1 for a new profile): else ErrConflict.
	PutProfile(ctx context.Context, p *Profile, v *ProfileVersion) error
	// GetProfile returns a profile, or ErrNotFound.
	GetProfile(ctx context.Context, id string) (*Profile, error)
	// GetProfileVersion returns one version, or ErrNotFound.
	GetProfileVersion(ctx context.Context, id string, version int) (*ProfileVersion, error)
	// ListProfiles returns profiles ordered by ID, after the given ID, at most limit (<= 0: all).
	ListProfiles(ctx context.Context, after string, limit int) ([]Profile, error)

	// ChannelProfiles returns the states of every profile on a channel,
	// ordered by profile ID (none: empty, no error).
	ChannelProfiles(ctx context.Context, channelID string) ([]ChannelProfile, error)
	// PutChannelProfiles writes states, any channels and profiles, in one
	// write; a state replaces the one of the same profile and channel.
	PutChannelProfiles(ctx context.Context, states []ChannelProfile) error
	// ProfileStates returns the states of one profile on every channel,
	// ordered by channel ID, after the given channel, at most limit (<= 0: all).
	ProfileStates(ctx context.Context, profileID, after string, limit int) ([]ChannelProfile, error)
}
