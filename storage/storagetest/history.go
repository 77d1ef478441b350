package storagetest

import (
	"testing"

	"github.com/orchardmdm/orchard/storage"
)

type historyStore interface {
	storage.MDMStore
	storage.CommandHistory
}

// runHistory: a channel's history lists its own commands newest first,
// with its own target and latest result, pages with before, and outlives
// the queue (answered commands stay in it).
func runHistory(t *testing.T, open func(t *testing.T) historyStore) {
	s := open(t)
	h := &harness{t: t, s: s, ctx: t.Context()}
	const a, b = "HIST-A", "HIST-B"
	h.enroll(a, "cert-a")
	h.enroll(b, "cert-b")
	h.enqueue("c1", a)
	h.enqueue("c2", a, b) // a bulk command: each channel sees its own target
	h.enqueue("c3", b)
	h.enqueue("c4", a)
	h.result(a, "c1", storage.Acknowledged)

	got, err := s.ChannelCommands(h.ctx, a, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var uuids []string
	for _, cc := range got {
		uuids = append(uuids, cc.Command.UUID)
		if cc.Target.ChannelID != a {
			t.Errorf("%s: target of %s, want %s", cc.Command.UUID, cc.Target.ChannelID, a)
		}
	}
	if len(uuids) != 3 || uuids[0] != "c4" || uuids[1] != "c2" || uuids[2] != "c1" {
		t.Fatalf("history of A = %v, want [c4 c2 c1]", uuids)
	}
	c1 := got[2]
	if c1.Target.Status != storage.Acknowledged || c1.Result == nil || c1.Result.Status != storage.Acknowledged ||
		c1.Command.RequestType != "ProfileList" || len(c1.Command.Raw) != 0 {
		t.Fatalf("answered command = %+v (result %+v)", c1, c1.Result)
	}
	if got[0].Result != nil || got[0].Target.Status != storage.Queued {
		t.Fatalf("queued command = %+v", got[0])
	}

	// Paging: before the second entry's position.
	page, err := s.ChannelCommands(h.ctx, a, got[1].Target.Seq, 10)
	if err != nil || len(page) != 1 || page[0].Command.UUID != "c1" {
		t.Fatalf("page before c2 = %+v, %v", page, err)
	}
	if one, err := s.ChannelCommands(h.ctx, a, 0, 1); err != nil || len(one) != 1 || one[0].Command.UUID != "c4" {
		t.Fatalf("limit 1 = %+v, %v", one, err)
	}
	if none, err := s.ChannelCommands(h.ctx, "HIST-NONE", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("unknown channel = %+v, %v", none, err)
	}
	// A channel whose ID extends another's is not mixed in.
	if bh, err := s.ChannelCommands(h.ctx, b, 0, 10); err != nil || len(bh) != 2 || bh[0].Command.UUID != "c3" {
		t.Fatalf("history of B = %+v, %v", bh, err)
	}
}
