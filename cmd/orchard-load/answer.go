package main

import (
	"fmt"

	"github.com/orchardmdm/orchard/internal/simdevice"
)

// answer is what the simulated device reports for a command:
// DeviceInformation gets QueryResponses for the queries it asked, with
// values an iPhone would give; anything else is Acknowledged.
func answer(d *simdevice.Device, c *simdevice.Command) (string, map[string]any) {
	if c.RequestType != "DeviceInformation" {
		return "Acknowledged", nil
	}
	facts := deviceFacts(d)
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
}

// deviceFacts uses the DeviceInformation query keys of Apple's schema.
func deviceFacts(d *simdevice.Device) map[string]any {
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
		"IsSupervised":                  true,
		"IsActivationLockEnabled":       false,
		"IsDeviceLocatorServiceEnabled": true,
		"IsCloudBackupEnabled":          true,
		"WiFiMAC":                       macFor(d, 0x10),
		"BluetoothMAC":                  macFor(d, 0x20),
		"IMEI":                          "35 209900 176148 1",
		"ModemFirmwareVersion":          "2.00.01",
		"TimeZone":                      "Europe/Paris",
	}
}

func macFor(d *simdevice.Device, salt byte) string {
	var sum byte
	for i := 0; i < len(d.UDID); i++ {
		sum = sum*31 + d.UDID[i]
	}
	return fmt.Sprintf("a4:83:e7:%02x:%02x:%02x", salt, sum, len(d.UDID))
}
