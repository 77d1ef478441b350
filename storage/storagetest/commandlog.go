package storagetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

type commandLogStore interface {
	storage.MDMStore
	storage.CommandLog
}

// runCommandLog: the fleet-wide log lists every target newest first with
// its command, sender and latest result; each filter selects exactly its
// entries; paging by next visits every entry once and ends with 0.
func runCommandLog(t *testing.T, open func(t *testing.T) commandLogStore) {
	s := open(t)
	h := &harness{t: t, s: s, ctx: t.Context()}
	const a, b = "LOG-A", "LOG-B"
	h.enroll(a, "cert-a")
	h.enroll(b, "cert-b")
	t0 := now().Add(-24 * time.Hour)
	send := func(uuid, requestType, sender string, hours int, channels ...string) {
		t.Helper()
		c := command(t, uuid, requestType)
		c.Sender, c.CreatedAt = sender, t0.Add(time.Duration(hours)*time.Hour)
		if err := s.Enqueue(h.ctx, c, channels); err != nil {
			t.Fatalf("Enqueue(%s): %v", uuid, err)
		}
	}
	send("c1", "ProfileList", "alice", 0, a)
	send("c2", "DeviceLock", "alice/token:t1", 1, a, b) // bulk: one entry per target
	send("c3", "ProfileList", "", 2, b)                 // Orchard's own
	send("c4", "DeviceLock", "bob", 3, a)
	send("c5", "ProfileList", "alicia", 4, b) // not alice's
	h.result(a, "c1", storage.Acknowledged)
	h.result(b, "c2", storage.Error)

	list := func(f storage.CommandFilter) ([]storage.ChannelCommand, string) {
		t.Helper()
		got, next, err := s.ListCommands(h.ctx, f)
		if err != nil {
			t.Fatalf("ListCommands(%+v): %v", f, err)
		}
		if next != 0 {
			t.Fatalf("ListCommands(%+v): next %d with every entry read", f, next)
		}
		return got, names(got)
	}
	all, got := list(storage.CommandFilter{})
	if want := "c5/LOG-B c4/LOG-A c3/LOG-B c2/LOG-B c2/LOG-A c1/LOG-A"; got != want {
		t.Fatalf("log = %s, want %s", got, want)
	}
	c1 := all[5]
	if c1.Command.Sender != "alice" || c1.Command.RequestType != "ProfileList" || len(c1.Command.Raw) != 0 ||
		!c1.Command.CreatedAt.Equal(t0) || c1.Target.Status != storage.Acknowledged ||
		c1.Result == nil || c1.Result.Status != storage.Acknowledged || c1.Result.ChannelID != a {
		t.Fatalf("answered entry = %+v (result %+v)", c1, c1.Result)
	}
	if all[0].Result != nil || all[0].Target.Status != storage.Queued || all[0].Target.ChannelID != b {
		t.Fatalf("queued entry = %+v", all[0])
	}

	for _, c := range []struct {
		f    storage.CommandFilter
		want string
	}{
		{storage.CommandFilter{RequestType: "DeviceLock"}, "c4/LOG-A c2/LOG-B c2/LOG-A"},
		{storage.CommandFilter{Status: storage.Error}, "c2/LOG-B"},
		{storage.CommandFilter{Status: storage.Queued}, "c5/LOG-B c4/LOG-A c3/LOG-B c2/LOG-A"},
		{storage.CommandFilter{Sender: "alice"}, "c2/LOG-B c2/LOG-A c1/LOG-A"},
		{storage.CommandFilter{Sender: "alice/token:t1"}, "c2/LOG-B c2/LOG-A"},
		{storage.CommandFilter{Sender: "bob"}, "c4/LOG-A"},
		{storage.CommandFilter{Sender: "nobody"}, ""},
		{storage.CommandFilter{Since: t0.Add(2 * time.Hour)}, "c5/LOG-B c4/LOG-A c3/LOG-B"},
		{storage.CommandFilter{Until: t0.Add(2 * time.Hour)}, "c2/LOG-B c2/LOG-A c1/LOG-A"},
		{storage.CommandFilter{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, "c3/LOG-B c2/LOG-B c2/LOG-A"},
		{storage.CommandFilter{Since: t0.Add(48 * time.Hour)}, ""},
		{storage.CommandFilter{RequestType: "DeviceLock", Status: storage.Queued}, "c4/LOG-A c2/LOG-A"},
		{storage.CommandFilter{RequestType: "ProfileList", Sender: "alice", Status: storage.Acknowledged}, "c1/LOG-A"},
		{storage.CommandFilter{RequestType: "EraseDevice"}, ""},
	} {
		if _, got := list(c.f); got != c.want {
			t.Errorf("ListCommands(%+v) = %q, want %q", c.f, got, c.want)
		}
	}

	// Pages of two, then of one with a filter: every entry once, in order.
	for _, c := range []struct {
		f    storage.CommandFilter
		want string
	}{
		{storage.CommandFilter{Limit: 2}, "c5/LOG-B c4/LOG-A c3/LOG-B c2/LOG-B c2/LOG-A c1/LOG-A"},
		{storage.CommandFilter{Limit: 1, Sender: "alice"}, "c2/LOG-B c2/LOG-A c1/LOG-A"},
		{storage.CommandFilter{Limit: 3}, "c5/LOG-B c4/LOG-A c3/LOG-B c2/LOG-B c2/LOG-A c1/LOG-A"},
	} {
		var seen []string
		f := c.f
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("paging %+v does not end", c.f)
			}
			page, next, err := s.ListCommands(h.ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > f.Limit {
				t.Fatalf("page of %d, limit %d", len(page), f.Limit)
			}
			if p := names(page); p != "" {
				seen = append(seen, p)
			}
			if next == 0 {
				break
			}
			f.Before = next
		}
		if got := strings.Join(seen, " "); got != c.want {
			t.Errorf("pages of %+v = %s, want %s", c.f, got, c.want)
		}
	}
	// A cursor from an entry's own Seq starts below it.
	if page, _, err := s.ListCommands(h.ctx, storage.CommandFilter{Before: all[2].Target.Seq}); err != nil ||
		names(page) != "c2/LOG-B c2/LOG-A c1/LOG-A" {
		t.Fatalf("before c3's seq = %s, %v", names(page), err)
	}
	if empty, next, err := open(t).ListCommands(h.ctx, storage.CommandFilter{}); err != nil || len(empty) != 0 || next != 0 {
		t.Fatalf("empty store = %v, %d, %v", empty, next, err)
	}
}

// names is "uuid/channel" of each entry, space-separated.
func names(page []storage.ChannelCommand) string {
	out := make([]string, 0, len(page))
	for _, cc := range page {
		out = append(out, fmt.Sprintf("%s/%s", cc.Command.UUID, cc.Target.ChannelID))
	}
	return strings.Join(out, " ")
}

// runCommandLogScan: one call examines at most storage.CommandLogScan
// entries, so a filter that matches only past them answers an empty page
// with a next, and following next reaches the match.
func runCommandLogScan(t *testing.T, open func(t *testing.T) commandLogStore) {
	s := open(t)
	h := &harness{t: t, s: s, ctx: t.Context()}
	n := storage.CommandLogScan + 50
	channels := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const workers = 32
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				channels[i] = fmt.Sprintf("SCAN-%05d", i)
				e := deviceRecord(channels[i], "cert-"+channels[i])
				if err := s.UpdateEnrollment(h.ctx, channels[i], &e, func(*storage.Enrollment) error { return nil }); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	old := command(t, "old-lock", "DeviceLock")
	if err := s.Enqueue(h.ctx, old, channels[:1]); err != nil {
		t.Fatal(err)
	}
	h.enqueue("bulk", channels...) // n ProfileList targets above the lock

	f := storage.CommandFilter{RequestType: "DeviceLock"}
	page, next, err := s.ListCommands(h.ctx, f)
	if err != nil || len(page) != 0 || next == 0 {
		t.Fatalf("first page past the scan bound = %s, next %d, %v; want empty with a next", names(page), next, err)
	}
	f.Before = next
	page, next, err = s.ListCommands(h.ctx, f)
	if err != nil || names(page) != "old-lock/SCAN-00000" || next != 0 {
		t.Fatalf("second page = %s, next %d, %v; want the lock and the end", names(page), next, err)
	}
	// Unfiltered pages are full whatever the bound.
	if all, next, err := s.ListCommands(h.ctx, storage.CommandFilter{Limit: 1000}); err != nil || len(all) != 1000 || next == 0 {
		t.Fatalf("unfiltered page = %d entries, next %d, %v", len(all), next, err)
	}
}
