package storage

import (
	"context"
	"time"
)

// DirectoryUser is one person in Orchard's local directory. Username is the key:
// callers normalise it (internal/directory lowercases it) before storing.
// PasswordHash is a self-describing argon2id string; it never leaves the
// server (the admin API shows HasPassword instead).
type DirectoryUser struct {
	Username     string `json:"username"`
	DisplayName  string `json:"display_name,omitempty"`
	Email        string `json:"email,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
	Disabled     bool   `json:"disabled,omitempty"`
	// DEM: a device enrollment manager, who may enroll up to
	// internal/policy's DEM limit of corporate, userless devices.
	DEM       bool      `json:"dem,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Group is a static group of users.
type Group struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// DirectoryStore keeps users, groups and group membership.
type DirectoryStore interface {
	// CreateUsers adds users in one write: all of them or, when any
	// username is taken or repeated, none (ErrConflict).
	CreateUsers(ctx context.Context, users []DirectoryUser) error
	// User returns a user, or ErrNotFound.
	User(ctx context.Context, username string) (*DirectoryUser, error)
	// UpdateUser applies fn to a user in one write and returns the record
	// written; ErrNotFound when there is none. fn may run more than once and
	// must only change u; the username cannot change. When fn fails nothing
	// is written and its error is returned.
	UpdateUser(ctx context.Context, username string, fn func(u *DirectoryUser) error) (*DirectoryUser, error)
	// ListUsers returns users ordered by username, after the given one, at
	// most limit (limit <= 0: all).
	ListUsers(ctx context.Context, after string, limit int) ([]DirectoryUser, error)

	// CreateGroup adds a group; ErrConflict when the name is taken.
	CreateGroup(ctx context.Context, g *Group) error
	// Group returns a group, or ErrNotFound.
	Group(ctx context.Context, name string) (*Group, error)
	// ListGroups returns groups ordered by name, after the given one, at
	// most limit (limit <= 0: all).
	ListGroups(ctx context.Context, after string, limit int) ([]Group, error)
	// DeleteGroup removes a group and its memberships; ErrNotFound when
	// there is none. The users stay.
	DeleteGroup(ctx context.Context, name string) error
	// AddGroupMembers adds users to a group in one write: ErrNotFound, and
	// nothing written, when the group or any user does not exist. Adding a
	// member again is no change.
	AddGroupMembers(ctx context.Context, group string, usernames []string) error
	// RemoveGroupMember removes a user from a group; ErrNotFound when the
	// user is not a member.
	RemoveGroupMember(ctx context.Context, group, username string) error
	// GroupMembers returns a group's usernames in order, after the given
	// one, at most limit (limit <= 0: all); ErrNotFound for an unknown group.
	GroupMembers(ctx context.Context, group, after string, limit int) ([]string, error)
	// UserGroups returns the names of the groups a user is in, in order.
	UserGroups(ctx context.Context, username string) ([]string, error)

	// SetPrimaryUser makes username the primary user of a device channel,
	// replacing any other; "" clears it. ErrNotFound, and nothing written,
	// for an unknown user. The record outlives re-enrollments of the device.
	SetPrimaryUser(ctx context.Context, deviceID, username string) error
	// PrimaryUser returns a device's primary user, "" when it has none.
	PrimaryUser(ctx context.Context, deviceID string) (string, error)
	// UserDevices returns the devices whose primary user is username, in order.
	UserDevices(ctx context.Context, username string) ([]string, error)
}
