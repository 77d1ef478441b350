package inventory

import (
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// Platform names as Orchard reports them.
const (
	IOS      = "iOS"
	IPadOS   = "iPadOS"
	MacOS    = "macOS"
	TVOS     = "tvOS"
	VisionOS = "visionOS"
	WatchOS  = "watchOS"
)

// platformOf tells the platform from a product name or a model name.
func platformOf(productName, modelName string) string { return mdm.Platform(productName, modelName) }

// schemaOS is the platform name Apple's schema uses (iPadOS shares iOS's).
func schemaOS(platform string) string {
	if platform == IPadOS {
		return IOS
	}
	return platform
}

// OwnershipOf says who owns a device from how it enrolled; a renewal keeps
// what was known before.
func OwnershipOf(method string, prev storage.Ownership) storage.Ownership {
	switch method {
	case storage.KindADE, storage.KindConfigurator:
		return storage.Corporate
	case storage.KindRenewal, "":
		if prev != "" {
			return prev
		}
	}
	return storage.Personal
}

// platform bits for the query table.
type platforms uint8

const (
	ios platforms = 1 << iota
	mac
	tv
	vision
	watch
)

func bitOf(platform string) platforms {
	switch schemaOS(platform) {
	case IOS:
		return ios
	case MacOS:
		return mac
	case TVOS:
		return tv
	case VisionOS:
		return vision
	case WatchOS:
		return watch
	}
	return 0
}

// deviceQueries are the DeviceInformation queries Apple documents, with the
// platforms that answer each and those where User Enrollment forbids it
// (information.device.yaml in Apple's device-management schema). Left out:
// PushToken (a secret Orchard already has from TokenUpdate),
// DevicePropertiesAttestation (needs a nonce and is large) and
// SIMCarrierNetwork (no longer supported).
var deviceQueries = []struct {
	key        string
	on, ueDeny platforms
}{
	{"UDID", ios | mac | tv | vision | watch, ios | mac | vision},
	{"ProvisioningUDID", mac, mac},
	{"OrganizationInfo", ios | mac | tv | vision | watch, 0},
	{"MDMOptions", ios | mac | tv | vision | watch, 0},
	{"LastCloudBackupDate", ios | vision, ios | vision},
	{"AwaitingConfiguration", ios | mac | tv | vision | watch, ios | mac | vision},
	{"iTunesStoreAccountIsActive", ios | mac | tv | watch, ios | mac},
	{"iTunesStoreAccountHash", ios | mac | tv | watch, ios | mac},
	{"DeviceName", ios | mac | tv | vision | watch, 0},
	{"OSVersion", ios | mac | tv | vision | watch, 0},
	{"SupplementalOSVersionExtra", ios | mac | tv | vision | watch, 0},
	{"BuildVersion", ios | mac | tv | vision | watch, 0},
	{"SupplementalBuildVersion", ios | mac | tv | vision | watch, 0},
	{"ModelName", ios | mac | tv | vision | watch, 0},
	{"Model", ios | mac | tv | watch, 0},
	{"ModelNumber", ios | mac | tv | vision | watch, 0},
	{"IsAppleSilicon", mac, 0},
	{"ProductName", ios | mac | tv | vision | watch, 0},
	{"SerialNumber", ios | mac | tv | vision | watch, ios | mac | vision},
	{"DeviceCapacity", ios | mac | vision | watch, 0},
	{"AvailableDeviceCapacity", ios | mac | vision | watch, 0},
	{"IMEI", ios, ios},
	{"MEID", ios, ios},
	{"ModemFirmwareVersion", ios, ios},
	{"CellularTechnology", ios, 0},
	{"BatteryLevel", ios | mac | vision | watch, 0},
	{"HasBattery", mac, 0},
	{"IsSupervised", ios | mac | tv | vision | watch, 0},
	{"IsMultiUser", ios, 0},
	{"IsDeviceLocatorServiceEnabled", ios | vision | watch, 0},
	{"IsActivationLockEnabled", ios | mac | watch, ios | mac},
	{"IsActivationLockSupported", mac, mac},
	{"IsDoNotDisturbInEffect", ios | vision | watch, ios | vision},
	{"DeviceID", tv, 0},
	{"EASDeviceIdentifier", ios | vision, 0},
	{"IsCloudBackupEnabled", ios | vision, ios | vision},
	{"ActiveManagedUsers", mac, 0},
	{"OSUpdateSettings", mac, mac},
	{"LocalHostName", mac, 0},
	{"HostName", mac, 0},
	{"AutoSetupAdminAccounts", mac, mac},
	{"SystemIntegrityProtectionEnabled", mac, 0},
	{"SupportsLOMDevice", mac, 0},
	{"IsMDMLostModeEnabled", ios | watch, ios},
	{"MaximumResidentUsers", ios, ios},
	{"EstimatedResidentUsers", ios, ios},
	{"QuotaSize", ios, ios},
	{"ResidentUsers", ios, ios},
	{"UserSessionTimeout", ios, ios},
	{"TemporarySessionTimeout", ios, ios},
	{"TemporarySessionOnly", ios, ios},
	{"ManagedAppleIDDefaultDomains", ios, ios},
	{"OnlineAuthenticationGracePeriod", ios, ios},
	{"SkipLanguageAndLocaleSetupForNewUsers", ios, ios},
	{"DiagnosticSubmissionEnabled", ios | vision | watch, 0},
	{"AppAnalyticsEnabled", ios | vision | watch, 0},
	{"TimeZone", ios | tv | vision | watch, 0},
	{"ICCID", ios, ios},
	{"BluetoothMAC", ios | mac | tv | vision, ios | mac | vision},
	{"WiFiMAC", ios | mac | tv | vision | watch, ios | mac | vision},
	{"EthernetMAC", mac, mac},
	{"CurrentCarrierNetwork", ios, ios},
	{"SubscriberCarrierNetwork", ios, ios},
	{"CarrierSettingsVersion", ios, ios},
	{"PhoneNumber", ios, ios},
	{"DataRoamingEnabled", ios, ios},
	{"VoiceRoamingEnabled", ios, ios},
	{"PersonalHotspotEnabled", ios, ios},
	{"IsNetworkTethered", ios, 0},
	{"IsRoaming", ios, ios},
	{"SubscriberMCC", ios, ios},
	{"SubscriberMNC", ios, ios},
	{"CurrentMCC", ios, ios},
	{"CurrentMNC", ios, ios},
	{"ServiceSubscriptions", ios, ios},
	{"PINRequiredForEraseDevice", mac, mac},
	{"PINRequiredForDeviceLock", mac, mac},
	{"SupportsiOSAppInstalls", mac, 0},
	{"SoftwareUpdateDeviceID", ios | mac | vision, ios | mac | vision},
	{"SoftwareUpdateSettings", ios, ios},
	{"AccessibilitySettings", ios | watch, ios},
	{"EACSPreflight", mac, mac},
}

// queriesFor returns the queries for a platform; an unknown platform gets
// the queries every platform answers plus the iOS and macOS ones, since a
// device ignores queries it does not know.
func queriesFor(platform string, userEnrollment bool) []any {
	bit := bitOf(platform)
	if bit == 0 {
		bit = ios | mac
	}
	var out []any
	for _, q := range deviceQueries {
		if q.on&bit == 0 || userEnrollment && q.ueDeny&bit == bit {
			continue
		}
		out = append(out, q.key)
	}
	return out
}
