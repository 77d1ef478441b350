package storage

import (
	"context"
	"time"
)

// EnrollmentType says which kind of channel an enrollment is.
type EnrollmentType string

const (
	Device               EnrollmentType = "Device"                 // keyed by UDID
	UserEnrollmentDevice EnrollmentType = "User Enrollment Device" // keyed by EnrollmentID
	User                 EnrollmentType = "User"                   // macOS user on a device, keyed by UserID
	SharedIPadUser       EnrollmentType = "Shared iPad User"       // Shared iPad user, keyed by UserShortName
	UserEnrollment       EnrollmentType = "User Enrollment"        // the user channel of a User Enrollment
)

// Enrollment is one command channel: a device or a user on a device.
// ID is the channel key (see mdm.ChannelID); DeviceID is the device
// channel's key, equal to ID for device channels.
type Enrollment struct {
	ID       string         `json:"id"`
	DeviceID string         `json:"device_id"`
	Type     EnrollmentType `json:"type"`
	UserID   string         `json:"user_id,omitempty"`

	Enrolled     bool      `json:"enrolled"`
	Generation   uint64    `json:"generation"` // bumped by every Authenticate of the device
	EnrolledAt   time.Time `json:"enrolled_at"`
	CheckedOutAt time.Time `json:"checked_out_at,omitzero"`
	LastSeen     time.Time `json:"last_seen,omitzero"`

	// Push: from TokenUpdate. Token and PushMagic are secrets of the device.
	Topic          string    `json:"topic,omitempty"`
	Token          []byte    `json:"token,omitempty"`
	PushMagic      string    `json:"push_magic,omitempty"`
	TokenUpdatedAt time.Time `json:"token_updated_at,omitzero"`
	TokenInvalid   bool      `json:"token_invalid,omitempty"` // APNs said the token is gone
	LastPushAt     time.Time `json:"last_push_at,omitzero"`
	LastPushSent   bool      `json:"last_push_sent,omitempty"`
	LastPushError  string    `json:"last_push_error,omitempty"`

	UnlockTokenSealed     []byte `json:"unlock_token_sealed,omitempty"`
	AwaitingConfiguration bool   `json:"awaiting_configuration,omitempty"`
	UserShortName         string `json:"user_short_name,omitempty"`
	UserLongName          string `json:"user_long_name,omitempty"`
	EnrollmentUserID      string `json:"enrollment_user_id,omitempty"`

	// Device facts, device channels only (from Authenticate).
	Facts *DeviceFacts `json:"facts,omitempty"`

	// How the device enrolled, from its certificate's authorization
	// (CertAuthorization.Kind and Ref), device channels only.
	EnrollmentMethod string `json:"enrollment_method,omitempty"`
	EnrollmentRef    string `json:"enrollment_ref,omitempty"`
	// Ownership as decided at Authenticate (internal/policy) or set by an
	// admin; "" for enrollments from before it was recorded.
	Ownership Ownership `json:"ownership,omitempty"`
	// OwnershipBy says why (an OwnershipBy... value); "" for a personal
	// device, and for enrollments from before it was recorded.
	OwnershipBy string `json:"ownership_by,omitempty"`
	// EnrolledBy is the device enrollment manager who enrolled the device.
	EnrolledBy string `json:"enrolled_by,omitempty"`
	// EnrollmentUser and EnrollmentCategory: the directory user the
	// enrollment profile was for (who becomes the primary user; "" for a
	// device enrollment manager's) and the category they chose, from
	// CertAuthorization.
	EnrollmentUser     string `json:"enrollment_user,omitempty"`
	EnrollmentCategory string `json:"enrollment_category,omitempty"`
	// EnrollmentSession is the portal session that handed the profile
	// out, so the device's enrolling completes that session's record.
	EnrollmentSession string `json:"enrollment_session,omitempty"`

	// Identity certificate bound at Authenticate, device channels only.
	CertHash     string    `json:"cert_hash,omitempty"`
	CertSerial   string    `json:"cert_serial,omitempty"`
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`

	BootstrapTokenSealed []byte    `json:"bootstrap_token_sealed,omitempty"`
	BootstrapTokenAt     time.Time `json:"bootstrap_token_at,omitzero"`

	// Renewal is where the renewal of the identity certificate stands,
	// device channels only; nil before the first renewal.
	Renewal *Renewal `json:"renewal,omitempty"`

	// ReleasedUntil: an admin released the enrollment, so until then a new
	// enrollment of the device may replace its bound certificate. The next
	// Authenticate writes a fresh record, which ends the release.
	ReleasedUntil time.Time `json:"released_until,omitzero"`
}

// Renewal states of a device's identity certificate.
const (
	RenewalQueued    = "queued"    // a fresh enrollment profile is queued or delivered
	RenewalInstalled = "installed" // the device authenticated with the renewed certificate
	RenewalFailed    = "failed"    // the device refused the profile, or the old certificate expired first
)

// Renewal is one renewal of a device's identity certificate: Orchard
// re-sends the enrollment profile with a challenge bound to the device.
type Renewal struct {
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"` // why it failed
	ForCert     string    `json:"for_cert"`         // hash of the certificate being replaced
	CommandUUID string    `json:"command_uuid,omitempty"`
	ChallengeID string    `json:"challenge_id,omitempty"`
	QueuedAt    time.Time `json:"queued_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// DeviceFacts are what a device says of itself when it authenticates.
type DeviceFacts struct {
	UDID         string `json:"udid,omitempty"`
	EnrollmentID string `json:"enrollment_id,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	Model        string `json:"model,omitempty"`
	ModelName    string `json:"model_name,omitempty"`
	ProductName  string `json:"product_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	BuildVersion string `json:"build_version,omitempty"`
	DeviceName   string `json:"device_name,omitempty"`
	IMEI         string `json:"imei,omitempty"`
	MEID         string `json:"meid,omitempty"`
}

// TargetStatus is where a command stands for one channel.
type TargetStatus string

const (
	Queued             TargetStatus = "Queued"
	Acknowledged       TargetStatus = "Acknowledged"
	Error              TargetStatus = "Error"
	CommandFormatError TargetStatus = "CommandFormatError"
	NotNow             TargetStatus = "NotNow"
	Canceled           TargetStatus = "Canceled"   // deleted by the admin while queued
	Superseded         TargetStatus = "Superseded" // the device re-enrolled before receiving it
)

// TargetStatuses lists every TargetStatus, in the order a target moves
// through them.
var TargetStatuses = []TargetStatus{Queued, NotNow, Acknowledged, Error, CommandFormatError, Canceled, Superseded}

// Final reports whether no more results are expected.
func (s TargetStatus) Final() bool {
	switch s {
	case Acknowledged, Error, CommandFormatError, Canceled, Superseded:
		return true
	}
	return false
}

// Command is an MDM command as queued: the full plist Orchard sends.
type Command struct {
	UUID        string    `json:"uuid"`
	RequestType string    `json:"request_type"`
	Raw         []byte    `json:"-"` // the {CommandUUID, Command} plist
	CreatedAt   time.Time `json:"created_at"`
	// Sender is who queued it, as the audit log names admins ("alice",
	// "alice/token:<id>", "bootstrap"); "" when Orchard issued it itself.
	Sender string `json:"sender,omitempty"`
}

// Target is a command's state for one channel.
type Target struct {
	ChannelID   string       `json:"channel_id"`
	Status      TargetStatus `json:"status"`
	QueuedAt    time.Time    `json:"queued_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Generation  uint64       `json:"generation"` // device generation when queued
	Seq         uint64       `json:"seq"`        // position in the channel's queue
	ResultCount int          `json:"result_count"`
	// OfferedAt is when Next first handed the command to the channel; a
	// result is only accepted once it was offered.
	OfferedAt time.Time `json:"offered_at,omitzero"`
}

// Result is one report a device sent for a command.
type Result struct {
	CommandUUID string       `json:"command_uuid"`
	RequestType string       `json:"request_type,omitempty"` // filled by StoreResult
	ChannelID   string       `json:"channel_id"`
	Status      TargetStatus `json:"status"`
	ErrorChain  []ErrorChain `json:"error_chain,omitempty"`
	Raw         []byte       `json:"raw"` // the device's plist, verbatim
	At          time.Time    `json:"at"`
	// Effect, when set, says what the result changes besides its command's
	// state, given the command's request type (nil: nothing). StoreResult
	// calls it once the command is read, unless the result is ignored, and
	// writes what it returns in the result's own transaction. It must not
	// touch storage. Not stored.
	Effect func(requestType string) *ResultEffect `json:"-"`
}

// ResultEffect is what a result changes besides its command's state: the
// latest answer of its kind kept for the channel (as PutDeviceReport) and
// a change to the inventory of the result's channel (as UpdateInventory);
// either may be nil.
type ResultEffect struct {
	Report    *DeviceReport
	Inventory func(inv *DeviceInventory) error
}

// ErrorChain is one entry of a result's ErrorChain.
type ErrorChain struct {
	ErrorCode            int    `json:"error_code"`
	ErrorDomain          string `json:"error_domain,omitempty"`
	LocalizedDescription string `json:"localized_description,omitempty"`
	USEnglishDescription string `json:"us_english_description,omitempty"`
}

// CertRecord is a device identity certificate Orchard issued.
type CertRecord struct {
	Hash      string    `json:"hash"`   // hex SHA-256 of the DER: the key
	Serial    string    `json:"serial"` // hex
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	IssuedAt  time.Time `json:"issued_at"`
	// Authorization records why Orchard signed it.
	Authorization CertAuthorization `json:"authorization"`
	Revoked       bool              `json:"revoked,omitempty"`
	RevokedAt     time.Time         `json:"revoked_at,omitzero"`
}

// CertAuthorization is how a certificate request was authorized.
type CertAuthorization struct {
	// Kind: "invitation", "configurator", "ade", "profile", "renewal", "reenroll", "admin".
	Kind string `json:"kind"`
	// ChallengeID names the challenge used (never the challenge itself).
	ChallengeID string `json:"challenge_id,omitempty"`
	// Ref is what the challenge was issued for (invitation or profile ID).
	Ref string `json:"ref,omitempty"`
	// ForUDID / ForSerial: set when the challenge was bound to one device.
	ForUDID   string `json:"for_udid,omitempty"`
	ForSerial string `json:"for_serial,omitempty"`
	// AppleVerified: the challenge came from a MachineInfo verified against
	// Apple's root (ADE or Apple Configurator), so ForUDID and ForSerial
	// are the device's own.
	AppleVerified bool `json:"apple_verified,omitempty"`
	// RenewalOf is the hash of the certificate that signed a RenewalReq, or
	// that a re-enrollment challenge (KindReenroll) was issued to renew.
	RenewalOf string `json:"renewal_of,omitempty"`
	// User is the directory user the enrollment profile was handed out to.
	User string `json:"user,omitempty"`
	// ForCategory is the device category the user chose (portal).
	ForCategory string `json:"for_category,omitempty"`
	// ForSession is the portal's enrollment session (stage records).
	ForSession string `json:"for_session,omitempty"`
}

// AuthenticateRecord is what one Authenticate writes.
type AuthenticateRecord struct {
	Enrollment Enrollment // the device channel (Type Device or UserEnrollmentDevice)
	// PrevCertHash is the certificate hash the caller saw bound to the device
	// ("" when none): the write is a compare-and-set on it.
	PrevCertHash string
}

// RebindRecord moves an enrolled device channel to a renewed identity
// certificate without starting a new enrollment.
type RebindRecord struct {
	DeviceID     string
	PrevCertHash string // the certificate bound now: the write is a compare-and-set on it
	CertHash     string
	CertSerial   string
	CertNotAfter time.Time
	Facts        *DeviceFacts // replaces the stored facts when not nil
	Renewal      *Renewal     // replaces the stored renewal state when not nil
}

// CheckinStore keeps enrollments and their identity bindings.
type CheckinStore interface {
	// Authenticate starts a fresh enrollment of a device channel. Atomically:
	// it fails with ErrConflict if the device's bound certificate is no
	// longer rec.PrevCertHash, if rec's certificate is bound to another
	// device, or if the device is stored under another spelling of the same
	// ID (mdm.SameDeviceID: hex UDIDs ignore case); it increments
	// Generation, binds the certificate, and marks every command still
	// queued for the device and its user channels Superseded.
	Authenticate(ctx context.Context, rec *AuthenticateRecord) error
	// Rebind binds an enrolled device channel to a renewed certificate in
	// one write: ErrNotFound if the channel is unknown, ErrConflict if it is
	// not enrolled, if its bound certificate is no longer rec.PrevCertHash,
	// or if rec's certificate is bound to another device. PrevCertHash stops
	// being bound to anything. Generation, queues, user channels, tokens and
	// everything else of the enrollment stay as they are.
	Rebind(ctx context.Context, rec *RebindRecord) error
	// Enrollment returns a channel, or ErrNotFound. The device part of id
	// matches any spelling of a hex UDID (mdm.FoldDeviceID); the record
	// keeps, and its ID shows, the spelling it was stored under.
	Enrollment(ctx context.Context, id string) (*Enrollment, error)
	// DeviceForCert returns the device channel a certificate is bound to, or ErrNotFound.
	DeviceForCert(ctx context.Context, certHash string) (string, error)
	// UpdateEnrollment applies fn to the stored channel (creating it from
	// create when absent and create is not nil) in one write. fn may run more
	// than once and must only change e.
	UpdateEnrollment(ctx context.Context, id string, create *Enrollment, fn func(e *Enrollment) error) error
	// CheckOut marks the device and its user channels unenrolled; history stays.
	CheckOut(ctx context.Context, deviceID string, at time.Time) error
	// TouchLastSeen records when channels were last heard from. It may be
	// applied lazily: last-seen times are not answered writes.
	TouchLastSeen(ctx context.Context, seen map[string]time.Time) error
	// ListEnrollments returns channels ordered by ID, after the given ID, at most limit.
	ListEnrollments(ctx context.Context, after string, limit int) ([]Enrollment, error)
}

// CertStore keeps the certificates Orchard issued.
type CertStore interface {
	PutCert(ctx context.Context, rec *CertRecord) error
	// Cert returns a certificate by hash, or ErrNotFound.
	Cert(ctx context.Context, hash string) (*CertRecord, error)
	// RevokeCert marks a certificate (by hex serial) revoked; ErrNotFound if unknown.
	RevokeCert(ctx context.Context, serial string, at time.Time) error
	// ListCerts returns certificates ordered by hash after the given one.
	ListCerts(ctx context.Context, after string, limit int) ([]CertRecord, error)
}

// CommandQueue is the per-channel FIFO of commands.
type CommandQueue interface {
	// Enqueue stores cmd and queues it on every channel in one write. Every
	// channel must exist and be enrolled, else nothing is written and the
	// error names the channel (wrapping ErrNotFound).
	Enqueue(ctx context.Context, cmd *Command, channels []string) error
	// Next returns the first queued command of a channel that is not
	// deferred, or nil when there is none, and marks it offered to the
	// channel (a write only the first time). Its cost does not grow with
	// queue depth or the number of channels.
	Next(ctx context.Context, channel string) (*Command, error)
	// StoreResult records a result and moves the target on: final statuses
	// dequeue it; NotNow defers it until Undefer. The command then at the
	// head of the channel's queue counts as offered (the caller hands it
	// out in its answer). It returns ErrNotFound when the command was never
	// queued for that channel or never offered to it. A result after a final one (Acknowledged, Error,
	// CommandFormatError: the first wins) or repeating the target's current
	// status is not stored and has no effect (ignored is true). r.Effect's
	// writes are made in the same transaction; when they fail, nothing is.
	StoreResult(ctx context.Context, r *Result) (ignored bool, err error)
	// Defer sets a queued command aside until the next Undefer (used when a
	// device's result could not be read, so it cannot block the queue).
	Defer(ctx context.Context, channel, uuid string) error
	// Undefer puts deferred commands back in their queue positions. It
	// writes only when something was deferred.
	Undefer(ctx context.Context, channel string) error
	// IdleNext is Undefer then Next, as an Idle report needs them: one
	// read on the usual connect, where nothing is deferred and the head
	// (if any) was offered before.
	IdleNext(ctx context.Context, channel string) (*Command, error)
	// Command returns a command with its targets, or ErrNotFound.
	Command(ctx context.Context, uuid string) (*Command, []Target, error)
	// Results returns the results stored for a command, oldest first.
	Results(ctx context.Context, uuid string) ([]Result, error)
	// Cancel dequeues a command from every channel where it is still queued
	// or deferred and returns how many it removed.
	Cancel(ctx context.Context, uuid string) (int, error)
	// QueueDepth counts the commands waiting on a channel.
	QueueDepth(ctx context.Context, channel string) (int, error)
	// Counts reports server-wide totals: commands waiting (queued or
	// deferred) on all channels, and device channels currently enrolled.
	// It may walk the data; callers cache it.
	Counts(ctx context.Context) (queued, enrolledDevices int, err error)
}

// PushResult is APNs's answer to one channel's push.
type PushResult struct {
	ChannelID    string
	Token        []byte // the token that was pushed
	At           time.Time
	Sent         bool
	TokenInvalid bool
	Reason       string
}

// PushTarget is what a push needs of a channel: read apart from the rest
// of the enrollment, so waking 100,000 channels decodes little. Its JSON
// names are Enrollment's.
type PushTarget struct {
	ID           string `json:"id"`
	Enrolled     bool   `json:"enrolled"`
	Topic        string `json:"topic,omitempty"`
	Token        []byte `json:"token,omitempty"`
	PushMagic    string `json:"push_magic,omitempty"`
	TokenInvalid bool   `json:"token_invalid,omitempty"`
}

// Pushable says whether a push to t can reach its device.
func (t *PushTarget) Pushable() bool {
	return t.Enrolled && len(t.Token) > 0 && t.PushMagic != "" && !t.TokenInvalid
}

// PushStore reads push targets and records push outcomes on their channels.
type PushStore interface {
	// PushTargets reads the push fields of channels given by their exact
	// IDs (as queued), in one read, in the order given; unknown channels
	// are left out.
	PushTargets(ctx context.Context, ids []string) ([]PushTarget, error)
	// RecordPushResults stores each channel's last push outcome in one
	// write. TokenInvalid marks the channel's token invalid only while the
	// stored token is still the one pushed (a TokenUpdate may have replaced
	// it since). Unknown channels are skipped.
	RecordPushResults(ctx context.Context, results []PushResult) error
}

// SettingsStore keeps small server-wide values.
type SettingsStore interface {
	Setting(ctx context.Context, key string) ([]byte, error) // ErrNotFound when unset
	PutSetting(ctx context.Context, key string, value []byte) error
}

// MDMStore is everything the device protocol needs, for wiring.
type MDMStore interface {
	CheckinStore
	CertStore
	CommandQueue
	SettingsStore
	PushStore
}
