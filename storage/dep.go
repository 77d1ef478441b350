package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLimit: the write would exceed a documented per-owner limit.
var ErrLimit = errors.New("limit reached")

// DEPTokenStatus is the health of an ABM/ASM server token.
type DEPTokenStatus string

const (
	DEPTokenOK       DEPTokenStatus = "ok"
	DEPTokenRejected DEPTokenStatus = "rejected" // Apple refused the token; syncs stop until it is renewed
)

// DEPToken is one ABM/ASM server token (one MDM server in Apple's portal).
type DEPToken struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Note string `json:"note,omitempty"` // the Apple ID that manages it, for the admin
	// SealedCredentials holds the OAuth consumer and access secrets sealed by
	// the dep package; backends store it opaquely and never log it.
	SealedCredentials []byte         `json:"sealed_credentials"`
	AccessTokenExpiry time.Time      `json:"access_token_expiry"`
	ServerName        string         `json:"server_name,omitempty"`
	OrgName           string         `json:"org_name,omitempty"`
	Status            DEPTokenStatus `json:"status"`
	StatusReason      string         `json:"status_reason,omitempty"`
	DefaultProfileID  string         `json:"default_profile_id,omitempty"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

// DEPSyncState is a token's sync progress. It is saved in the same
// transaction as the devices of the page it describes.
type DEPSyncState struct {
	TokenID string `json:"token_id"`
	// Cursor continues delta syncs (/devices/sync).
	Cursor string `json:"cursor,omitempty"`
	// FetchCursor resumes an unfinished full fetch (/server/devices).
	FetchCursor   string    `json:"fetch_cursor,omitempty"`
	FullStartedAt time.Time `json:"full_started_at"`
	NeedFull      bool      `json:"need_full"`
	LastFullSync  time.Time `json:"last_full_sync"`
	LastSync      time.Time `json:"last_sync"`
	LastAttempt   time.Time `json:"last_attempt"`
	LastManual    time.Time `json:"last_manual"`
	NotBefore     time.Time `json:"not_before"` // set by throttling and failure backoff
	Failures      int       `json:"failures"`
	LastError     string    `json:"last_error,omitempty"`
}

// DEPDeviceStatus is Orchard's view of an ADE device.
type DEPDeviceStatus string

const (
	DEPReady          DEPDeviceStatus = "ready"           // a profile is assigned; the device enrolls at next setup
	DEPMissingProfile DEPDeviceStatus = "missing_profile" // no profile: the device will not enroll
	DEPEnrolled       DEPDeviceStatus = "enrolled"
	DEPRemoved        DEPDeviceStatus = "removed" // released or moved away in ABM/ASM
)

// Valid reports whether s is a known status.
func (s DEPDeviceStatus) Valid() bool {
	switch s {
	case DEPReady, DEPMissingProfile, DEPEnrolled, DEPRemoved:
		return true
	}
	return false
}

// DEPDevice is a device assigned to one of Orchard's ABM/ASM servers, with
// Apple's fields and Orchard's own.
type DEPDevice struct {
	Serial             string    `json:"serial_number"`
	TokenID            string    `json:"token_id"`
	Model              string    `json:"model,omitempty"`
	Description        string    `json:"description,omitempty"`
	Color              string    `json:"color,omitempty"`
	AssetTag           string    `json:"asset_tag,omitempty"`
	OS                 string    `json:"os,omitempty"`
	DeviceFamily       string    `json:"device_family,omitempty"`
	ProfileStatus      string    `json:"profile_status,omitempty"`
	ProfileUUID        string    `json:"profile_uuid,omitempty"`
	ProfileAssignTime  time.Time `json:"profile_assign_time,omitzero"`
	ProfilePushTime    time.Time `json:"profile_push_time,omitzero"`
	DeviceAssignedDate time.Time `json:"device_assigned_date,omitzero"`
	DeviceAssignedBy   string    `json:"device_assigned_by,omitempty"`
	OpType             string    `json:"op_type,omitempty"`
	OpDate             time.Time `json:"op_date,omitzero"`

	Status DEPDeviceStatus `json:"status"`
	// ProfileID is the Orchard profile Orchard last assigned (empty when
	// the assignment was made elsewhere).
	ProfileID        string    `json:"profile_id,omitempty"`
	AssignRetryAfter time.Time `json:"assign_retry_after,omitzero"` // Apple answered FAILED: no retry before
	EnrolledAt       time.Time `json:"enrolled_at,omitzero"`
	RemovedAt        time.Time `json:"removed_at,omitzero"`
	SeenAt           time.Time `json:"seen_at,omitzero"` // last time a sync listed it
	UpdatedAt        time.Time `json:"updated_at"`
}

// MergeDEPDevice folds a device record from Apple (next) into the stored
// one (prev, nil when new) at time now. It returns the record to store and
// false when next is a duplicate event (same op_type and op_date) or older
// than what is stored, in which case nothing is written. Every backend uses
// it so that Orchard-owned fields survive syncs identically.
func MergeDEPDevice(prev *DEPDevice, next DEPDevice, now time.Time) (DEPDevice, bool) {
	if prev != nil && !next.OpDate.IsZero() && !prev.OpDate.IsZero() {
		if next.OpDate.Before(prev.OpDate) {
			return *prev, false
		}
		if next.OpType == prev.OpType && next.OpDate.Equal(prev.OpDate) {
			return *prev, false
		}
	}
	out := next
	out.UpdatedAt = now
	out.SeenAt = now
	if prev != nil {
		if prev.ProfileUUID == out.ProfileUUID {
			out.ProfileID = prev.ProfileID
		}
		out.AssignRetryAfter = prev.AssignRetryAfter
		out.EnrolledAt = prev.EnrolledAt
		if out.OpDate.IsZero() && prev.OpType != "deleted" {
			out.OpType, out.OpDate = prev.OpType, prev.OpDate
		}
		// Delta records of op_type "deleted" carry only the serial.
		if next.OpType == "deleted" {
			out = *prev
			out.OpType, out.OpDate = next.OpType, next.OpDate
			out.UpdatedAt, out.SeenAt = now, now
		}
	}
	if out.ProfileUUID == "" {
		out.ProfileID = ""
	}
	switch {
	case strings.EqualFold(out.OpType, "deleted"):
		out.Status = DEPRemoved
		if prev == nil || prev.Status != DEPRemoved {
			out.RemovedAt = now
		} else {
			out.RemovedAt = prev.RemovedAt
		}
	case prev != nil && prev.Status == DEPEnrolled:
		out.Status = DEPEnrolled
		out.RemovedAt = time.Time{}
	default:
		out.Status = profileStatus(out)
		out.RemovedAt = time.Time{}
	}
	return out, true
}

func profileStatus(d DEPDevice) DEPDeviceStatus {
	if d.ProfileUUID != "" && d.ProfileStatus != "removed" {
		return DEPReady
	}
	return DEPMissingProfile
}

// RecomputeDEPStatus refreshes a non-enrolled, non-removed device's status
// after its profile fields changed.
func RecomputeDEPStatus(d *DEPDevice) {
	if d.Status == DEPEnrolled || d.Status == DEPRemoved {
		return
	}
	d.Status = profileStatus(*d)
}

// DEPDeviceFilter selects devices; empty fields match everything.
type DEPDeviceFilter struct {
	TokenID   string
	Status    DEPDeviceStatus
	Serial    string // exact
	ProfileID string
	After     string // serial to continue after (pagination)
	Limit     int    // 0: no limit
}

// Match reports whether d passes the filter (After and Limit aside).
func (f DEPDeviceFilter) Match(d *DEPDevice) bool {
	return (f.TokenID == "" || d.TokenID == f.TokenID) &&
		(f.Status == "" || d.Status == f.Status) &&
		(f.Serial == "" || d.Serial == f.Serial) &&
		(f.ProfileID == "" || d.ProfileID == f.ProfileID)
}

// UserAffinity says whether and how a user is tied to an ADE device.
type UserAffinity string

const (
	AffinityNone           UserAffinity = "none"
	AffinitySetupAssistant UserAffinity = "setup_assistant"        // authenticate in Setup Assistant (basic)
	AffinityModernAuth     UserAffinity = "setup_assistant_modern" // Setup Assistant with modern authentication
)

// SyncWithComputers is the ADE pairing policy.
type SyncWithComputers string

const (
	SyncAllowAll           SyncWithComputers = "allow_all"
	SyncDenyAll            SyncWithComputers = "deny_all"
	SyncConfiguratorByCert SyncWithComputers = "configurator_cert"
)

// DEPProfile is an ADE enrollment profile owned by one token. Settings that
// Apple's profile JSON cannot carry (Shared iPad limits, device name
// template, cellular plan) are applied by the MDM server after enrollment.
type DEPProfile struct {
	ID          string `json:"id"`
	TokenID     string `json:"token_id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`

	UserAffinity          UserAffinity `json:"user_affinity"`
	Supervised            bool         `json:"supervised"`
	LockedEnrollment      bool         `json:"locked_enrollment"`
	AwaitDeviceConfigured bool         `json:"await_device_configured"`

	SharedIPad              bool          `json:"shared_ipad"`
	MaxCachedUsers          int           `json:"max_cached_users,omitempty"`
	PasscodeLockGracePeriod time.Duration `json:"passcode_lock_grace_period,omitempty"`
	UserSessionTimeout      time.Duration `json:"user_session_timeout,omitempty"`
	TemporarySessionOnly    bool          `json:"temporary_session_only,omitempty"`
	TemporarySessionTimeout time.Duration `json:"temporary_session_timeout,omitempty"`

	SyncWithComputers SyncWithComputers `json:"sync_with_computers"`
	// ConfiguratorCerts are DER certificates of the Macs allowed to pair.
	ConfiguratorCerts [][]byte `json:"configurator_certs,omitempty"`
	AnchorCerts       [][]byte `json:"anchor_certs,omitempty"`

	DeviceNameTemplate string `json:"device_name_template,omitempty"`
	CellularPlanURL    string `json:"cellular_plan_url,omitempty"`
	Department         string `json:"department,omitempty"`
	SupportPhone       string `json:"support_phone,omitempty"`
	Language           string `json:"language,omitempty"`
	Region             string `json:"region,omitempty"`
	// SkipSetupItems are Apple's skip keys of the hidden screens.
	SkipSetupItems []string `json:"skip_setup_items,omitempty"`
	// MinimumOS is the OS a device must run to enroll, by platform
	// ("iOS" for iPhone and iPad, "macOS"); a device below it that can
	// update is told to update first, in Setup Assistant.
	MinimumOS map[string]MinimumOS `json:"minimum_os,omitempty"`

	AppleUUID string    `json:"apple_uuid,omitempty"` // from the last define at Apple
	DefinedAt time.Time `json:"defined_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MinimumOS is a required OS version, and optionally the build (Apple's
// softwareupdate.required error carries both).
type MinimumOS struct {
	Version string `json:"version"`
	Build   string `json:"build,omitempty"`
}

// DEPTokenInUseError refuses deleting a token that still owns data.
type DEPTokenInUseError struct {
	Devices        int    `json:"devices"`
	Profiles       int    `json:"profiles"`
	DefaultProfile string `json:"default_profile,omitempty"`
}

func (e *DEPTokenInUseError) Error() string {
	var parts []string
	if e.Devices > 0 {
		parts = append(parts, fmt.Sprintf("%d devices", e.Devices))
	}
	if e.Profiles > 0 {
		parts = append(parts, fmt.Sprintf("%d profiles", e.Profiles))
	}
	if e.DefaultProfile != "" {
		parts = append(parts, "default profile "+e.DefaultProfile)
	}
	return "token still has " + strings.Join(parts, ", ")
}

// DEPTokenStore keeps ABM/ASM server tokens.
type DEPTokenStore interface {
	// PutDEPToken creates or replaces a token by ID.
	PutDEPToken(ctx context.Context, t DEPToken) error
	// DEPToken returns a token or ErrNotFound.
	DEPToken(ctx context.Context, id string) (DEPToken, error)
	// DEPTokens lists all tokens ordered by ID.
	DEPTokens(ctx context.Context) ([]DEPToken, error)
	// UpdateDEPToken applies fn to the stored token in one transaction
	// (fn may run more than once); ErrNotFound when absent. Nothing is
	// written when fn returns an error, which UpdateDEPToken returns.
	UpdateDEPToken(ctx context.Context, id string, fn func(*DEPToken) error) (DEPToken, error)
	// DeleteDEPToken deletes a token and its sync state, only when no
	// device (of any status), no profile and no default profile remain under
	// it; otherwise it returns a *DEPTokenInUseError and deletes nothing.
	// ErrNotFound when absent.
	DeleteDEPToken(ctx context.Context, id string) error
}

// DEPSyncStore keeps sync progress and the devices it brings.
type DEPSyncStore interface {
	// DEPSyncState returns a token's state; a token never synced gets the
	// zero state with TokenID set (not an error).
	DEPSyncState(ctx context.Context, tokenID string) (DEPSyncState, error)
	// PutDEPSyncState saves a token's state alone.
	PutDEPSyncState(ctx context.Context, st DEPSyncState) error
	// SaveDEPPage merges devices (with MergeDEPDevice, at time now) and saves
	// st in one transaction: either both are on disk or neither. A device
	// listed under another token moves to this one. It returns the stored
	// records of the devices that changed.
	SaveDEPPage(ctx context.Context, devices []DEPDevice, st DEPSyncState, now time.Time) ([]DEPDevice, error)
	// MarkUnseenDEPDevicesRemoved marks Removed (RemovedAt = now) every
	// device of tokenID not yet Removed whose SeenAt is before since, and
	// returns how many.
	MarkUnseenDEPDevicesRemoved(ctx context.Context, tokenID string, since, now time.Time) (int, error)
}

// DEPDeviceStore reads and edits ADE devices.
type DEPDeviceStore interface {
	// DEPDevice returns a device by serial or ErrNotFound.
	DEPDevice(ctx context.Context, serial string) (DEPDevice, error)
	// DEPDevices lists devices matching f, ordered by serial.
	DEPDevices(ctx context.Context, f DEPDeviceFilter) ([]DEPDevice, error)
	// CountDEPDevices counts devices matching f (After and Limit ignored).
	CountDEPDevices(ctx context.Context, f DEPDeviceFilter) (int, error)
	// UpdateDEPDevices applies fn to each stored device of serials in one
	// transaction (fn may run more than once); unknown serials are skipped.
	// An error from fn aborts and writes nothing.
	UpdateDEPDevices(ctx context.Context, serials []string, fn func(*DEPDevice) error) error
	// DeleteDEPDevice deletes a device; ErrNotFound when absent.
	DeleteDEPDevice(ctx context.Context, serial string) error
	// PurgeRemovedDEPDevices deletes devices Removed before cutoff and
	// returns how many.
	PurgeRemovedDEPDevices(ctx context.Context, cutoff time.Time) (int, error)
}

// DEPProfileStore keeps ADE enrollment profiles.
type DEPProfileStore interface {
	// CreateDEPProfile stores a new profile, refusing with ErrLimit when its
	// token already has max profiles and ErrConflict when the ID exists.
	CreateDEPProfile(ctx context.Context, p DEPProfile, max int) error
	// PutDEPProfile replaces an existing profile; ErrNotFound when absent.
	PutDEPProfile(ctx context.Context, p DEPProfile) error
	// DEPProfile returns a profile of a token or ErrNotFound.
	DEPProfile(ctx context.Context, tokenID, id string) (DEPProfile, error)
	// DEPProfiles lists a token's profiles ordered by ID.
	DEPProfiles(ctx context.Context, tokenID string) ([]DEPProfile, error)
	// DeleteDEPProfile deletes a profile; ErrNotFound when absent and
	// ErrConflict when it is its token's default profile.
	DeleteDEPProfile(ctx context.Context, tokenID, id string) error
}

// DEPStore is everything the dep package needs.
type DEPStore interface {
	DEPTokenStore
	DEPSyncStore
	DEPDeviceStore
	DEPProfileStore
}
