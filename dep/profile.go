package dep

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// ErrInvalid wraps every refusal of admin input; the message names the rule.
var ErrInvalid = errors.New("invalid")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// MaxProfilesPerToken bounds the ADE profiles of one token.
const MaxProfilesPerToken = 1000

// Screen is one Setup Assistant screen an admin can show or hide.
type Screen struct {
	ID      string // Orchard's name in the API
	Title   string
	SkipKey string // Apple's skip key; "" when ADE cannot hide it
	IOS     bool
	MacOS   bool
}

// Screens lists every Setup Assistant screen of the iOS/iPadOS and macOS
// profile pages admins know, with Apple's skip key.
var Screens = []Screen{
	{"passcode", "Passcode", "Passcode", true, false},
	{"location_services", "Location Services", "Location", true, true},
	{"restore", "Restore (Apps & Data)", "Restore", true, true},
	{"apple_id", "Apple ID", "AppleID", true, true},
	{"terms_and_conditions", "Terms and conditions", "TOS", true, true},
	{"touch_id_face_id", "Touch ID and Face ID", "Biometric", true, true},
	{"apple_pay", "Apple Pay", "Payment", true, true},
	{"zoom", "Zoom", "Zoom", true, false},
	{"siri", "Siri", "Siri", true, true},
	{"diagnostics", "Diagnostics Data", "Diagnostics", true, true},
	{"display_tone", "Display Tone", "DisplayTone", true, true},
	{"privacy", "Privacy", "Privacy", true, true},
	{"android_migration", "Android Migration", "Android", true, false},
	{"imessage_facetime", "iMessage & FaceTime", "iMessageAndFaceTime", true, false},
	{"onboarding", "Onboarding", "OnBoarding", true, false},
	{"screen_time", "Screen Time", "ScreenTime", true, true},
	{"sim_setup", "SIM Setup", "SIMSetup", true, false},
	{"software_update", "Software Update", "SoftwareUpdate", true, false},
	{"watch_migration", "Watch Migration", "WatchMigration", true, false},
	{"appearance", "Appearance", "Appearance", true, true},
	{"device_to_device_migration", "Device to Device Migration", "DeviceToDeviceMigration", true, false},
	{"restore_completed", "Restore Completed", "RestoreCompleted", true, false},
	{"software_update_completed", "Software Update Completed", "UpdateCompleted", true, false},
	{"get_started", "Get Started", "Welcome", true, false},
	{"filevault", "FileVault", "FileVault", false, true},
	{"icloud_diagnostics", "iCloud diagnostics", "iCloudDiagnostics", false, true},
	{"icloud_storage", "iCloud Storage", "iCloudStorage", false, true},
	{"accessibility", "Accessibility", "Accessibility", false, true},
	// Listed by admins' guides but without a skip key in Apple's schema.
	{"registration", "Registration", "", false, true},
	{"auto_unlock_with_watch", "Auto unlock with Apple Watch", "", false, true},
}

func screenByID(id string) (Screen, bool) {
	for _, s := range Screens {
		if s.ID == id {
			return s, true
		}
	}
	return Screen{}, false
}

// ProfileSpec is an ADE profile as the admin API reads and writes it
// (durations in whole seconds, screens as show/hide).
type ProfileSpec struct {
	Name                  string                    `json:"name"`
	Description           string                    `json:"description,omitempty"`
	Default               bool                      `json:"default,omitempty"`
	UserAffinity          storage.UserAffinity      `json:"user_affinity,omitempty"`
	Supervised            bool                      `json:"supervised"`
	LockedEnrollment      bool                      `json:"locked_enrollment"`
	AwaitDeviceConfigured bool                      `json:"await_device_configured"`
	SharedIPad            bool                      `json:"shared_ipad"`
	MaxCachedUsers        int                       `json:"max_cached_users,omitempty"`
	PasscodeLockGraceSecs int                       `json:"passcode_lock_grace_seconds,omitempty"`
	UserSessionTimeout    int                       `json:"user_session_timeout_seconds,omitempty"`
	TemporarySessionOnly  bool                      `json:"temporary_session_only,omitempty"`
	TemporarySessionTime  int                       `json:"temporary_session_timeout_seconds,omitempty"`
	SyncWithComputers     storage.SyncWithComputers `json:"sync_with_computers,omitempty"`
	ConfiguratorCerts     []string                  `json:"configurator_certs,omitempty"` // PEM or base64 DER
	AnchorCerts           []string                  `json:"anchor_certs,omitempty"`
	DeviceNameTemplate    string                    `json:"device_name_template,omitempty"`
	CellularPlanURL       string                    `json:"cellular_plan_url,omitempty"`
	Department            string                    `json:"department,omitempty"`
	SupportPhone          string                    `json:"support_phone,omitempty"`
	Language              string                    `json:"language,omitempty"`
	Region                string                    `json:"region,omitempty"`
	Screens               map[string]string         `json:"screens,omitempty"` // screen ID -> "show" | "hide"
	// MinimumOS: platform ("iOS", "macOS") -> the OS a device must run to
	// enroll; checked against the MachineInfo during Setup Assistant.
	MinimumOS map[string]storage.MinimumOS `json:"minimum_os,omitempty"`
}

var (
	placeholderRE = regexp.MustCompile(`\{\{[^}]*\}\}`)
	languageRE    = regexp.MustCompile(`^[a-z]{2,3}$`)
	regionRE      = regexp.MustCompile(`^[A-Z]{2}$`)
	phoneRE       = regexp.MustCompile(`^[0-9+()\-. ]{3,32}$`)
	osVersionRE   = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){0,2}$`)
	osBuildRE     = regexp.MustCompile(`^[0-9]{1,3}[A-Z][0-9]{1,5}[a-z]?$`)
)

const maxSessionSeconds = 14400

// Validate checks every rule and names the first one broken.
func (p *ProfileSpec) Validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return invalid("name is required")
	}
	if len(p.Name) > 255 || len(p.Description) > 1024 {
		return invalid("name is limited to 255 characters and description to 1024")
	}
	switch p.UserAffinity {
	case "", storage.AffinityNone, storage.AffinitySetupAssistant, storage.AffinityModernAuth:
	default:
		return invalid("user_affinity must be none, setup_assistant or setup_assistant_modern")
	}
	if p.LockedEnrollment && !p.Supervised {
		return invalid("locked_enrollment requires supervised")
	}
	if p.SharedIPad {
		if p.UserAffinity != "" && p.UserAffinity != storage.AffinityNone {
			return invalid("shared_ipad requires user_affinity none")
		}
		if !p.Supervised {
			return invalid("shared_ipad requires supervised")
		}
	} else if p.MaxCachedUsers != 0 || p.PasscodeLockGraceSecs != 0 || p.UserSessionTimeout != 0 || p.TemporarySessionOnly || p.TemporarySessionTime != 0 {
		return invalid("max_cached_users, passcode_lock_grace_seconds, user_session_timeout_seconds and temporary session settings require shared_ipad")
	}
	if p.MaxCachedUsers < 0 {
		return invalid("max_cached_users must not be negative")
	}
	if p.PasscodeLockGraceSecs < 0 || p.PasscodeLockGraceSecs > maxSessionSeconds {
		return invalid("passcode_lock_grace_seconds must be between 0 and 14400")
	}
	if !zeroOrAtLeast30(p.UserSessionTimeout) {
		return invalid("user_session_timeout_seconds must be 0 (never) or at least 30")
	}
	if !zeroOrAtLeast30(p.TemporarySessionTime) {
		return invalid("temporary_session_timeout_seconds must be 0 (never) or at least 30")
	}
	if p.TemporarySessionOnly && (p.MaxCachedUsers != 0 || p.PasscodeLockGraceSecs != 0 || p.UserSessionTimeout != 0) {
		return invalid("temporary_session_only cancels max_cached_users, passcode_lock_grace_seconds and user_session_timeout_seconds: leave them unset")
	}
	if p.TemporarySessionTime != 0 && !p.TemporarySessionOnly {
		return invalid("temporary_session_timeout_seconds requires temporary_session_only")
	}
	switch p.SyncWithComputers {
	case "", storage.SyncAllowAll, storage.SyncDenyAll:
		if len(p.ConfiguratorCerts) > 0 {
			return invalid("configurator_certs require sync_with_computers configurator_cert")
		}
	case storage.SyncConfiguratorByCert:
		if len(p.ConfiguratorCerts) == 0 {
			return invalid("sync_with_computers configurator_cert needs at least one certificate in configurator_certs")
		}
	default:
		return invalid("sync_with_computers must be allow_all, deny_all or configurator_cert")
	}
	for _, list := range [][]string{p.ConfiguratorCerts, p.AnchorCerts} {
		if _, err := parseCerts(list); err != nil {
			return err
		}
	}
	if len(p.DeviceNameTemplate) > 63 {
		return invalid("device_name_template is limited to 63 characters")
	}
	for _, ph := range placeholderRE.FindAllString(p.DeviceNameTemplate, -1) {
		if ph != "{{SERIAL}}" && ph != "{{DEVICETYPE}}" {
			return invalid("device_name_template supports only {{SERIAL}} and {{DEVICETYPE}}, not %s", ph)
		}
	}
	if p.CellularPlanURL != "" {
		u, err := url.Parse(p.CellularPlanURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return invalid("cellular_plan_url must be an https URL")
		}
	}
	if len(p.Department) > 255 {
		return invalid("department is limited to 255 characters")
	}
	if p.SupportPhone != "" && !phoneRE.MatchString(p.SupportPhone) {
		return invalid("support_phone must be a phone number")
	}
	if p.Language != "" && !languageRE.MatchString(p.Language) {
		return invalid("language must be an ISO 639 code such as en")
	}
	if p.Region != "" && !regionRE.MatchString(p.Region) {
		return invalid("region must be an ISO 3166 code such as US")
	}
	for platform, m := range p.MinimumOS {
		if platform != "iOS" && platform != "macOS" {
			return invalid("minimum_os platform must be iOS or macOS, not %q", platform)
		}
		if !osVersionRE.MatchString(m.Version) {
			return invalid("minimum_os %s version must be like 17.4 or 14.4.1", platform)
		}
		if m.Build != "" && !osBuildRE.MatchString(m.Build) {
			return invalid("minimum_os %s build must be like 21E219", platform)
		}
	}
	for id, v := range p.Screens {
		s, ok := screenByID(id)
		if !ok {
			return invalid("unknown Setup Assistant screen %q", id)
		}
		if v != "show" && v != "hide" {
			return invalid("screen %s must be show or hide", id)
		}
		if v == "hide" && s.SkipKey == "" {
			return invalid("screen %s cannot be hidden: Apple has no skip key for it", id)
		}
	}
	return nil
}

func zeroOrAtLeast30(secs int) bool { return secs == 0 || (secs >= 30 && secs <= 1<<20) }

// parseCerts reads PEM or base64 DER certificates and returns their DER.
func parseCerts(list []string) ([][]byte, error) {
	var out [][]byte
	for i, s := range list {
		der := []byte(nil)
		if strings.Contains(s, "-----BEGIN") {
			ders, err := pemCerts([]byte(s))
			if err != nil || len(ders) != 1 {
				return nil, invalid("certificate %d is not one PEM certificate", i+1)
			}
			der = ders[0]
		} else {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
			if err != nil {
				return nil, invalid("certificate %d is neither PEM nor base64 DER", i+1)
			}
			der = b
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, invalid("certificate %d does not parse: %v", i+1, err)
		}
		out = append(out, der)
	}
	return out, nil
}

// Record turns a valid spec into the stored profile (ID, token and Apple
// fields are the caller's).
func (p *ProfileSpec) Record() storage.DEPProfile {
	conf, _ := parseCerts(p.ConfiguratorCerts)
	anchors, _ := parseCerts(p.AnchorCerts)
	r := storage.DEPProfile{
		Name: p.Name, Description: p.Description,
		UserAffinity: p.UserAffinity, Supervised: p.Supervised, LockedEnrollment: p.LockedEnrollment,
		AwaitDeviceConfigured: p.AwaitDeviceConfigured, SharedIPad: p.SharedIPad, MaxCachedUsers: p.MaxCachedUsers,
		PasscodeLockGracePeriod: time.Duration(p.PasscodeLockGraceSecs) * time.Second,
		UserSessionTimeout:      time.Duration(p.UserSessionTimeout) * time.Second,
		TemporarySessionOnly:    p.TemporarySessionOnly,
		TemporarySessionTimeout: time.Duration(p.TemporarySessionTime) * time.Second,
		SyncWithComputers:       p.SyncWithComputers, ConfiguratorCerts: conf, AnchorCerts: anchors,
		DeviceNameTemplate: p.DeviceNameTemplate, CellularPlanURL: p.CellularPlanURL,
		Department: p.Department, SupportPhone: p.SupportPhone, Language: p.Language, Region: p.Region,
		MinimumOS: maps.Clone(p.MinimumOS),
	}
	if r.UserAffinity == "" {
		r.UserAffinity = storage.AffinityNone
	}
	if r.SyncWithComputers == "" {
		r.SyncWithComputers = storage.SyncAllowAll
	}
	for _, s := range Screens {
		if p.Screens[s.ID] == "hide" {
			r.SkipSetupItems = append(r.SkipSetupItems, s.SkipKey)
		}
	}
	return r
}

// SpecOf turns a stored profile back into its API form.
func SpecOf(r storage.DEPProfile, isDefault bool) ProfileSpec {
	p := ProfileSpec{
		Name: r.Name, Description: r.Description, Default: isDefault,
		UserAffinity: r.UserAffinity, Supervised: r.Supervised, LockedEnrollment: r.LockedEnrollment,
		AwaitDeviceConfigured: r.AwaitDeviceConfigured, SharedIPad: r.SharedIPad, MaxCachedUsers: r.MaxCachedUsers,
		PasscodeLockGraceSecs: int(r.PasscodeLockGracePeriod / time.Second),
		UserSessionTimeout:    int(r.UserSessionTimeout / time.Second),
		TemporarySessionOnly:  r.TemporarySessionOnly,
		TemporarySessionTime:  int(r.TemporarySessionTimeout / time.Second),
		SyncWithComputers:     r.SyncWithComputers,
		DeviceNameTemplate:    r.DeviceNameTemplate, CellularPlanURL: r.CellularPlanURL,
		Department: r.Department, SupportPhone: r.SupportPhone, Language: r.Language, Region: r.Region,
		Screens: map[string]string{}, MinimumOS: maps.Clone(r.MinimumOS),
	}
	for _, der := range r.ConfiguratorCerts {
		p.ConfiguratorCerts = append(p.ConfiguratorCerts, base64.StdEncoding.EncodeToString(der))
	}
	for _, der := range r.AnchorCerts {
		p.AnchorCerts = append(p.AnchorCerts, base64.StdEncoding.EncodeToString(der))
	}
	for _, s := range Screens {
		if s.SkipKey != "" && slices.Contains(r.SkipSetupItems, s.SkipKey) {
			p.Screens[s.ID] = "hide"
		} else {
			p.Screens[s.ID] = "show"
		}
	}
	return p
}

// AppleProfile builds the JSON Apple receives; enrollURL is the MDM
// enrollment URL Orchard serves for this profile.
func AppleProfile(r storage.DEPProfile, enrollURL string) *Profile {
	p := &Profile{
		ProfileName:           r.Name,
		URL:                   enrollURL,
		AllowPairing:          r.SyncWithComputers != storage.SyncDenyAll,
		IsSupervised:          r.Supervised,
		IsMultiUser:           r.SharedIPad,
		IsMandatory:           true,
		AwaitDeviceConfigured: r.AwaitDeviceConfigured,
		IsMDMRemovable:        !r.LockedEnrollment,
		SupportPhoneNumber:    r.SupportPhone,
		Department:            r.Department,
		Language:              r.Language,
		Region:                r.Region,
		SkipSetupItems:        append([]string{}, r.SkipSetupItems...),
	}
	if r.UserAffinity == storage.AffinityModernAuth {
		// Setup Assistant opens this page in a web view to authenticate.
		p.ConfigurationWebURL = enrollURL + sep(enrollURL) + "auth=modern"
	}
	if r.SyncWithComputers == storage.SyncConfiguratorByCert {
		for _, der := range r.ConfiguratorCerts {
			p.SupervisingHostCerts = append(p.SupervisingHostCerts, base64.StdEncoding.EncodeToString(der))
		}
	}
	for _, der := range r.AnchorCerts {
		p.AnchorCerts = append(p.AnchorCerts, base64.StdEncoding.EncodeToString(der))
	}
	return p
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
