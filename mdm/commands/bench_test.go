package commands_test

import (
	"os"
	"testing"

	"github.com/orchardmdm/orchard/mdm/commands"
)

func BenchmarkFromJSON(b *testing.B) {
	settings, err := os.ReadFile("testdata/settings.json")
	if err != nil {
		b.Fatal(err)
	}
	bodies := map[string][]byte{
		"DeviceLock": []byte(`{"request_type":"DeviceLock","payload":{"Message":"Call IT","PIN":"123456"}}`),
		"Settings":   settings,
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := commands.FromJSON(testUUID, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidatePlist(b *testing.B) {
	raw, err := os.ReadFile("testdata/settings_bare.plist")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := commands.ValidatePlist(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEligible(b *testing.B) {
	c, _ := commands.Lookup("ScheduleOSUpdate")
	target := commands.Target{Platform: "iPadOS", OSVersion: "17.4.1", Supervised: commands.Yes, SharedIPad: commands.No}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Eligible(target); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListingJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := commands.ListingJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
