// Package policy is Orchard's one enrollment-policy engine: which devices
// may enroll, how many a user may hold, and which count as corporate
// (docs/policy.md has the rules with examples).
//
// There are two kinds of policy. Platform restrictions allow or block each
// platform ("iOS" also covers iPadOS, tvOS and visionOS; "macOS"), may
// block personally owned devices and bound the OS version. Device limit
// restrictions cap a user's devices at 1..15. Each kind has one default
// policy (editable, never deletable, lowest priority) and any number of
// group policies with a priority (1 is highest); a user gets the
// highest-priority policy of each kind among their groups, else the default.
//
// A device is corporate when it enrolls through ADE or Apple Configurator,
// when a device enrollment manager (DEM) enrolls it, or when its serial
// number or IMEI is a corporate identifier; otherwise it is personal. DEM
// enrollments are userless and exempt from device limits, but a DEM holds
// at most DEMLimit devices.
//
// Two calls decide. Decide reads and answers, writing nothing: the portal
// and Setup Assistant sign-in call it before they hand out a profile,
//
//	d, err := engine.Decide(ctx, policy.Attempt{User: "ann", Method: "portal", Platform: "iOS", OSVersion: "17.4"})
//	if err == nil && !d.Allowed { show d.Message and d.Remedy; record d as the failure }
//
// and Admit, which mdm/service calls at Authenticate, decides again with
// everything the device reports and, when it allows, takes the device's
// slot (the user's or the DEM's) in one storage write, so that of two
// devices racing for a user's last slot exactly one enrolls.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/mdm/osversion"
	"github.com/orchardmdm/orchard/storage"
)

// Code is a stable reason code of a refused (or failed) enrollment.
type Code string

// The reason codes the failures report uses. The engine returns the first
// seven; the others name refusals elsewhere in the enrollment paths.
const (
	PlatformBlocked     Code = "platform_blocked"
	OSTooOld            Code = "os_too_old"
	OSTooNew            Code = "os_too_new"
	PersonalBlocked     Code = "personal_blocked"
	DeviceLimit         Code = "device_limit"
	DEMLimitReached     Code = "dem_limit"
	IdentityRefused     Code = "identity_refused" // unknown or disabled user
	TermsNotAccepted    Code = "terms_not_accepted"
	ChallengeInvalid    Code = "challenge_invalid"
	ChallengeUsed       Code = "challenge_used"
	ChallengeExpired    Code = "challenge_expired"
	ChallengeRevoked    Code = "challenge_revoked"
	MachineInfoInvalid  Code = "machineinfo_invalid"
	OSUpdateRequired    Code = "os_update_required"
	ReenrollmentRefused Code = "reenrollment_refused"
	WrongDevice         Code = "wrong_device" // a certificate issued for another device
)

// Limits fixed by the rules.
const (
	MaxDeviceLimit     = 15
	DefaultDeviceLimit = 5
	DEMLimit           = 1000
)

// IDs of the default policies.
const (
	DefaultPlatformID = "default-platform"
	DefaultLimitID    = "default-limit"
)

// Platform rule keys.
const (
	RuleIOS   = "iOS"
	RuleMacOS = "macOS"
)

// Methods of enrollment besides storage's challenge kinds.
const MethodPortal = "portal"

// Attempt is what is known of one enrollment attempt. Fields may be empty
// when not known yet (the portal knows no serial number).
type Attempt struct {
	User      string // directory username, "" userless
	Method    string // storage.KindInvitation, KindConfigurator, KindADE, KindProfile, MethodPortal...
	Platform  string // iOS, iPadOS, macOS, tvOS, visionOS
	OSVersion string
	DeviceID  string // UDID (or enrollment ID); Admit needs it
	Serial    string
	IMEI      string
	Model     string
}

// Decision is the engine's answer. For a refusal, Policy and Rule name
// what refused, Message says why and Remedy what to do about it.
type Decision struct {
	Allowed    bool              `json:"allowed"`
	Reason     Code              `json:"reason,omitempty"`
	Policy     string            `json:"policy,omitempty"`
	PolicyName string            `json:"policy_name,omitempty"`
	Rule       string            `json:"rule,omitempty"`
	Message    string            `json:"message,omitempty"`
	Remedy     string            `json:"remedy,omitempty"`
	Ownership  storage.Ownership `json:"ownership"`
	// OwnershipBy says why the device is corporate, in the device view's
	// words (storage.OwnershipBy...: "ade", "configurator", "dem",
	// "corporate_identifier"); "" for personal.
	OwnershipBy string `json:"ownership_by,omitempty"`
	DEM         bool   `json:"dem,omitempty"`
	// Limit is the device limit that applies (0: none, as for a DEM or a
	// userless enrollment); Held how many devices the owner holds.
	Limit int `json:"limit,omitempty"`
	Held  int `json:"held,omitempty"`

	// identifierKind is the kind of corporate identifier (serial or imei)
	// that made the device corporate, for Admit to mark it enrolled.
	identifierKind string
}

// Store is what the engine reads and writes.
type Store interface {
	storage.PolicyStore
	User(ctx context.Context, username string) (*storage.DirectoryUser, error)
	UserGroups(ctx context.Context, username string) ([]string, error)
	UserDevices(ctx context.Context, username string) ([]string, error)
	Group(ctx context.Context, name string) (*storage.Group, error)
	Enrollment(ctx context.Context, id string) (*storage.Enrollment, error)
	UpdateEnrollment(ctx context.Context, id string, create *storage.Enrollment, fn func(e *storage.Enrollment) error) error
	UpdateInventory(ctx context.Context, deviceID string, fn func(inv *storage.DeviceInventory) error) (*storage.DeviceInventory, error)
	UpdateUser(ctx context.Context, username string, fn func(u *storage.DirectoryUser) error) (*storage.DirectoryUser, error)
	// For the reports.
	ListEnrollments(ctx context.Context, after string, limit int) ([]storage.Enrollment, error)
	ListUsers(ctx context.Context, after string, limit int) ([]storage.DirectoryUser, error)
	ListEnrollmentFailures(ctx context.Context, after string, limit int) ([]storage.EnrollmentFailure, error)
}

// Store returns the engine's store, for the admin handlers that read and
// write policy records directly.
func (e *Engine) Store() Store { return e.store }

// Engine decides enrollments.
type Engine struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	// The policy list, decoded once per generation: decoding a hundred
	// policies with their groups costs milliseconds, a generation read
	// microseconds.
	mu     sync.Mutex
	gen    uint64
	cached []storage.EnrollmentPolicy
	loaded bool
}

// policies returns every stored policy, from the cache while the store's
// generation is unchanged. Callers must not modify the result.
func (e *Engine) policies(ctx context.Context) ([]storage.EnrollmentPolicy, error) {
	gen, err := e.store.EnrollmentPolicyGeneration(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.loaded && e.gen == gen {
		all := e.cached
		e.mu.Unlock()
		return all, nil
	}
	e.mu.Unlock()
	all, err := e.store.EnrollmentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	// The generation was read before the list: a write in between leaves
	// the cache one generation behind, so the next read reloads it.
	e.gen, e.cached, e.loaded = gen, all, true
	e.mu.Unlock()
	return all, nil
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// New returns an engine over store.
func New(store Store, log *slog.Logger, opts ...Option) (*Engine, error) {
	if store == nil {
		return nil, errors.New("policy: a store is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{store: store, log: log, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// RuleKey is the platform rule a platform falls under ("" none known).
func RuleKey(platform string) string {
	switch platform {
	case "iOS", "iPadOS", "tvOS", "visionOS":
		return RuleIOS
	case "macOS":
		return RuleMacOS
	}
	return ""
}

// Decide answers whether a could enroll now; it writes nothing. An error
// is a failure to read, never a refusal.
func (e *Engine) Decide(ctx context.Context, a Attempt) (Decision, error) {
	d, _, err := e.decide(ctx, a)
	return d, err
}

// Admit decides a at Authenticate and, when it allows, takes the device's
// slot: the user's (who becomes the primary user) or the DEM's. A claim
// that loses the race for the last slot turns the decision into a
// refusal. It also records the corporate identifier's enrollment.
func (e *Engine) Admit(ctx context.Context, a Attempt) (Decision, error) {
	d, p, err := e.decide(ctx, a)
	if err != nil || !d.Allowed {
		return d, err
	}
	if a.User != "" && a.DeviceID != "" {
		claim := storage.DeviceClaim{DeviceID: a.DeviceID, Username: a.User, DEM: d.DEM, Limit: d.Limit}
		if d.DEM {
			claim.Limit = DEMLimit
		}
		err := e.store.ClaimDevice(ctx, claim)
		if errors.Is(err, storage.ErrLimitReached) {
			return e.limitRefusal(d, p, a.User, claim.Limit), nil
		}
		if err != nil {
			return d, fmt.Errorf("claim a device slot: %w", err)
		}
	}
	if kind := d.identifierKind; kind != "" {
		v := a.Serial
		if kind == storage.IdentifierIMEI {
			v = a.IMEI
		}
		if err := e.store.MarkCorporateEnrolled(ctx, kind, NormaliseIdentifier(kind, v), a.DeviceID, e.now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			e.log.Warn("policy: record a corporate identifier's enrollment", "device", a.DeviceID, "err", err)
		}
	}
	return d, nil
}

// decide returns the decision and the device-limit policy that applied.
func (e *Engine) decide(ctx context.Context, a Attempt) (Decision, *storage.EnrollmentPolicy, error) {
	var d Decision
	var user *storage.DirectoryUser
	var groups []string
	if a.User != "" {
		u, err := e.store.User(ctx, a.User)
		if errors.Is(err, storage.ErrNotFound) || err == nil && u.Disabled {
			return Decision{Reason: IdentityRefused, Rule: "user", Ownership: storage.Personal,
				Message: fmt.Sprintf("user %q is unknown or disabled", a.User),
				Remedy:  "ask an administrator to add or enable your account"}, nil, nil
		}
		if err != nil {
			return d, nil, fmt.Errorf("read user: %w", err)
		}
		user = u
		if groups, err = e.store.UserGroups(ctx, a.User); err != nil {
			return d, nil, fmt.Errorf("read user groups: %w", err)
		}
	}
	d.DEM = user != nil && user.DEM
	own, by, err := e.ownership(ctx, a, d.DEM)
	if err != nil {
		return d, nil, err
	}
	d.Ownership, d.OwnershipBy = own, by
	if by == storage.IdentifierSerial || by == storage.IdentifierIMEI {
		d.OwnershipBy, d.identifierKind = storage.OwnershipByCorporateIdentifier, by
	}

	all, err := e.policies(ctx)
	if err != nil {
		return d, nil, fmt.Errorf("read enrollment policies: %w", err)
	}
	pp := pick(all, storage.PolicyPlatform, groups)
	if refused := checkPlatform(&d, pp, a); refused {
		return d, nil, nil
	}
	if user == nil || d.DEM {
		// DEM enrollments are exempt from device limits; userless ones have
		// no one to count against. A DEM's own cap is checked by the claim.
		if d.DEM {
			devs, err := e.store.DEMDevices(ctx, a.User)
			if err != nil {
				return d, nil, fmt.Errorf("read DEM devices: %w", err)
			}
			d.Held = len(devs)
			if d.Held >= DEMLimit && !slices.Contains(devs, a.DeviceID) {
				return e.limitRefusal(d, nil, a.User, DEMLimit), nil, nil
			}
		}
		d.Allowed = true
		return d, nil, nil
	}
	lp := pick(all, storage.PolicyLimit, groups)
	d.Limit = lp.DeviceLimit
	devs, err := e.store.UserDevices(ctx, a.User)
	if err != nil {
		return d, nil, fmt.Errorf("read user devices: %w", err)
	}
	d.Held = len(devs)
	if d.Held >= d.Limit && (a.DeviceID == "" || !slices.Contains(devs, a.DeviceID)) {
		return e.limitRefusal(d, lp, a.User, d.Limit), lp, nil
	}
	d.Allowed = true
	return d, lp, nil
}

func (e *Engine) limitRefusal(d Decision, p *storage.EnrollmentPolicy, user string, limit int) Decision {
	d.Allowed = false
	if d.DEM {
		d.Reason, d.Rule = DEMLimitReached, "dem_limit"
		d.Policy, d.PolicyName = "", ""
		d.Message = fmt.Sprintf("device enrollment manager %s has enrolled the most devices allowed (%d)", user, limit)
		d.Remedy = "remove devices this manager enrolled, or enroll with another device enrollment manager"
		return d
	}
	d.Reason, d.Rule = DeviceLimit, "device_limit"
	if p != nil {
		d.Policy, d.PolicyName = p.ID, p.Name
	}
	d.Message = fmt.Sprintf("%s already has %d of %d devices allowed", user, max(d.Held, limit), limit)
	d.Remedy = "remove a device you no longer use, or ask an administrator to raise your device limit"
	return d
}

// ownership tells corporate from personal, and why: the method (ade,
// configurator), dem, or the kind of corporate identifier that matched.
func (e *Engine) ownership(ctx context.Context, a Attempt, dem bool) (storage.Ownership, string, error) {
	switch {
	case a.Method == storage.KindADE || a.Method == storage.KindConfigurator:
		return storage.Corporate, a.Method, nil
	case dem:
		return storage.Corporate, storage.OwnershipByDEM, nil
	}
	for _, id := range [...]struct{ kind, value string }{{storage.IdentifierSerial, a.Serial}, {storage.IdentifierIMEI, a.IMEI}} {
		v := NormaliseIdentifier(id.kind, id.value)
		if v == "" {
			continue
		}
		_, err := e.store.CorporateIdentifier(ctx, id.kind, v)
		if err == nil {
			return storage.Corporate, id.kind, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", "", fmt.Errorf("look up corporate identifier: %w", err)
		}
	}
	return storage.Personal, "", nil
}

// checkPlatform applies a platform policy; it reports whether it refused.
func checkPlatform(d *Decision, p *storage.EnrollmentPolicy, a Attempt) bool {
	key := RuleKey(a.Platform)
	r, ok := p.Platforms[key]
	if key == "" || !ok {
		return false
	}
	refuse := func(code Code, rule, msg, remedy string) bool {
		d.Reason, d.Policy, d.PolicyName, d.Rule, d.Message, d.Remedy = code, p.ID, p.Name, rule, msg, remedy
		return true
	}
	switch {
	case r.Block:
		return refuse(PlatformBlocked, key+".block", a.Platform+" devices may not enroll", "enroll a device of another platform, or ask an administrator")
	case r.BlockPersonal && d.Ownership == storage.Personal:
		return refuse(PersonalBlocked, key+".block_personal", "personally owned "+a.Platform+" devices may not enroll",
			"enroll a device your organisation owns, or ask an administrator to register this device's serial number")
	case r.MinOS != "" && (a.OSVersion == "" || CompareVersions(a.OSVersion, r.MinOS) < 0):
		return refuse(OSTooOld, key+".min_os", fmt.Sprintf("%s %s is older than the minimum %s", a.Platform, orUnknown(a.OSVersion), r.MinOS),
			"update the device to "+a.Platform+" "+r.MinOS+" or later, then enroll again")
	case r.MaxOS != "" && a.OSVersion != "" && CompareVersions(a.OSVersion, r.MaxOS) > 0:
		return refuse(OSTooNew, key+".max_os", fmt.Sprintf("%s %s is newer than the maximum %s", a.Platform, a.OSVersion, r.MaxOS),
			"ask an administrator: this version is not supported yet")
	}
	return false
}

func orUnknown(v string) string {
	if v == "" {
		return "(version unknown)"
	}
	return v
}

// pick returns the policy of a kind for a user in groups: the
// highest-priority group policy, else the default (a built-in one when
// none is stored).
func pick(all []storage.EnrollmentPolicy, kind string, groups []string) *storage.EnrollmentPolicy {
	var best, def *storage.EnrollmentPolicy
	for i := range all {
		p := &all[i]
		if p.Kind != kind {
			continue
		}
		if p.Default {
			def = p
			continue
		}
		if best != nil && p.Priority >= best.Priority {
			continue
		}
		for _, g := range p.Groups {
			if _, found := slices.BinarySearch(groups, g); found {
				best = p
				break
			}
		}
	}
	if best != nil {
		return best
	}
	if def != nil {
		return def
	}
	d := BuiltinDefault(kind)
	return &d
}

// BuiltinDefault is the default policy of a kind before an admin edits it:
// every platform allowed; DefaultDeviceLimit devices per user.
func BuiltinDefault(kind string) storage.EnrollmentPolicy {
	if kind == storage.PolicyLimit {
		return storage.EnrollmentPolicy{ID: DefaultLimitID, Kind: kind, Name: "Default device limit", Default: true, DeviceLimit: DefaultDeviceLimit}
	}
	return storage.EnrollmentPolicy{ID: DefaultPlatformID, Kind: storage.PolicyPlatform, Name: "Default platform restrictions", Default: true}
}

// NormaliseIdentifier puts a serial number in upper case and keeps an
// IMEI's digits; "" when nothing is left.
func NormaliseIdentifier(kind, v string) string {
	v = strings.TrimSpace(v)
	if kind == storage.IdentifierIMEI {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, v)
	}
	return strings.ToUpper(v)
}

// CompareVersions compares dotted versions number by number ("17.4" <
// "17.10", "14" == "14.0") through mdm/osversion, the one OS version reading
// of Orchard; a part that is not a number compares as 0.
func CompareVersions(a, b string) int { return osversion.Compare(a, b) }
