package storage

import (
	"context"
	"time"
)

// Ownership says who owns a device, from how it enrolled.
type Ownership string

const (
	// Corporate devices enrolled through ADE or Apple Configurator.
	Corporate Ownership = "corporate"
	// Personal devices enrolled any other way (invitation, profile download).
	Personal Ownership = "personal"
)

// Why a device has its ownership (Enrollment.OwnershipBy): corporate
// because of how it enrolled, who enrolled it or its identifier, or
// whatever an admin said. A personal device the enrollment policy decided
// has none.
const (
	OwnershipByADE                 = KindADE          // Automated Device Enrollment
	OwnershipByConfigurator        = KindConfigurator // Apple Configurator
	OwnershipByDEM                 = "dem"            // a device enrollment manager enrolled it
	OwnershipByCorporateIdentifier = "corporate_identifier"
	OwnershipByAdmin               = "admin" // set by an admin (either way)
)

// DeviceInventory is what Orchard knows of one device channel from its
// DeviceInformation and SecurityInfo answers, plus the bookkeeping of the
// inventory queries. The raw answers are kept apart as DeviceReports so a
// filtered scan of many devices decodes only these small records.
type DeviceInventory struct {
	DeviceID  string    `json:"device_id"`
	CreatedAt time.Time `json:"created_at"`
	// Platform is iOS, iPadOS, macOS, tvOS, visionOS or watchOS; "" when unknown.
	Platform  string    `json:"platform,omitempty"`
	Ownership Ownership `json:"ownership,omitempty"`

	DeviceName               string `json:"device_name,omitempty"`
	Model                    string `json:"model,omitempty"`
	ModelName                string `json:"model_name,omitempty"`
	ModelNumber              string `json:"model_number,omitempty"`
	ProductName              string `json:"product_name,omitempty"`
	OSVersion                string `json:"os_version,omitempty"`
	BuildVersion             string `json:"build_version,omitempty"`
	SupplementalBuildVersion string `json:"supplemental_build_version,omitempty"`
	SerialNumber             string `json:"serial_number,omitempty"`
	UDID                     string `json:"udid,omitempty"`
	IMEI                     string `json:"imei,omitempty"`
	MEID                     string `json:"meid,omitempty"`
	PhoneNumber              string `json:"phone_number,omitempty"`
	WiFiMAC                  string `json:"wifi_mac,omitempty"`
	BluetoothMAC             string `json:"bluetooth_mac,omitempty"`
	EthernetMAC              string `json:"ethernet_mac,omitempty"`
	TimeZone                 string `json:"time_zone,omitempty"`

	// Nil pointers mean the device did not say.
	Supervised                *bool    `json:"supervised,omitempty"`
	MultiUser                 *bool    `json:"multi_user,omitempty"`
	ActivationLockEnabled     *bool    `json:"activation_lock_enabled,omitempty"`
	FindMyEnabled             *bool    `json:"find_my_enabled,omitempty"`
	LostModeEnabled           *bool    `json:"lost_mode_enabled,omitempty"`
	AppleSilicon              *bool    `json:"apple_silicon,omitempty"`
	PINRequiredForDeviceLock  *bool    `json:"pin_required_for_device_lock,omitempty"`
	PINRequiredForEraseDevice *bool    `json:"pin_required_for_erase_device,omitempty"`
	CapacityGB                *float64 `json:"capacity_gb,omitempty"`
	AvailableGB               *float64 `json:"available_gb,omitempty"`
	BatteryLevel              *float64 `json:"battery_level,omitempty"` // 0..1, -1 when the device cannot tell

	// From SecurityInfo.
	PasscodePresent              *bool  `json:"passcode_present,omitempty"`
	PasscodeCompliant            *bool  `json:"passcode_compliant,omitempty"`
	FileVaultEnabled             *bool  `json:"filevault_enabled,omitempty"`
	EnrolledViaDEP               *bool  `json:"enrolled_via_dep,omitempty"`
	UserApprovedEnrollment       *bool  `json:"user_approved_enrollment,omitempty"`
	UserEnrollment               *bool  `json:"user_enrollment,omitempty"`
	ActivationLockManageable     *bool  `json:"activation_lock_manageable,omitempty"`
	BootstrapTokenAllowedForAuth string `json:"bootstrap_token_allowed_for_authentication,omitempty"`

	DeviceInformationAt time.Time `json:"device_information_at,omitzero"`
	SecurityInfoAt      time.Time `json:"security_info_at,omitzero"`

	// QueriedAt is when the inventory queries were last queued; Pending
	// holds their command UUIDs until each gets a final result.
	QueriedAt time.Time `json:"queried_at,omitzero"`
	Pending   []string  `json:"pending,omitempty"`

	// Retired devices were sent RemoveProfile for Orchard's MDM profile;
	// the record stays for history.
	Retired       bool      `json:"retired,omitempty"`
	RetiredAt     time.Time `json:"retired_at,omitzero"`
	RetireCommand string    `json:"retire_command,omitempty"`
}

// DeviceReport is the latest answer of one kind (a request type such as
// InstalledApplicationList) from one channel: the device's plist verbatim.
type DeviceReport struct {
	ChannelID   string    `json:"channel_id"`
	Kind        string    `json:"kind"`
	CommandUUID string    `json:"command_uuid"`
	At          time.Time `json:"at"`
	Raw         []byte    `json:"raw"`
}

// InventoryStore keeps device inventories and the latest answers devices
// gave to inventory-like commands.
type InventoryStore interface {
	InventorySearch
	FleetCounter
	// Inventory returns a channel's inventory, or ErrNotFound.
	Inventory(ctx context.Context, deviceID string) (*DeviceInventory, error)
	// UpdateInventory applies fn to the channel's inventory in one write and
	// returns the record written. When there is none, fn gets a new record
	// with only DeviceID set. fn may run more than once and must only change
	// inv; when it fails nothing is written and its error is returned, but
	// ErrUnchanged leaves the record as it was (none is created) and is not
	// an error: the record read is returned.
	UpdateInventory(ctx context.Context, deviceID string, fn func(inv *DeviceInventory) error) (*DeviceInventory, error)
	// ListInventory returns inventories ordered by DeviceID, after the given
	// ID, at most limit.
	ListInventory(ctx context.Context, after string, limit int) ([]DeviceInventory, error)
	// PutDeviceReport stores rep as the latest answer of its kind for its
	// channel, replacing the previous one. When fn is not nil it is applied
	// to the channel's inventory (as UpdateInventory does) in the same write.
	PutDeviceReport(ctx context.Context, rep *DeviceReport, fn func(inv *DeviceInventory) error) error
	// DeviceReport returns the latest answer of a kind, or ErrNotFound.
	DeviceReport(ctx context.Context, channel, kind string) (*DeviceReport, error)
}
