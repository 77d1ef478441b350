package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"
)

// Challenge kinds, also used as CertAuthorization.Kind.
const (
	KindInvitation   = "invitation"   // over-the-air invitation URL
	KindConfigurator = "configurator" // Apple Configurator profile (download or Setup Assistant)
	KindADE          = "ade"          // Automated Device Enrollment
	KindProfile      = "profile"      // profile fetched by an admin for scripted use
	KindPortal       = "portal"       // handed to a user signed in to the enrollment portal
	KindRenewal      = "renewal"      // SCEP RenewalReq signed by a valid Orchard certificate
	// KindReenroll: Orchard re-sent the enrollment profile to renew an
	// enrolled device's identity; bound to the device and its certificate.
	KindReenroll = "reenroll"
)

// Challenge refusals. Each is a distinct reason so metrics can count them.
var (
	ErrChallengeInvalid = errors.New("challenge is not valid")
	ErrChallengeUsed    = errors.New("challenge was already used")
	ErrChallengeExpired = errors.New("challenge has expired")
	ErrChallengeRevoked = errors.New("challenge was revoked")
	// ErrGone: a one-time link was already spent or has expired.
	ErrGone = errors.New("gone")
)

// Challenge is a SCEP challenge as stored: never the secret, only its
// SHA-256, so a stolen database cannot enroll devices.
type Challenge struct {
	ID   string `json:"id"`
	Hash []byte `json:"hash"` // SHA-256 of the full challenge string
	// Kind and Ref say what it was issued for (e.g. configurator + profile ID).
	Kind      string `json:"kind"`
	Ref       string `json:"ref,omitempty"`
	ForUDID   string `json:"for_udid,omitempty"`
	ForSerial string `json:"for_serial,omitempty"`
	// RenewalOf is the hash of the certificate a re-enrollment challenge
	// renews; it passes to the certificate's authorization.
	RenewalOf string `json:"renewal_of,omitempty"`
	// User is the directory user the profile was handed out to ("" none);
	// it passes to the certificate's authorization, and the device's
	// Authenticate makes the user its primary user (not for a device
	// enrollment manager).
	User string `json:"user,omitempty"`
	// ForCategory is the device category a signed-in user chose (portal,
	// Setup Assistant sign-in); Authenticate puts the device in it.
	ForCategory string `json:"for_category,omitempty"`
	// ForSession is the portal's enrollment session ID (not a secret: it
	// only names the session's stage records); it passes to the
	// certificate's authorization.
	ForSession string `json:"for_session,omitempty"`
	// MultiUse challenges may sign any number of certificates until they
	// expire or are revoked; the others sign exactly one.
	MultiUse bool `json:"multi_use,omitempty"`
	// AppleVerified: issued for a MachineInfo whose signature chains to
	// Apple's root, so its UDID and serial are the device's own.
	AppleVerified bool      `json:"apple_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	UsedAt        time.Time `json:"used_at,omitzero"` // last use
	Uses          int       `json:"uses"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
}

// Check reports whether the challenge whose secret hashes to hash may
// sign a certificate at now. The hash comparison is constant-time.
func (c *Challenge) Check(hash []byte, now time.Time) error {
	switch {
	case len(hash) == 0 || subtle.ConstantTimeCompare(c.Hash, hash) != 1:
		return ErrChallengeInvalid
	case !c.RevokedAt.IsZero():
		return ErrChallengeRevoked
	case !now.Before(c.ExpiresAt):
		return ErrChallengeExpired
	case !c.MultiUse && c.Uses > 0:
		return ErrChallengeUsed
	}
	return nil
}

// Invitation is a one-time enrollment link. The token in the URL is a
// secret; only its hash is kept.
type Invitation struct {
	ID        string `json:"id"`
	TokenHash string `json:"-"` // hex SHA-256 of the URL token
	Label     string `json:"label,omitempty"`
	// User is the directory user the link enrolls a device for ("" none):
	// the enrollment policy counts the device against their limit.
	User      string    `json:"user,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	SpentAt   time.Time `json:"spent_at,omitzero"`
	// ChallengeID is the challenge handed out when the link was spent.
	ChallengeID string `json:"challenge_id,omitempty"`
}

// ConfiguratorProfile is an Apple Configurator enrollment profile.
type ConfiguratorProfile struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Description  string    `json:"description,omitempty"`
	UserAffinity bool      `json:"user_affinity"`
	CreatedAt    time.Time `json:"created_at"`
}

// SerialAssignment is a device serial number imported for Setup Assistant
// enrollment with Apple Configurator, and the profile it enrolls with.
type SerialAssignment struct {
	Serial    string    `json:"serial"`
	Details   string    `json:"details,omitempty"`
	ProfileID string    `json:"profile_id"`
	AddedAt   time.Time `json:"added_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ImportResult counts what an import did.
type ImportResult struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
}

// ChallengeStore keeps SCEP challenges.
type ChallengeStore interface {
	// PutChallenge stores a new challenge; ErrConflict if the ID exists.
	PutChallenge(ctx context.Context, c *Challenge) error
	// Challenge returns a challenge by ID, or ErrNotFound.
	Challenge(ctx context.Context, id string) (*Challenge, error)
	// RedeemChallenge checks the challenge again (Challenge.Check with hash
	// at now), counts one use and stores cert, all in one write: of
	// concurrent redeemers of a single-use challenge exactly one succeeds.
	// It returns the challenge as it was before the use.
	RedeemChallenge(ctx context.Context, id string, hash []byte, now time.Time, cert *CertRecord) (*Challenge, error)
	// RevokeChallenge refuses a challenge from now on; ErrNotFound if unknown.
	RevokeChallenge(ctx context.Context, id string, at time.Time) error
	// ChallengesFor lists the challenges issued for a ref, oldest first.
	ChallengesFor(ctx context.Context, ref string) ([]Challenge, error)
}

// InvitationStore keeps one-time enrollment links.
type InvitationStore interface {
	PutInvitation(ctx context.Context, inv *Invitation) error
	// SpendInvitation atomically marks the invitation with that token hash
	// spent at now and stores ch as the challenge it hands out, with
	// ch.Ref set to the invitation ID and ch.User to its User. It returns
	// ErrNotFound for an unknown token and ErrGone for a spent or expired one.
	SpendInvitation(ctx context.Context, tokenHash string, now time.Time, ch *Challenge) (*Invitation, error)
	// InvitationByToken returns the invitation with that token hash as it
	// stands, spending nothing (a landing page shows it); ErrNotFound when
	// there is none.
	InvitationByToken(ctx context.Context, tokenHash string) (*Invitation, error)
	// ListInvitations returns invitations ordered by ID after the given one.
	ListInvitations(ctx context.Context, after string, limit int) ([]Invitation, error)
}

// ConfiguratorStore keeps Apple Configurator profiles and serial numbers.
type ConfiguratorStore interface {
	// PutConfiguratorProfile creates or replaces a profile.
	PutConfiguratorProfile(ctx context.Context, p *ConfiguratorProfile) error
	ConfiguratorProfile(ctx context.Context, id string) (*ConfiguratorProfile, error)
	ListConfiguratorProfiles(ctx context.Context) ([]ConfiguratorProfile, error)
	// DeleteConfiguratorProfile removes a profile and revokes every challenge
	// issued for it. It fails with ErrConflict while serials are assigned.
	DeleteConfiguratorProfile(ctx context.Context, id string, at time.Time) error
	// ImportSerials assigns every row to its ProfileID in one write. Existing
	// serials move to the row's profile; their details are replaced only when
	// overwrite is set. A missing profile fails the whole import (ErrNotFound).
	ImportSerials(ctx context.Context, rows []SerialAssignment, overwrite bool) (ImportResult, error)
	// AssignSerials moves existing serials to a profile in one write; an
	// unknown serial or profile fails it whole (ErrNotFound).
	AssignSerials(ctx context.Context, serials []string, profileID string, at time.Time) error
	// Serial returns one assignment, or ErrNotFound.
	Serial(ctx context.Context, serial string) (*SerialAssignment, error)
	// ListSerials returns assignments ordered by serial after the given one;
	// profileID filters when not empty.
	ListSerials(ctx context.Context, profileID, after string, limit int) ([]SerialAssignment, error)
}

// EnrollStore is everything enrollment needs, for wiring.
type EnrollStore interface {
	CertStore
	ChallengeStore
	InvitationStore
	ConfiguratorStore
	EnrollmentFailureStore
	SCEPFailureStore
}

// MaxEnrollmentFailures bounds the enrollment-failure record: a store keeps
// the newest this many, so a flood of refused attempts cannot fill the disk.
const MaxEnrollmentFailures = 1000

// EnrollmentFailure is one refused enrollment attempt, for the admin's
// enrollment-failures report. It never holds a secret.
type EnrollmentFailure struct {
	// ID is assigned by the store; IDs sort in the order they were recorded.
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	UDID   string    `json:"udid,omitempty"`
	Serial string    `json:"serial,omitempty"`
	// Method is how the device tried to enroll (a challenge kind, "" unknown).
	Method string `json:"method,omitempty"`
	Reason string `json:"reason"`
	// Code is the reason's stable code (internal/policy's Reason codes),
	// Stage where the attempt stopped (e.g. "authenticate", "machineinfo").
	Code      string `json:"code,omitempty"`
	Stage     string `json:"stage,omitempty"`
	User      string `json:"user,omitempty"`
	IMEI      string `json:"imei,omitempty"`
	Platform  string `json:"platform,omitempty"`
	OSVersion string `json:"os_version,omitempty"`
	// Policy and Rule name what refused it, when a policy did.
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule,omitempty"`
	// Ref is what the challenge named was issued for (an invitation or
	// profile ID), for refusals at the SCEP stage.
	Ref string `json:"ref,omitempty"`
	// An aggregate of SCEP-stage refusals (SCEPFailureStore) stands for
	// Count attempts from Source (an address, an IPv6 /64, or OtherSources)
	// between FirstAt and At; a record of the failure log for one.
	Count   int       `json:"count,omitempty"`
	FirstAt time.Time `json:"first_at,omitzero"`
	Source  string    `json:"source,omitempty"`
}

// EnrollmentFailureStore records refused enrollment attempts.
type EnrollmentFailureStore interface {
	// RecordEnrollmentFailure stores f and sets f.ID, greater than every ID
	// recorded before; it then drops the oldest records beyond
	// MaxEnrollmentFailures.
	RecordEnrollmentFailure(ctx context.Context, f *EnrollmentFailure) error
	// ListEnrollmentFailures returns failures ordered by ID (oldest first)
	// after the given one.
	ListEnrollmentFailures(ctx context.Context, after string, limit int) ([]EnrollmentFailure, error)
}
