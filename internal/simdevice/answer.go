package simdevice

import (
	"context"
	"strings"
)

// Answer is the simulated device's default Answerer: it answers the
// queries an MDM server sends after enrollment as a real device would
// (DeviceInformation with the queried values it knows, SecurityInfo), and
// acknowledges anything else.
func (d *Device) Answer(c *Command) (string, map[string]any) {
	switch c.RequestType {
	case "DeviceInformation":
		known := map[string]any{
			"UDID": d.UDID, "DeviceName": d.DeviceName, "OSVersion": d.OSVersion, "BuildVersion": d.BuildVersion,
			"ModelName": d.ModelName, "Model": d.Model, "ProductName": d.ProductName, "SerialNumber": d.SerialNumber,
			"IsSupervised": false, "IsActivationLockEnabled": false, "DeviceCapacity": 128.0, "AvailableDeviceCapacity": 64.5,
			"BatteryLevel": 0.8, "WiFiMAC": "a4:83:e7:00:00:01",
		}
		out := map[string]any{}
		queries, _ := c.Payload["Queries"].([]any)
		for _, q := range queries {
			if k, ok := q.(string); ok {
				if v, ok := known[k]; ok {
					out[k] = v
				}
			}
		}
		return "Acknowledged", map[string]any{"QueryResponses": out}
	case "SecurityInfo":
		info := map[string]any{"PasscodePresent": true, "PasscodeCompliant": true, "HardwareEncryptionCaps": 3}
		if strings.HasPrefix(d.ProductName, "Mac") {
			info = map[string]any{"FDE_Enabled": true, "SystemIntegrityProtectionEnabled": true}
		}
		return "Acknowledged", map[string]any{"SecurityInfo": info}
	}
	return "Acknowledged", nil
}

// Settle connects until the server has nothing more for the device,
// answering with Answer: after enrollment, the server's own queries.
func (d *Device) Settle(ctx context.Context) ([]*Command, error) { return d.Drain(ctx, d.Answer) }
