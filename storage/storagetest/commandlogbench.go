package storagetest

import (
	"fmt"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// BenchCommandLog measures a page of 50 of the fleet-wide command log
// after commands commands, each to perCommand of the enrolled channels ids
// (taken in turn), written by as many concurrent writers: one command in
// ten a DeviceLock, one in a hundred sent by hana's token, the others by
// the bootstrap key or Orchard. The first page and a filtered page must
// cost the same at any log size; a status nothing has costs one bounded
// scan (storage.CommandLogScan entries).
func BenchCommandLog(b *testing.B, s storage.Store, ids []string, commands, perCommand, writers int) {
	senders := []string{"bootstrap", ""}
	SeedEach(b, commands, writers, func(i int) error {
		c := command(b, fmt.Sprint("log-", i), "ProfileList")
		if i%10 == 0 {
			c.RequestType = "DeviceLock"
		}
		c.Sender = senders[i%2]
		if i%100 == 1 {
			c.Sender = "hana/token:t1"
		}
		from := i * perCommand % len(ids)
		return s.Enqueue(b.Context(), c, ids[from:from+perCommand])
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
