package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// runDEP is the conformance suite of storage.DEPStore.
func runDEP(t *testing.T, newStore func(t *testing.T) storage.DEPStore) {
	ctx := context.Background()
	tok := func(id string) storage.DEPToken {
		return storage.DEPToken{ID: id, Name: "tok " + id, SealedCredentials: []byte("sealed"), Status: storage.DEPTokenOK, CreatedAt: t0}
	}
	dev := func(serial, token string) storage.DEPDevice {
		return storage.DEPDevice{Serial: serial, TokenID: token, Model: "iPad"}
	}

	t.Run("TokenCRUD", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.DEPToken(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing token: %v", err)
		}
		for _, id := range []string{"b", "a"} {
			if err := s.PutDEPToken(ctx, tok(id)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.UpdateDEPToken(ctx, "a", func(x *storage.DEPToken) error { x.Note = "n"; return nil })
		if err != nil || got.Note != "n" || got.Name != "tok a" {
			t.Fatalf("update: %+v %v", got, err)
		}
		boom := errors.New("boom")
		if _, err := s.UpdateDEPToken(ctx, "a", func(x *storage.DEPToken) error { x.Note = "lost"; return boom }); !errors.Is(err, boom) {
			t.Fatalf("update error: %v", err)
		}
		if x, _ := s.DEPToken(ctx, "a"); x.Note != "n" || string(x.SealedCredentials) != "sealed" {
			t.Fatalf("failed update wrote: %+v", x)
		}
		if _, err := s.UpdateDEPToken(ctx, "zz", func(*storage.DEPToken) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		all, err := s.DEPTokens(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "a" || all[1].ID != "b" {
			t.Fatalf("list: %+v %v", all, err)
		}
	})

	t.Run("DeleteTokenRefusedWhileInUse", func(t *testing.T) {
		s := newStore(t)
		x := tok("a")
		x.DefaultProfileID = "p1"
		must(t, s.PutDEPToken(ctx, x))
		must(t, s.CreateDEPProfile(ctx, storage.DEPProfile{ID: "p1", TokenID: "a", Name: "p"}, 10))
		_, err := s.SaveDEPPage(ctx, []storage.DEPDevice{dev("S1", "a"), dev("S2", "a"), dev("S3", "other")}, storage.DEPSyncState{TokenID: "a"}, t0)
		must(t, err)
		var inUse *storage.DEPTokenInUseError
		if err := s.DeleteDEPToken(ctx, "a"); !errors.As(err, &inUse) || inUse.Devices != 2 || inUse.Profiles != 1 || inUse.DefaultProfile != "p1" {
			t.Fatalf("delete in use: %v %+v", err, inUse)
		}
		if _, err := s.DEPToken(ctx, "a"); err != nil {
			t.Fatalf("refused delete removed the token: %v", err)
		}
		if err := s.DeleteDEPProfile(ctx, "a", "p1"); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("deleting the default profile: %v", err)
		}
		_, err = s.UpdateDEPToken(ctx, "a", func(x *storage.DEPToken) error { x.DefaultProfileID = ""; return nil })
		must(t, err)
		must(t, s.DeleteDEPProfile(ctx, "a", "p1"))
		must(t, s.DeleteDEPDevice(ctx, "S1"))
		must(t, s.DeleteDEPDevice(ctx, "S2"))
		must(t, s.DeleteDEPToken(ctx, "a"))
		if _, err := s.DEPToken(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("token survived delete: %v", err)
		}
		if st, err := s.DEPSyncState(ctx, "a"); err != nil || st.Cursor != "" {
			t.Fatalf("sync state survived delete: %+v %v", st, err)
		}
		if err := s.DeleteDEPToken(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete missing: %v", err)
		}
	})

	t.Run("PageAndCursorTogether", func(t *testing.T) {
		s := newStore(t)
		st, err := s.DEPSyncState(ctx, "a")
		if err != nil || st.TokenID != "a" || st.Cursor != "" {
			t.Fatalf("fresh state: %+v %v", st, err)
		}
		st.Cursor = "c1"
		changed, err := s.SaveDEPPage(ctx, []storage.DEPDevice{dev("S1", "a"), {Serial: ""}, dev("S2", "a")}, st, t0)
		if err != nil || len(changed) != 2 {
			t.Fatalf("save: %d %v", len(changed), err)
		}
		got, _ := s.DEPSyncState(ctx, "a")
		if got.Cursor != "c1" {
			t.Fatalf("cursor not saved with the page: %+v", got)
		}
		d, err := s.DEPDevice(ctx, "S1")
		if err != nil || d.Status != storage.DEPMissingProfile || !d.SeenAt.Equal(t0) {
			t.Fatalf("device: %+v %v", d, err)
		}
	})

	t.Run("MergeRules", func(t *testing.T) {
		s := newStore(t)
		st := storage.DEPSyncState{TokenID: "a"}
		op := func(serial, typ string, at time.Time, profile string) storage.DEPDevice {
			d := dev(serial, "a")
			d.OpType, d.OpDate, d.ProfileUUID = typ, at, profile
			return d
		}
		tests := []struct {
			name        string
			in          storage.DEPDevice
			wantChanged bool
			want        storage.DEPDeviceStatus
		}{
			{"added with profile", op("S1", "added", t0, "P"), true, storage.DEPReady},
			{"same event again is a duplicate", op("S1", "added", t0, "P"), false, storage.DEPReady},
			{"older event ignored", op("S1", "deleted", t0.Add(-time.Hour), ""), false, storage.DEPReady},
			{"profile removed", op("S1", "modified", t0.Add(time.Hour), ""), true, storage.DEPMissingProfile},
			{"released from ABM", storage.DEPDevice{Serial: "S1", OpType: "deleted", OpDate: t0.Add(2 * time.Hour)}, true, storage.DEPRemoved},
			{"full fetch lists it again", dev("S1", "a"), true, storage.DEPMissingProfile},
		}
		for _, tc := range tests {
			changed, err := s.SaveDEPPage(ctx, []storage.DEPDevice{tc.in}, st, t0)
			if err != nil {
				t.Fatal(err)
			}
			if (len(changed) == 1) != tc.wantChanged {
				t.Errorf("%s: changed=%d want %v", tc.name, len(changed), tc.wantChanged)
			}
			d, _ := s.DEPDevice(ctx, "S1")
			if d.Status != tc.want {
				t.Errorf("%s: status %s want %s", tc.name, d.Status, tc.want)
			}
			if tc.want == storage.DEPRemoved && (d.RemovedAt.IsZero() || d.TokenID != "a" || d.Model != "iPad") {
				t.Errorf("%s: removed record lost fields: %+v", tc.name, d)
			}
		}
		// Enrolled survives syncs until Apple releases the device.
		must(t, s.UpdateDEPDevices(ctx, []string{"S1", "nope"}, func(d *storage.DEPDevice) error {
			d.Status = storage.DEPEnrolled
			return nil
		}))
		_, err := s.SaveDEPPage(ctx, []storage.DEPDevice{op("S1", "modified", t0.Add(3*time.Hour), "P")}, st, t0)
		must(t, err)
		if d, _ := s.DEPDevice(ctx, "S1"); d.Status != storage.DEPEnrolled {
			t.Errorf("enrolled lost on sync: %s", d.Status)
		}
		if _, err := s.DEPDevice(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("UpdateDEPDevices created an unknown serial")
		}
		boom := errors.New("boom")
		if err := s.UpdateDEPDevices(ctx, []string{"S1"}, func(d *storage.DEPDevice) error { d.Model = "x"; return boom }); !errors.Is(err, boom) {
			t.Errorf("update error: %v", err)
		}
		if d, _ := s.DEPDevice(ctx, "S1"); d.Model != "iPad" {
			t.Errorf("failed update wrote")
		}
	})

	t.Run("UnseenRemovedAndPurge", func(t *testing.T) {
		s := newStore(t)
		_, err := s.SaveDEPPage(ctx, []storage.DEPDevice{dev("S1", "a"), dev("S2", "a"), dev("S3", "b")}, storage.DEPSyncState{TokenID: "a"}, t0)
		must(t, err)
		_, err = s.SaveDEPPage(ctx, []storage.DEPDevice{dev("S1", "a")}, storage.DEPSyncState{TokenID: "a"}, t0.Add(time.Hour))
		must(t, err)
		n, err := s.MarkUnseenDEPDevicesRemoved(ctx, "a", t0.Add(time.Minute), t0.Add(2*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("unseen: %d %v", n, err)
		}
		if d, _ := s.DEPDevice(ctx, "S2"); d.Status != storage.DEPRemoved {
			t.Fatalf("S2 not removed: %s", d.Status)
		}
		if d, _ := s.DEPDevice(ctx, "S3"); d.Status == storage.DEPRemoved {
			t.Fatalf("other token's device removed")
		}
		if n, _ := s.PurgeRemovedDEPDevices(ctx, t0.Add(time.Hour)); n != 0 {
			t.Fatalf("purged too early: %d", n)
		}
		if n, _ := s.PurgeRemovedDEPDevices(ctx, t0.Add(3*time.Hour)); n != 1 {
			t.Fatalf("purge: %d", n)
		}
		if _, err := s.DEPDevice(ctx, "S2"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("purged device still there")
		}
	})

	t.Run("ListFilterPaginate", func(t *testing.T) {
		s := newStore(t)
		var page []storage.DEPDevice
		for i := range 25 {
			d := dev(fmt.Sprintf("S%03d", i), []string{"a", "b"}[i%2])
			if i%5 == 0 {
				d.ProfileUUID = "P"
			}
			page = append(page, d)
		}
		_, err := s.SaveDEPPage(ctx, page, storage.DEPSyncState{TokenID: "a"}, t0)
		must(t, err)
		tests := []struct {
			f    storage.DEPDeviceFilter
			want int
		}{
			{storage.DEPDeviceFilter{}, 25},
			{storage.DEPDeviceFilter{TokenID: "a"}, 13},
			{storage.DEPDeviceFilter{Status: storage.DEPReady}, 5},
			{storage.DEPDeviceFilter{TokenID: "b", Status: storage.DEPReady}, 2},
			{storage.DEPDeviceFilter{Serial: "S007"}, 1},
			{storage.DEPDeviceFilter{Serial: "S007", TokenID: "a"}, 0},
			{storage.DEPDeviceFilter{Serial: "nope"}, 0},
		}
		for _, tc := range tests {
			got, err := s.DEPDevices(ctx, tc.f)
			if err != nil || len(got) != tc.want {
				t.Errorf("%+v: %d devices, want %d (%v)", tc.f, len(got), tc.want, err)
			}
			if n, _ := s.CountDEPDevices(ctx, tc.f); n != tc.want {
				t.Errorf("%+v: count %d want %d", tc.f, n, tc.want)
			}
		}
		var all []string
		after := ""
		for {
			got, err := s.DEPDevices(ctx, storage.DEPDeviceFilter{After: after, Limit: 10})
			must(t, err)
			if len(got) == 0 {
				break
			}
			for _, d := range got {
				all = append(all, d.Serial)
			}
			after = got[len(got)-1].Serial
		}
		if len(all) != 25 || all[0] != "S000" || all[24] != "S024" {
			t.Fatalf("pagination: %v", all)
		}
	})

	t.Run("Profiles", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"p2", "p1"} {
			must(t, s.CreateDEPProfile(ctx, storage.DEPProfile{ID: id, TokenID: "a", Name: id}, 2))
		}
		must(t, s.CreateDEPProfile(ctx, storage.DEPProfile{ID: "q", TokenID: "ab", Name: "q"}, 2))
		if err := s.CreateDEPProfile(ctx, storage.DEPProfile{ID: "p3", TokenID: "a"}, 2); !errors.Is(err, storage.ErrLimit) {
			t.Fatalf("limit: %v", err)
		}
		if err := s.CreateDEPProfile(ctx, storage.DEPProfile{ID: "p1", TokenID: "a"}, 5); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		ps, err := s.DEPProfiles(ctx, "a")
		if err != nil || len(ps) != 2 || ps[0].ID != "p1" {
			t.Fatalf("list: %+v %v", ps, err)
		}
		if err := s.PutDEPProfile(ctx, storage.DEPProfile{ID: "zz", TokenID: "a"}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("put missing: %v", err)
		}
		must(t, s.PutDEPProfile(ctx, storage.DEPProfile{ID: "p1", TokenID: "a", Name: "renamed"}))
		if p, _ := s.DEPProfile(ctx, "a", "p1"); p.Name != "renamed" {
			t.Fatalf("put: %+v", p)
		}
		must(t, s.DeleteDEPProfile(ctx, "a", "p1"))
		if _, err := s.DEPProfile(ctx, "a", "p1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted profile: %v", err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
