package simdevice

import (
	"context"
	"fmt"
	"strings"
)

// Answer is the simulated device's default Answerer: it answers the
// queries an MDM server sends after enrollment as a real device would
// (DeviceInformation with the queried values it knows, SecurityInfo),
// installs, removes and lists configuration profiles, and acknowledges
// anything else.
func (d *Device) Answer(c *Command) (string, map[string]any) {
	switch c.RequestType {
	case "DeviceInformation":
		facts := d.Facts()
		out := map[string]any{}
		queries, _ := c.Payload["Queries"].([]any)
		for _, q := range queries {
			if k, ok := q.(string); ok {
				if v, ok := facts[k]; ok {
					out[k] = v
				}
			}
		}
		if len(queries) == 0 {
			out = facts
		}
		return "Acknowledged", map[string]any{"QueryResponses": out}
	case "SecurityInfo":
		info := map[string]any{"PasscodePresent": true, "PasscodeCompliant": true, "HardwareEncryptionCaps": 3}
		if strings.HasPrefix(d.ProductName, "Mac") {
			info = map[string]any{"FDE_Enabled": true, "SystemIntegrityProtectionEnabled": true}
		}
		return "Acknowledged", map[string]any{"SecurityInfo": info}
	case "InstallProfile", "RemoveProfile", "ProfileList":
		return d.answerProfile(c)
	}
	return "Acknowledged", nil
}

// Facts are the device's answers to DeviceInformation queries, keyed by
// the query names of Apple's schema.
func (d *Device) Facts() map[string]any {
	return map[string]any{
		"UDID":                          d.UDID,
		"SerialNumber":                  d.SerialNumber,
		"DeviceName":                    d.DeviceName,
		"Model":                         d.Model,
		"ModelName":                     d.ModelName,
		"ProductName":                   d.ProductName,
		"OSVersion":                     d.OSVersion,
		"BuildVersion":                  d.BuildVersion,
		"DeviceCapacity":                119.2,
		"AvailableDeviceCapacity":       87.5,
		"BatteryLevel":                  0.82,
		"IsSupervised":                  d.Supervised,
		"IsActivationLockEnabled":       false,
		"IsDeviceLocatorServiceEnabled": true,
		"IsCloudBackupEnabled":          true,
		"WiFiMAC":                       d.mac(0x10),
		"BluetoothMAC":                  d.mac(0x20),
		"IMEI":                          "35 209900 176148 1",
		"ModemFirmwareVersion":          "2.00.01",
		"TimeZone":                      "Europe/Paris",
	}
}

// mac derives a stable MAC address from the UDID.
func (d *Device) mac(salt byte) string {
	var sum byte
	for i := 0; i < len(d.UDID); i++ {
		sum = sum*31 + d.UDID[i]
	}
	return fmt.Sprintf("a4:83:e7:%02x:%02x:%02x", salt, sum, len(d.UDID))
}

// Settle connects until the server has nothing more for the device,
// answering with Answer: after enrollment, the server's own queries.
func (d *Device) Settle(ctx context.Context) ([]*Command, error) { return d.Drain(ctx, d.Answer) }
