package commands_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		sets []string
		want map[string]any // the checked Command dict, after BuildCommand
	}{
		{"PIN stays a string", "DeviceLock", []string{`Message=Call IT`, `PIN=123456`},
			map[string]any{"RequestType": "DeviceLock", "Message": "Call IT", "PIN": "123456"}},
		{"value with =", "DeviceLock", []string{`Message=a=b`},
			map[string]any{"RequestType": "DeviceLock", "Message": "a=b"}},
		{"JSON array", "DeviceInformation", []string{`Queries=["UDID","OSVersion"]`},
			map[string]any{"RequestType": "DeviceInformation", "Queries": []any{"UDID", "OSVersion"}}},
		{"boolean and dotted dictionary keys", "EraseDevice", []string{`PreserveDataPlan=true`, `ReturnToService.Enabled=true`, `ReturnToService.WiFiProfileData=AAE=`},
			map[string]any{"RequestType": "EraseDevice", "PreserveDataPlan": true,
				"ReturnToService": map[string]any{"Enabled": true, "WiFiProfileData": []byte{0, 1}}}},
		{"integer", "InstallApplication", []string{`iTunesStoreID=361309726`, `ManagementFlags=5`},
			map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": int64(361309726), "ManagementFlags": int64(5)}},
		{"any: JSON or plain string", "InstallApplication", []string{`iTunesStoreID=1`, `Configuration.server={"port":443}`, `Configuration.name=Front desk`},
			map[string]any{"RequestType": "InstallApplication", "iTunesStoreID": int64(1),
				"Configuration": map[string]any{"server": map[string]any{"port": int64(443)}, "name": "Front desk"}}},
		{"no assignments", "DeviceLock", nil, map[string]any{"RequestType": "DeviceLock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := commands.ParseSet(tt.cmd, tt.sets)
			if err != nil {
				t.Fatalf("ParseSet: %v", err)
			}
			// The CLI ships the payload as JSON: make sure that survives.
			body, err := json.Marshal(commands.Request{RequestType: tt.cmd, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			req, err := commands.DecodeRequest(strings.NewReader(string(body)))
			if err != nil {
				t.Fatalf("DecodeRequest(%s): %v", body, err)
			}
			got, err := req.Build()
			if err != nil {
				t.Fatalf("Build(%s): %v", body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestParseSetRefuses(t *testing.T) {
	tests := []struct {
		name, cmd string
		sets      []string
		want      string
	}{
		{"unknown command", "Nope", []string{"A=1"}, `RequestType "Nope" is not an MDM command`},
		{"no equals", "DeviceLock", []string{"Message"}, `--set "Message": want Key=value`},
		{"empty name", "DeviceLock", []string{"=x"}, `--set "=x": want Key=value`},
		{"unknown key", "DeviceLock", []string{"Foo=1"}, `Payload.Foo: unknown key "Foo"`},
		{"unknown nested key", "EraseDevice", []string{"ReturnToService.Foo=1"}, `Payload.ReturnToService.Foo: unknown key "Foo"`},
		{"dot into a scalar", "DeviceLock", []string{"PIN.x=1"}, `Payload.PIN: is a string, not a dictionary`},
		{"bad boolean", "EraseDevice", []string{"PreserveDataPlan=yes please"}, `Payload.PreserveDataPlan: must be true or false`},
		{"bad number", "InstallApplication", []string{"iTunesStoreID=12ab"}, `Payload.iTunesStoreID: must be a number`},
		{"NaN is not a number", "InstallApplication", []string{"iTunesStoreID=NaN"}, `Payload.iTunesStoreID: must be a number`},
		{"array not JSON", "DeviceInformation", []string{"Queries=UDID"}, `Payload.Queries: must be a JSON array: `},
		{"set twice", "DeviceLock", []string{"PIN=1", "PIN=2"}, `Payload.PIN: set twice`},
		{"whole then by key", "EraseDevice", []string{`ReturnToService={"Enabled":true}`, "ReturnToService.Enabled=false"}, `Payload.ReturnToService: set both whole and by key`},
		{"by key then whole", "EraseDevice", []string{"ReturnToService.Enabled=false", `ReturnToService={"Enabled":true}`}, `Payload.ReturnToService: set both whole and by key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := commands.ParseSet(tt.cmd, tt.sets)
			if err == nil {
				t.Fatalf("accepted: %#v", got)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
}

// ParseSet types values; BuildCommand still applies the value rules.
func TestParseSetThenBuildChecksRules(t *testing.T) {
	payload, err := commands.ParseSet("InstallApplication", []string{"iTunesStoreID=1", "ManagementFlags=2"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = commands.BuildCommand("InstallApplication", payload)
	if err == nil || err.Error() != "Payload.ManagementFlags: must be one of 1, 4, 5" {
		t.Fatalf("BuildCommand error = %v", err)
	}
}
