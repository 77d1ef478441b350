package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runInventory is the conformance suite of storage.InventoryStore.
func runInventory(t *testing.T, newStore func(t *testing.T) storage.InventoryStore) {
	ctx := context.Background()
	yes := true
	gb := 118.5

	t.Run("CreateUpdateRead", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Inventory(ctx, "DEV1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing inventory: %v", err)
		}
		got, err := s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error {
			if inv.DeviceID != "DEV1" || !inv.CreatedAt.IsZero() || inv.Platform != "" {
				t.Errorf("new record is not empty: %+v", inv)
			}
			inv.DeviceID = "OTHER" // ignored: the key wins
			inv.CreatedAt, inv.Platform, inv.Supervised, inv.CapacityGB = t0, "iOS", &yes, &gb
			inv.Pending = []string{"U1", "U2"}
			return nil
		})
		if err != nil || got.DeviceID != "DEV1" || got.Platform != "iOS" {
			t.Fatalf("create: %+v %v", got, err)
		}
		read, err := s.Inventory(ctx, "DEV1")
		if err != nil {
			t.Fatal(err)
		}
		if read.DeviceID != "DEV1" || !read.CreatedAt.Equal(t0) || read.Supervised == nil || !*read.Supervised ||
			read.CapacityGB == nil || *read.CapacityGB != gb || len(read.Pending) != 2 {
			t.Fatalf("read back: %+v", read)
		}
		if _, err := s.Inventory(ctx, "OTHER"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("fn moved the record: %v", err)
		}
		_, err = s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error {
			if inv.Platform != "iOS" {
				t.Errorf("update sees %+v", inv)
			}
			inv.Pending = nil
			inv.OSVersion = "18.1"
			return nil
		})
		must(t, err)
		if read, _ := s.Inventory(ctx, "DEV1"); read.OSVersion != "18.1" || len(read.Pending) != 0 || read.Platform != "iOS" {
			t.Fatalf("after update: %+v", read)
		}
	})

	t.Run("FailedUpdateWritesNothing", func(t *testing.T) {
		s := newStore(t)
		boom := errors.New("boom")
		if _, err := s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error { inv.Platform = "x"; return boom }); !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		if _, err := s.Inventory(ctx, "DEV1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("failed create wrote a record: %v", err)
		}
		_, err := s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error { inv.Platform = "macOS"; return nil })
		must(t, err)
		_, err = s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error { inv.Platform = "lost"; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		if inv, _ := s.Inventory(ctx, "DEV1"); inv.Platform != "macOS" {
			t.Fatalf("failed update wrote: %+v", inv)
		}
	})

	t.Run("ConcurrentUpdatesSerialize", func(t *testing.T) {
		s := newStore(t)
		const n = 24
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.UpdateInventory(ctx, "DEV1", func(inv *storage.DeviceInventory) error {
					inv.Pending = append(inv.Pending, fmt.Sprint(i))
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		inv, err := s.Inventory(ctx, "DEV1")
		if err != nil || len(inv.Pending) != n {
			t.Fatalf("lost updates: %d of %d (%v)", len(inv.Pending), n, err)
		}
	})

	t.Run("ListPages", func(t *testing.T) {
		s := newStore(t)
		ids := []string{"C", "A", "B:user", "B", "D"}
		for _, id := range ids {
			_, err := s.UpdateInventory(ctx, id, func(inv *storage.DeviceInventory) error { inv.Model = "m-" + id; return nil })
			must(t, err)
		}
		var got []string
		after := ""
		for {
			page, err := s.ListInventory(ctx, after, 2)
			must(t, err)
			for _, inv := range page {
				if inv.Model != "m-"+inv.DeviceID {
					t.Errorf("record %s has model %q", inv.DeviceID, inv.Model)
				}
				got = append(got, inv.DeviceID)
				after = inv.DeviceID
			}
			if len(page) < 2 {
				break
			}
		}
		if fmt.Sprint(got) != "[A B B:user C D]" {
			t.Fatalf("listed %v", got)
		}
		if page, err := s.ListInventory(ctx, "D", 10); err != nil || len(page) != 0 {
			t.Fatalf("after the last: %v %v", page, err)
		}
		if page, err := s.ListInventory(ctx, "BB", 1); err != nil || len(page) != 1 || page[0].DeviceID != "C" {
			t.Fatalf("after an absent id: %v %v", page, err)
		}
	})

	t.Run("Reports", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.DeviceReport(ctx, "DEV1", "ProfileList"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing report: %v", err)
		}
		put := func(ch, kind, uuid string, at time.Time) {
			t.Helper()
			must(t, s.PutDeviceReport(ctx, &storage.DeviceReport{ChannelID: ch, Kind: kind, CommandUUID: uuid, At: at, Raw: []byte("<plist>" + uuid + "</plist>")}, nil))
		}
		put("DEV1", "ProfileList", "P1", t0)
		put("DEV1", "CertificateList", "C1", t0)
		put("DEV1:user", "ProfileList", "UP1", t0)
		put("DEV1", "ProfileList", "P2", t0.Add(time.Hour))
		for _, c := range []struct{ ch, kind, uuid string }{
			{"DEV1", "ProfileList", "P2"}, {"DEV1", "CertificateList", "C1"}, {"DEV1:user", "ProfileList", "UP1"},
		} {
			rep, err := s.DeviceReport(ctx, c.ch, c.kind)
			if err != nil || rep.CommandUUID != c.uuid || rep.ChannelID != c.ch || rep.Kind != c.kind ||
				!bytes.Equal(rep.Raw, []byte("<plist>"+c.uuid+"</plist>")) {
				t.Errorf("%s %s: %+v %v", c.ch, c.kind, rep, err)
			}
		}
		if rep, _ := s.DeviceReport(ctx, "DEV1", "ProfileList"); !rep.At.Equal(t0.Add(time.Hour)) {
			t.Errorf("replaced report has time %v", rep.At)
		}
		if _, err := s.Inventory(ctx, "DEV1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a report without fn created an inventory: %v", err)
		}
	})

	t.Run("ReportWithInventoryIsAtomic", func(t *testing.T) {
		s := newStore(t)
		rep := &storage.DeviceReport{ChannelID: "DEV1", Kind: "DeviceInformation", CommandUUID: "D1", At: t0, Raw: []byte("x")}
		boom := errors.New("boom")
		err := s.PutDeviceReport(ctx, rep, func(inv *storage.DeviceInventory) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("fn error: %v", err)
		}
		if _, err := s.DeviceReport(ctx, "DEV1", "DeviceInformation"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("failed write stored the report: %v", err)
		}
		must(t, s.PutDeviceReport(ctx, rep, func(inv *storage.DeviceInventory) error {
			inv.DeviceInformationAt, inv.DeviceName = t0, "Kim's iPhone"
			return nil
		}))
		inv, err := s.Inventory(ctx, "DEV1")
		if err != nil || inv.DeviceName != "Kim's iPhone" || !inv.DeviceInformationAt.Equal(t0) {
			t.Fatalf("inventory: %+v %v", inv, err)
		}
		if _, err := s.DeviceReport(ctx, "DEV1", "DeviceInformation"); err != nil {
			t.Fatalf("report: %v", err)
		}
	})
}
