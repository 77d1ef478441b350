package storagetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

// runResultEffect checks that StoreResult writes a result's Effect (the
// report and inventory derived from it) in the result's own transaction.
func runResultEffect(t *testing.T, open func(t *testing.T) storage.Store) {
	setup := func(t *testing.T) (storage.Store, *harness) {
		s := open(t)
		h := &harness{t: t, s: s, ctx: t.Context()}
		h.enroll("D1", "cert-a")
		h.enqueue("c1", "D1")
		h.wantNext("D1", "c1")
		return s, h
	}
	// effect keeps the answer and applies it, counting its calls.
	effect := func(calls *[]string) func(string) *storage.ResultEffect {
		return func(rt string) *storage.ResultEffect {
			*calls = append(*calls, rt)
			return &storage.ResultEffect{
				Report: &storage.DeviceReport{ChannelID: "D1", Kind: rt, CommandUUID: "c1", At: now(), Raw: []byte("<plist/>")},
				Inventory: func(inv *storage.DeviceInventory) error {
					inv.OSVersion, inv.Pending = "18.2", append(slices.Clone(inv.Pending), "seen-c1")
					return nil
				},
			}
		}
	}

	t.Run("WrittenWithTheResult", func(t *testing.T) {
		s, h := setup(t)
		var calls []string
		r := reportFor("D1", "c1", storage.Acknowledged)
		r.Effect = effect(&calls)
		if dup, err := s.StoreResult(h.ctx, r); err != nil || dup {
			t.Fatalf("StoreResult = %v, %v", dup, err)
		}
		if !slices.Equal(calls, []string{"ProfileList"}) {
			t.Errorf("Effect called with %q, want the command's request type once", calls)
		}
		rep, err := s.DeviceReport(h.ctx, "D1", "ProfileList")
		if err != nil || rep.CommandUUID != "c1" {
			t.Errorf("report: %+v, %v", rep, err)
		}
		inv, err := s.Inventory(h.ctx, "D1")
		if err != nil || inv.OSVersion != "18.2" || !slices.Equal(inv.Pending, []string{"seen-c1"}) {
			t.Errorf("inventory: %+v, %v", inv, err)
		}
		// A repeat is ignored: its effect is not asked for or written.
		again := reportFor("D1", "c1", storage.Acknowledged)
		again.Effect = effect(&calls)
		if dup, err := s.StoreResult(h.ctx, again); err != nil || !dup {
			t.Fatalf("repeat: StoreResult = %v, %v; want ignored", dup, err)
		}
		if len(calls) != 1 {
			t.Errorf("Effect called for an ignored repeat: %q", calls)
		}
		if inv, _ := s.Inventory(h.ctx, "D1"); len(inv.Pending) != 1 {
			t.Errorf("repeat changed the inventory: %+v", inv)
		}
	})

	t.Run("FailureWritesNothing", func(t *testing.T) {
		s, h := setup(t)
		boom := errors.New("boom")
		r := reportFor("D1", "c1", storage.Acknowledged)
		r.Effect = func(rt string) *storage.ResultEffect {
			return &storage.ResultEffect{
				Report:    &storage.DeviceReport{ChannelID: "D1", Kind: rt, CommandUUID: "c1", At: now()},
				Inventory: func(*storage.DeviceInventory) error { return boom },
			}
		}
		if _, err := s.StoreResult(h.ctx, r); !errors.Is(err, boom) {
			t.Fatalf("StoreResult = %v, want the effect's error", err)
		}
		if tg := h.target("c1", "D1"); tg.Status != storage.Queued || tg.ResultCount != 0 {
			t.Errorf("failed effect left the target %+v", tg)
		}
		if _, err := s.DeviceReport(h.ctx, "D1", "ProfileList"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("failed effect left a report: %v", err)
		}
		// The device sends it again: now it is stored.
		if _, err := s.StoreResult(h.ctx, reportFor("D1", "c1", storage.Acknowledged)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Unchanged", func(t *testing.T) {
		s, h := setup(t)
		r := reportFor("D1", "c1", storage.Acknowledged)
		r.Effect = func(rt string) *storage.ResultEffect {
			return &storage.ResultEffect{
				Report:    &storage.DeviceReport{ChannelID: "D1", Kind: rt, CommandUUID: "c1", At: now()},
				Inventory: func(*storage.DeviceInventory) error { return storage.ErrUnchanged },
			}
		}
		if _, err := s.StoreResult(h.ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeviceReport(h.ctx, "D1", "ProfileList"); err != nil {
			t.Errorf("report: %v", err)
		}
		if _, err := s.Inventory(h.ctx, "D1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ErrUnchanged created an inventory record: %v", err)
		}
		// UpdateInventory takes it the same way: the record read, no write.
		must(t, putInventory(h, s, "18.1"))
		got, err := s.UpdateInventory(h.ctx, "D1", func(inv *storage.DeviceInventory) error {
			inv.OSVersion = "changed"
			return storage.ErrUnchanged
		})
		if err != nil || got == nil {
			t.Fatalf("UpdateInventory with ErrUnchanged = %+v, %v", got, err)
		}
		if inv, _ := s.Inventory(h.ctx, "D1"); inv.OSVersion != "18.1" {
			t.Errorf("ErrUnchanged wrote the record: %+v", inv)
		}
	})
}

func putInventory(h *harness, s storage.Store, os string) error {
	_, err := s.UpdateInventory(h.ctx, "D1", func(inv *storage.DeviceInventory) error {
		inv.OSVersion = os
		return nil
	})
	return err
}
