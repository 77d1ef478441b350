package commands_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands"
)

func TestEligible(t *testing.T) {
	y, n := commands.Yes, commands.No
	tests := []struct {
		name    string
		cmd     string
		target  commands.Target
		reasons []string // nil: eligible
	}{
		{"nothing known", "DeviceLock", commands.Target{}, nil},
		{"iPhone", "DeviceLock", commands.Target{Platform: "iOS", OSVersion: "17.4"}, nil},
		{"iPadOS maps to iOS", "DeviceLock", commands.Target{Platform: "iPadOS", OSVersion: "17.4"}, nil},
		{"platform case-insensitive", "DeviceLock", commands.Target{Platform: "macos", OSVersion: "14.0"}, nil},
		{"unsupported platform", "DeviceLock", commands.Target{Platform: "tvOS"}, []string{"not supported on tvOS"}},
		{"unknown platform", "DeviceLock", commands.Target{Platform: "PalmOS"}, []string{`unknown platform "PalmOS"`}},
		{"unknown channel", "DeviceLock", commands.Target{Channel: "fax"}, []string{`unknown channel "fax"`}},
		{"too old", "SetRecoveryLock", commands.Target{Platform: "macOS", OSVersion: "11.4"}, []string{"needs macOS 11.5 or later (device has 11.4)"}},
		{"exactly introduced", "SetRecoveryLock", commands.Target{Platform: "macOS", OSVersion: "11.5"}, nil},
		{"needs supervision", "ScheduleOSUpdate", commands.Target{Platform: "iOS", Supervised: n}, []string{"needs a supervised device"}},
		{"supervision unknown", "ScheduleOSUpdate", commands.Target{Platform: "iOS"}, nil},
		{"supervised", "ScheduleOSUpdate", commands.Target{Platform: "iOS", Supervised: y}, nil},
		{"needs ADE", "AccountConfiguration", commands.Target{Platform: "macOS", ADE: n}, []string{"needs a device enrolled through Automated Device Enrollment"}},
		{"ADE unknown", "AccountConfiguration", commands.Target{Platform: "macOS"}, nil},
		{"user enrollment forbidden", "EraseDevice", commands.Target{Platform: "iOS", UserEnrollment: y}, []string{"not available with User Enrollment"}},
		{"user enrollment allowed", "DeviceLock", commands.Target{Platform: "iOS", UserEnrollment: y}, nil},
		{"shared iPad required", "UserList", commands.Target{Platform: "iPadOS", SharedIPad: n}, []string{"needs Shared iPad"}},
		{"shared iPad present", "UserList", commands.Target{Platform: "iPadOS", SharedIPad: y}, nil},
		{"shared iPad forbidden", "ActivationLockBypassCode", commands.Target{Platform: "iPadOS", SharedIPad: y}, []string{"not available on Shared iPad"}},
		{"macOS user channel", "DeviceLock", commands.Target{Platform: "macOS", Channel: commands.UserChannel}, []string{"not available on the user channel"}},
		{"macOS user-channel-only command", "ActiveNSExtensions", commands.Target{Platform: "macOS", Channel: commands.DeviceChannel}, []string{"not available on the device channel"}},
		{"macOS user channel ok", "ActiveNSExtensions", commands.Target{Platform: "macOS", Channel: commands.UserChannel}, nil},
		{"iPhone has no user channel", "DeviceInformation", commands.Target{Platform: "iOS", Channel: commands.UserChannel, SharedIPad: n}, []string{"not available on the user channel"}},
		{"iOS user channel implies Shared iPad", "DeviceInformation", commands.Target{Platform: "iOS", Channel: commands.UserChannel}, nil},
		{"Shared iPad user channel refused", "DeviceLock", commands.Target{Platform: "iPadOS", Channel: commands.UserChannel}, []string{"not available on the Shared iPad user channel"}},
		{"Shared iPad device channel refused", "InviteToProgram", commands.Target{Platform: "iPadOS", SharedIPad: y}, []string{"not available on the Shared iPad device channel"}},
		{"InviteToProgram on an iPhone", "InviteToProgram", commands.Target{Platform: "iOS", SharedIPad: n}, nil},
		{"several reasons", "ScheduleOSUpdate", commands.Target{Platform: "iOS", OSVersion: "8.4", Supervised: n, UserEnrollment: y},
			[]string{"needs iOS 9.0 or later (device has 8.4)", "needs a supervised device", "not available with User Enrollment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := commands.Lookup(tt.cmd)
			if !ok {
				t.Fatalf("no command %s", tt.cmd)
			}
			checkEligible(t, c, tt.target, tt.reasons)
		})
	}
}

// Apple's command-level entries have no "removed" today; check the rule on
// a hand-made command.
func TestEligibleRemoved(t *testing.T) {
	c := &commands.Command{RequestType: "Old", Platforms: []commands.Support{
		{OS: "iOS", Introduced: "5.0", Removed: "12.0", DeviceChannel: true},
	}}
	checkEligible(t, c, commands.Target{Platform: "iOS", OSVersion: "11.4.1"}, nil)
	checkEligible(t, c, commands.Target{Platform: "iOS", OSVersion: "12.0"}, []string{"removed in iOS 12.0 (device has 12.0)"})
}

func checkEligible(t *testing.T, c *commands.Command, target commands.Target, want []string) {
	t.Helper()
	err := c.Eligible(target)
	if want == nil {
		if err != nil {
			t.Fatalf("Eligible(%+v) = %v, want nil", target, err)
		}
		return
	}
	var ie *commands.IneligibleError
	if !errors.As(err, &ie) {
		t.Fatalf("Eligible(%+v) = %v, want *IneligibleError", target, err)
	}
	if ie.RequestType != c.RequestType || !reflect.DeepEqual(ie.Reasons, want) {
		t.Errorf("reasons = %q, want %q", ie.Reasons, want)
	}
}

func TestKnown(t *testing.T) {
	if commands.Known(true) != commands.Yes || commands.Known(false) != commands.No {
		t.Error("Known does not map bools to Yes/No")
	}
	if commands.Fact(0) != commands.Unknown {
		t.Error("zero Fact is not Unknown")
	}
}

func TestUnsupportedKeys(t *testing.T) {
	tests := []struct {
		name, platform, body string
		want                 []string
	}{
		{"PIN is macOS only", "iOS", `{"request_type":"DeviceLock","payload":{"Message":"m","PIN":"123456"}}`, []string{"PIN"}},
		{"PIN on macOS", "macOS", `{"request_type":"DeviceLock","payload":{"Message":"m","PIN":"123456"}}`, nil},
		{"setting item not on macOS", "macOS", `{"request_type":"Settings","payload":{"Settings":[{"Item":"DeviceName","DeviceName":"x"},{"Item":"Wallpaper","Image":"AA==","Where":1}]}}`, []string{"Settings[1]"}},
		{"nested key", "tvOS", `{"request_type":"EraseDevice","payload":{"PreserveDataPlan":true,"ReturnToService":{"Enabled":true}}}`, []string{"PreserveDataPlan"}},
		{"unknown platform", "PalmOS", `{"request_type":"DeviceLock","payload":{"PIN":"1"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := commands.DecodeRequest(strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			cmd, err := req.Build()
			if err != nil {
				t.Fatal(err)
			}
			c, _ := commands.Lookup(req.RequestType)
			if got := c.Unsupported(tt.platform, cmd); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unsupported(%s) = %q, want %q", tt.platform, got, tt.want)
			}
		})
	}
}

// The software update commands Apple removed after OS 26.0 are refused on
// newer targets, kept on 26.0 (and its patch releases) and older.
func TestEligibleOSUpdateCommandsEndAt26(t *testing.T) {
	for _, rt := range []string{"ScheduleOSUpdate", "AvailableOSUpdates", "OSUpdateStatus", "ScheduleOSUpdateScan"} {
		c, ok := commands.Lookup(rt)
		if !ok {
			t.Fatalf("%s not in the schema", rt)
		}
		for _, tc := range []struct {
			platform, version string
			refused           bool
		}{
			{"macOS", "15.6", false}, {"macOS", "26.0", false}, {"macOS", "26.0.1", false},
			{"macOS", "26.1", true}, {"macOS", "27.0", true}, {"iOS", "26.0.1", false}, {"iPadOS", "26.2", true},
		} {
			if _, ok := c.Platform(map[string]string{"macOS": "macOS", "iOS": "iOS", "iPadOS": "iOS"}[tc.platform]); !ok {
				continue // ScheduleOSUpdateScan is macOS only
			}
			err := c.Eligible(commands.Target{Platform: tc.platform, OSVersion: tc.version, Supervised: commands.Yes})
			if refused := err != nil; refused != tc.refused {
				t.Errorf("%s on %s %s: %v, refused want %v", rt, tc.platform, tc.version, err, tc.refused)
			}
			if tc.refused && !strings.Contains(err.Error(), "Declarative Device Management") {
				t.Errorf("%s on %s %s: reason %q does not name the way forward", rt, tc.platform, tc.version, err)
			}
		}
	}
}
