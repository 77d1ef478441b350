package bolt_test

import (
	"fmt"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// BenchmarkCommandLog measures a page of the fleet-wide command log on a
// store holding 100,000 commands (one target each, over 1,000 devices; one
// in ten a DeviceLock, one in a hundred sent by hana, the rest by the
// bootstrap key or Orchard). The first page and a filtered page must cost
// the same at any log size; a filter nothing matches costs one bounded
// scan (storage.CommandLogScan entries).
func BenchmarkCommandLog(b *testing.B) {
	const devices, commands = 1000, 100_000
	s, ids := benchStore(b, devices, 0, 0)
	senders := []string{"bootstrap", ""}
	parallel(b, commands, func(i int) error {
		c := newCommand(b, fmt.Sprint("log-", i))
		if i%10 == 0 {
			c.RequestType = "DeviceLock"
		}
		c.Sender = senders[i%2]
		if i%100 == 1 {
			c.Sender = "hana/token:t1"
		}
		return s.Enqueue(b.Context(), c, ids[i%devices:i%devices+1])
	})
	for _, bc := range []struct {
		name string
		f    storage.CommandFilter
		want int
	}{
		{"first-page", storage.CommandFilter{Limit: 50}, 50},
		{"type=DeviceLock", storage.CommandFilter{Limit: 50, RequestType: "DeviceLock"}, 50},
		{"sender=hana", storage.CommandFilter{Limit: 50, Sender: "hana"}, 50},
		{"status=Error(none)", storage.CommandFilter{Limit: 50, Status: storage.Error}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, _, err := s.ListCommands(b.Context(), bc.f)
				if err != nil || len(page) != bc.want {
					b.Fatalf("ListCommands = %d entries, %v; want %d", len(page), err, bc.want)
				}
			}
		})
	}
}
