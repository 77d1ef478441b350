package storage

import (
	"context"
	"errors"
	"time"
)

// Enrollment policy kinds (internal/policy decides with them).
const (
	PolicyPlatform = "platform" // platform restrictions
	PolicyLimit    = "limit"    // device limit restrictions
)

// Corporate identifier kinds.
const (
	IdentifierSerial = "serial"
	IdentifierIMEI   = "imei"
)

// ErrLimitReached: a device claim would take an owner past its limit.
var ErrLimitReached = errors.New("device limit reached")

// PlatformRule is what a platform-restriction policy says of one platform.
// MinOS and MaxOS are dotted versions ("" no bound, both inclusive).
type PlatformRule struct {
	Block         bool   `json:"block,omitempty"`
	BlockPersonal bool   `json:"block_personal,omitempty"`
	MinOS         string `json:"min_os,omitempty"`
	MaxOS         string `json:"max_os,omitempty"`
}

// EnrollmentPolicy is one platform or device-limit restriction. The
// default of each kind (Default set, no groups) applies when no group
// policy does; the others apply to the members of their groups, the
// highest Priority (1 is highest) winning.
type EnrollmentPolicy struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Default     bool   `json:"default,omitempty"`
	Priority    int    `json:"priority,omitempty"`
	// Groups the policy is assigned to (not for a default).
	Groups []string `json:"groups,omitempty"`
	// Platforms: platform restrictions, by "iOS" (also iPadOS, tvOS,
	// visionOS) and "macOS"; a platform missing is allowed.
	Platforms map[string]PlatformRule `json:"platforms,omitempty"`
	// DeviceLimit: device limit restrictions, 1..15.
	DeviceLimit int       `json:"device_limit,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CorporateIdentifier marks a serial number or IMEI as the organisation's:
// a device enrolling with it is corporate.
type CorporateIdentifier struct {
	Kind    string    `json:"kind"`  // IdentifierSerial or IdentifierIMEI
	Value   string    `json:"value"` // normalised: upper case, IMEI digits only
	Details string    `json:"details,omitempty"`
	AddedAt time.Time `json:"added_at"`
	// EnrolledDevice is the last device that enrolled with it, "" none yet.
	EnrolledDevice string    `json:"enrolled_device,omitempty"`
	EnrolledAt     time.Time `json:"enrolled_at,omitzero"`
}

// CorporateImportResult says what an import did. Conflicts are the existing
// identifiers whose details differ from the import's: overwritten only when
// the import asked for it.
type CorporateImportResult struct {
	Added       int                   `json:"added"`
	Updated     int                   `json:"updated"`
	Unchanged   int                   `json:"unchanged"`
	Conflicts   []CorporateIdentifier `json:"conflicts,omitempty"`
	Overwritten bool                  `json:"overwritten,omitempty"`
}

// DeviceClaim asks for one of an owner's device slots.
type DeviceClaim struct {
	DeviceID string
	Username string
	// DEM: the slot is one of a device enrollment manager's (userless
	// enrollments, kept apart from primary users); else claiming makes
	// Username the device's primary user.
	DEM   bool
	Limit int
}

// PolicyStore keeps enrollment policies, corporate identifiers and the
// device slots users and device enrollment managers hold.
type PolicyStore interface {
	// PutEnrollmentPolicy creates or replaces a policy by ID.
	PutEnrollmentPolicy(ctx context.Context, p *EnrollmentPolicy) error
	// EnrollmentPolicies returns every policy ordered by ID.
	EnrollmentPolicies(ctx context.Context) ([]EnrollmentPolicy, error)
	// DeleteEnrollmentPolicy removes a policy; ErrNotFound when none.
	DeleteEnrollmentPolicy(ctx context.Context, id string) error
	// EnrollmentPolicyGeneration changes with every put or delete of a
	// policy (on any replica), so readers may cache the list until it does.
	EnrollmentPolicyGeneration(ctx context.Context) (uint64, error)

	// ImportCorporateIdentifiers adds rows (normalised, of one kind) in one
	// write. An existing identifier with the same details is unchanged;
	// with other details it is reported in Conflicts and replaced only
	// when overwrite is set.
	ImportCorporateIdentifiers(ctx context.Context, rows []CorporateIdentifier, overwrite bool) (CorporateImportResult, error)
	// CorporateIdentifier returns one identifier, or ErrNotFound.
	CorporateIdentifier(ctx context.Context, kind, value string) (*CorporateIdentifier, error)
	// ListCorporateIdentifiers returns identifiers of a kind ("" every
	// kind) ordered by kind then value, values starting with prefix,
	// after the value given, at most limit (limit <= 0: all).
	ListCorporateIdentifiers(ctx context.Context, kind, prefix, after string, limit int) ([]CorporateIdentifier, error)
	// DeleteCorporateIdentifier removes one; ErrNotFound when none.
	DeleteCorporateIdentifier(ctx context.Context, kind, value string) error
	// MarkCorporateEnrolled records that deviceID enrolled with an
	// identifier; ErrNotFound when it is not one.
	MarkCorporateEnrolled(ctx context.Context, kind, value, deviceID string, at time.Time) error

	// ClaimDevice gives c.DeviceID one of c.Username's slots in one write:
	// a device that holds one already keeps it; otherwise, when the owner
	// holds c.Limit or more, ErrLimitReached and nothing written. Of
	// concurrent claims for the last slot exactly one succeeds. A user
	// claim makes Username the primary user (as SetPrimaryUser); ErrNotFound
	// for an unknown user.
	ClaimDevice(ctx context.Context, c DeviceClaim) error
	// DEMDevices returns the devices a device enrollment manager enrolled.
	DEMDevices(ctx context.Context, username string) ([]string, error)
}
