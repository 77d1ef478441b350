package inventory

import (
	"errors"
	"fmt"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// answerDict is a result's answer dictionary (QueryResponses,
// SecurityInfo) as decoded with its report.
func answerDict(v any, key string) (map[string]any, error) {
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("answer has no %s dictionary", key)
	}
	return d, nil
}

// Typed reads that tolerate a device sending an unexpected type: the value
// is then treated as absent.

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func boolp(m map[string]any, k string) *bool {
	b, ok := m[k].(bool)
	if !ok {
		return nil
	}
	return &b
}

func floatp(m map[string]any, k string) *float64 {
	var f float64
	switch v := m[k].(type) {
	case float64:
		f = v
	case float32:
		f = float64(v)
	case int64:
		f = float64(v)
	case uint64:
		f = float64(v)
	case int:
		f = float64(v)
	default:
		return nil
	}
	return &f
}

func dict(m map[string]any, k string) map[string]any {
	d, _ := m[k].(map[string]any)
	return d
}

var errNoAnswer = errors.New("no answer")

// parseDeviceInformation reads a DeviceInformation answer into a function
// that applies it: every field it covers is replaced, so a value the device
// stopped reporting does not linger.
func parseDeviceInformation(answer any, at time.Time) (func(*storage.DeviceInventory), error) {
	q, err := answerDict(answer, "QueryResponses")
	if err != nil {
		return nil, err
	}
	if len(q) == 0 {
		return nil, errNoAnswer
	}
	return func(inv *storage.DeviceInventory) {
		if p := platformOf(str(q, "ProductName"), str(q, "ModelName")); p != "" {
			inv.Platform = p
		}
		inv.DeviceName = str(q, "DeviceName")
		inv.Model = str(q, "Model")
		inv.ModelName = str(q, "ModelName")
		inv.ModelNumber = str(q, "ModelNumber")
		inv.ProductName = str(q, "ProductName")
		inv.OSVersion = str(q, "OSVersion")
		inv.BuildVersion = str(q, "BuildVersion")
		inv.SupplementalBuildVersion = str(q, "SupplementalBuildVersion")
		inv.SerialNumber = str(q, "SerialNumber")
		inv.UDID = str(q, "UDID")
		inv.IMEI = str(q, "IMEI")
		inv.MEID = str(q, "MEID")
		inv.PhoneNumber = str(q, "PhoneNumber")
		inv.WiFiMAC = str(q, "WiFiMAC")
		inv.BluetoothMAC = str(q, "BluetoothMAC")
		inv.EthernetMAC = str(q, "EthernetMAC")
		inv.TimeZone = str(q, "TimeZone")
		inv.Supervised = boolp(q, "IsSupervised")
		inv.MultiUser = boolp(q, "IsMultiUser")
		inv.ActivationLockEnabled = boolp(q, "IsActivationLockEnabled")
		inv.FindMyEnabled = boolp(q, "IsDeviceLocatorServiceEnabled")
		inv.LostModeEnabled = boolp(q, "IsMDMLostModeEnabled")
		inv.AppleSilicon = boolp(q, "IsAppleSilicon")
		inv.PINRequiredForDeviceLock = boolp(q, "PINRequiredForDeviceLock")
		inv.PINRequiredForEraseDevice = boolp(q, "PINRequiredForEraseDevice")
		inv.CapacityGB = floatp(q, "DeviceCapacity")
		inv.AvailableGB = floatp(q, "AvailableDeviceCapacity")
		inv.BatteryLevel = floatp(q, "BatteryLevel")
		inv.DeviceInformationAt = at
	}, nil
}

// parseSecurityInfo reads a SecurityInfo answer the same way.
func parseSecurityInfo(answer any, at time.Time) (func(*storage.DeviceInventory), error) {
	s, err := answerDict(answer, "SecurityInfo")
	if err != nil {
		return nil, err
	}
	ms := dict(s, "ManagementStatus")
	return func(inv *storage.DeviceInventory) {
		inv.PasscodePresent = boolp(s, "PasscodePresent")
		inv.PasscodeCompliant = boolp(s, "PasscodeCompliant")
		inv.FileVaultEnabled = boolp(s, "FDE_Enabled")
		inv.BootstrapTokenAllowedForAuth = str(s, "BootstrapTokenAllowedForAuthentication")
		inv.EnrolledViaDEP = boolp(ms, "EnrolledViaDEP")
		inv.UserApprovedEnrollment = boolp(ms, "UserApprovedEnrollment")
		if ue := boolp(ms, "IsUserEnrollment"); ue != nil {
			inv.UserEnrollment = ue
		}
		inv.ActivationLockManageable = boolp(ms, "IsActivationLockManageable")
		inv.SecurityInfoAt = at
	}, nil
}
