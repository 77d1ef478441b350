package dep_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/dep"
	"github.com/orchardmdm/orchard/dep/deptest"
	"github.com/orchardmdm/orchard/storage"
)

func TestFullThenDeltaSync(t *testing.T) {
	e := newEnv(t, 2500, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	if n := e.count(storage.DEPDeviceFilter{TokenID: e.tokenID}); n != 2500 {
		t.Fatalf("after full sync: %d devices", n)
	}
	if c := e.fake.Calls("POST /server/devices"); c != 3 {
		t.Fatalf("fetch pages = %d, want 3 of 1000", c)
	}
	st := e.state()
	if st.Cursor == "" || st.NeedFull || st.LastFullSync.IsZero() {
		t.Fatalf("state after full: %+v", st)
	}
	d := e.device(deptest.Serial(1))
	if d.Model != "iPhone 15" || d.OS != "iOS" || d.DeviceFamily != "iPhone" || d.Color != "BLACK" ||
		d.AssetTag != "AT1" || d.DeviceAssignedBy == "" || d.DeviceAssignedDate.IsZero() || d.Status != storage.DEPMissingProfile {
		t.Fatalf("device fields: %+v", d)
	}

	e.svc.Tick(e.ctx) // nothing due yet
	if c := e.fake.Calls("POST /devices/sync"); c != 0 {
		t.Fatalf("synced before the delta interval: %d", c)
	}
	added := e.fake.AddDevices(3)
	e.fake.ReleaseDevices(deptest.Serial(5))
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	if c := e.fake.Calls("POST /devices/sync"); c != 1 {
		t.Fatalf("delta calls = %d", c)
	}
	if e.fake.Calls("POST /server/devices") != 3 {
		t.Fatal("delta interval ran a full sync")
	}
	if got := e.device(added[2]); got.Status != storage.DEPMissingProfile || got.OpType != "added" {
		t.Fatalf("added device: %+v", got)
	}
	if got := e.device(deptest.Serial(5)); got.Status != storage.DEPRemoved || got.Model == "" {
		t.Fatalf("released device: %+v", got)
	}
	if e.metrics.Get("Syncs", "delta ok") != 1 || e.metrics.Get("Syncs", "full ok") != 1 {
		t.Fatalf("syncs counted: %+v", e.metrics.Syncs)
	}
}

func TestExpiredCursorFallsBackToFullWithoutLoss(t *testing.T) {
	for _, code := range []string{"expire", "EXPIRED_CURSOR", "INVALID_CURSOR"} {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t, 1200, nil)
			e.addToken()
			e.svc.Tick(e.ctx)
			added := e.fake.AddDevices(2)
			if code == "expire" {
				e.fake.ExpireCursors()
			} else {
				e.fake.Inject("POST /devices/sync", deptest.Fault{Status: 400, Body: code})
			}
			e.clock.Advance(12 * time.Hour)
			res, err := e.svc.SyncNow(e.ctx, e.tokenID)
			if err != nil {
				t.Fatal(err)
			}
			if !res.CursorRefused || res.Kind != dep.SyncFull {
				t.Fatalf("result: %+v", res)
			}
			for _, s := range added {
				e.device(s)
			}
			if n := e.count(storage.DEPDeviceFilter{}); n != 1202 {
				t.Fatalf("devices = %d", n)
			}
			if st := e.state(); st.NeedFull || st.Cursor == "" {
				t.Fatalf("state: %+v", st)
			}
		})
	}
}

func TestTokenErrorStopsSyncs(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(*deptest.Server)
		reason string
	}{
		{"revoked oauth token", func(s *deptest.Server) { s.RejectToken(true) }, "oauth_problem=token_rejected"},
		{"access denied", func(s *deptest.Server) { s.DenyAccess(true) }, "ACCESS_DENIED"},
		{"terms not signed", func(s *deptest.Server) {
			s.Inject("POST /devices/sync", deptest.Fault{Status: 403, Body: "T_C_NOT_SIGNED"})
		}, "T_C_NOT_SIGNED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 10, nil)
			e.addToken()
			e.svc.Tick(e.ctx)
			tc.break_(e.fake)
			e.clock.Advance(12 * time.Hour)
			e.svc.Tick(e.ctx)
			v, err := e.svc.Token(e.ctx, e.tokenID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != storage.DEPTokenRejected || !strings.Contains(v.StatusReason, tc.reason) {
				t.Fatalf("token: %+v", v)
			}
			calls := e.fake.Calls("GET /session") + e.fake.Calls("POST /devices/sync") + e.fake.Calls("POST /server/devices")
			for range 5 {
				e.clock.Advance(13 * time.Hour)
				e.svc.Tick(e.ctx)
			}
			if after := e.fake.Calls("GET /session") + e.fake.Calls("POST /devices/sync") + e.fake.Calls("POST /server/devices"); after != calls {
				t.Fatalf("kept calling Apple with a rejected token: %d -> %d", calls, after)
			}
			var unusable *dep.TokenUnusableError
			if _, err := e.svc.SyncNow(e.ctx, e.tokenID); !errors.As(err, &unusable) {
				t.Fatalf("manual sync of a rejected token: %v", err)
			}
			if e.metrics.Get("Syncs", "delta token_rejected") != 1 {
				t.Fatalf("not counted: %+v", e.metrics.Syncs)
			}

			// Renewal with a fresh token restores syncing and keeps the data.
			e.fake.RejectToken(false)
			e.fake.DenyAccess(false)
			fresh := deptest.NewToken()
			e.fake.AddToken(fresh)
			before := e.state().Cursor
			v, err = e.svc.RenewToken(e.ctx, e.tokenID, deptest.P7M(t, sharedKeys(t).Cert, fresh))
			if err != nil || v.Status != storage.DEPTokenOK {
				t.Fatalf("renew: %+v %v", v, err)
			}
			if e.state().Cursor != before || e.count(storage.DEPDeviceFilter{}) != 10 {
				t.Fatal("renewal lost the cursor or devices")
			}
			e.fake.AddDevices(1)
			if _, err := e.svc.SyncNow(e.ctx, e.tokenID); err != nil {
				t.Fatalf("sync after renewal: %v", err)
			}
			if e.count(storage.DEPDeviceFilter{}) != 11 {
				t.Fatal("sync after renewal did not run")
			}
		})
	}
}

// failingStore fails SaveDEPPage on call number failAt (1-based), like a
// full disk or a crash between pages.
type failingStore struct {
	storage.DEPStore
	calls, failAt int32
}

func (f *failingStore) SaveDEPPage(ctx context.Context, d []storage.DEPDevice, st storage.DEPSyncState, now time.Time) ([]storage.DEPDevice, error) {
	if atomic.AddInt32(&f.calls, 1) == f.failAt {
		return nil, errors.New("disk full")
	}
	return f.DEPStore.SaveDEPPage(ctx, d, st, now)
}

func TestStorageFailureNeverMovesCursorPastDevices(t *testing.T) {
	var fs *failingStore
	e := newEnv(t, 2500, func(s storage.DEPStore) storage.DEPStore {
		fs = &failingStore{DEPStore: s, failAt: 2}
		return fs
	})
	e.addToken()
	_, err := e.svc.SyncNow(e.ctx, e.tokenID)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("sync err = %v", err)
	}
	st := e.state()
	// The fake's fetch cursor is F.<gen>.<offset>.<event>: offset devices
	// were handed out before it.
	parts := strings.Split(st.FetchCursor, ".")
	if len(parts) != 4 {
		t.Fatalf("fetch cursor %q", st.FetchCursor)
	}
	offset, _ := strconv.Atoi(parts[2])
	if stored := e.count(storage.DEPDeviceFilter{}); stored != offset || stored != 1000 {
		t.Fatalf("cursor at %d but %d devices stored", offset, stored)
	}
	if !st.NeedFull || st.Cursor != "" {
		t.Fatalf("state: %+v", st)
	}
	e.clock.Advance(time.Hour)
	e.svc.Tick(e.ctx)
	if n := e.count(storage.DEPDeviceFilter{}); n != 2500 {
		t.Fatalf("after resume: %d devices", n)
	}
	// Resumed from the saved cursor: 3 first-run pages requested + 2 more.
	if c := e.fake.Calls("POST /server/devices"); c != 4 {
		t.Fatalf("fetch calls = %d, want 2 then 2 resumed", c)
	}
}

func TestDuplicateEventsAreIgnored(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	e.fake.AddDevices(1)
	e.fake.ReplayLastEvent()
	e.fake.ReplayLastEvent()
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	st := e.state()
	if st.LastError != "" {
		t.Fatal(st.LastError)
	}
	if c := e.metrics.Devices; c != 6 {
		t.Fatalf("stored %d device records, want 5 + 1 (duplicates skipped)", c)
	}
}

func TestFailedDeltaMakesNextSyncFull(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	e.fake.Inject("POST /devices/sync", deptest.Fault{Status: 500, Body: "INTERNAL_ERROR"})
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	st := e.state()
	if !st.NeedFull || st.Failures != 1 || !strings.Contains(st.LastError, "INTERNAL_ERROR") || !st.NotBefore.After(e.clock.Now()) {
		t.Fatalf("state after failed delta: %+v", st)
	}
	if e.metrics.Get("APIErrors", "devices/sync INTERNAL_ERROR") != 1 {
		t.Fatalf("failure not counted: %+v", e.metrics.APIErrors)
	}
	e.svc.Tick(e.ctx) // still backing off
	if e.fake.Calls("POST /server/devices") != 1 {
		t.Fatal("retried during backoff")
	}
	e.clock.Advance(time.Hour)
	e.svc.Tick(e.ctx)
	if e.fake.Calls("POST /server/devices") != 2 || e.fake.Calls("POST /devices/sync") != 1 {
		t.Fatalf("next sync was not full: fetch=%d sync=%d", e.fake.Calls("POST /server/devices"), e.fake.Calls("POST /devices/sync"))
	}
	if st := e.state(); st.NeedFull || st.Failures != 0 {
		t.Fatalf("state after recovery: %+v", st)
	}
}

func TestThrottledSyncWaitsRetryAfter(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	e.fake.Inject("POST /devices/sync", deptest.Fault{Status: 429, RetryAfter: "7200"})
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	st := e.state()
	if want := e.clock.Now().Add(2 * time.Hour); !st.NotBefore.Equal(want) {
		t.Fatalf("NotBefore %v, want Retry-After honoured (%v)", st.NotBefore, want)
	}
	e.clock.Advance(time.Hour)
	e.svc.Tick(e.ctx)
	if e.fake.Calls("POST /server/devices") != 1 {
		t.Fatal("synced before Retry-After passed")
	}
	e.clock.Advance(time.Hour)
	e.svc.Tick(e.ctx)
	if e.fake.Calls("POST /server/devices") != 2 {
		t.Fatal("did not sync after Retry-After")
	}
}

func TestManualSyncLimits(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	if _, err := e.svc.SyncNow(e.ctx, e.tokenID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	_, err := e.svc.SyncNow(e.ctx, e.tokenID)
	var soon *dep.TooSoonError
	if !errors.As(err, &soon) || soon.Wait != 10*time.Minute {
		t.Fatalf("second manual sync: %v", err)
	}
	e.clock.Advance(10 * time.Minute)

	release := e.fake.Block()
	done := make(chan error, 1)
	go func() { _, err := e.svc.SyncNow(e.ctx, e.tokenID); done <- err }()
	for e.fake.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := e.svc.SyncNow(e.ctx, e.tokenID); !errors.Is(err, dep.ErrSyncRunning) {
		t.Fatalf("concurrent manual sync: %v", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRemovedDevicesAreDeletedAfter45Days(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	e.fake.ReleaseDevices(deptest.Serial(2))
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx)
	if d := e.device(deptest.Serial(2)); d.Status != storage.DEPRemoved {
		t.Fatalf("status %s", d.Status)
	}
	e.clock.Advance(44 * 24 * time.Hour)
	e.svc.Tick(e.ctx)
	e.device(deptest.Serial(2))
	e.clock.Advance(2 * 24 * time.Hour)
	e.svc.Tick(e.ctx)
	if _, err := e.store.DEPDevice(e.ctx, deptest.Serial(2)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("removed device kept after 45 days: %v", err)
	}
	if e.count(storage.DEPDeviceFilter{}) != 4 {
		t.Fatal("purge touched other devices")
	}
}

func TestDeletedDeviceReturnsOnFullSync(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	if err := e.svc.DeleteDevice(e.ctx, deptest.Serial(3)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(12 * time.Hour)
	e.svc.Tick(e.ctx) // delta: Apple reports no change
	if _, err := e.store.DEPDevice(e.ctx, deptest.Serial(3)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("delta sync brought back a device Apple did not change")
	}
	e.clock.Advance(7 * 24 * time.Hour)
	e.svc.Tick(e.ctx)
	if d := e.device(deptest.Serial(3)); d.Status != storage.DEPMissingProfile {
		t.Fatalf("returned device: %+v", d)
	}
}

func TestFullSyncMarksUnlistedDevicesRemoved(t *testing.T) {
	e := newEnv(t, 5, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	e.fake.ReleaseDevices(deptest.Serial(4))
	e.fake.ExpireCursors() // the delta that would report it is lost
	e.clock.Advance(12 * time.Hour)
	res, err := e.svc.SyncNow(e.ctx, e.tokenID)
	if err != nil || res.Removed != 1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if d := e.device(deptest.Serial(4)); d.Status != storage.DEPRemoved {
		t.Fatalf("status %s", d.Status)
	}
}

func TestMarkEnrolledSurvivesSync(t *testing.T) {
	e := newEnv(t, 3, nil)
	e.addToken()
	e.svc.Tick(e.ctx)
	if err := e.svc.MarkEnrolled(e.ctx, deptest.Serial(0)); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MarkEnrolled(e.ctx, "NOPE"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	e.svc.Tick(e.ctx) // full sync rewrites Apple's fields
	if d := e.device(deptest.Serial(0)); d.Status != storage.DEPEnrolled || d.EnrolledAt.IsZero() {
		t.Fatalf("enrolled lost: %+v", d)
	}
	got, err := e.svc.Devices(e.ctx, storage.DEPDeviceFilter{Status: storage.DEPEnrolled})
	if err != nil || len(got) != 1 {
		t.Fatalf("filter enrolled: %d %v", len(got), err)
	}
}

func TestRunSyncsUntilCancelled(t *testing.T) {
	e := newEnv(t, 3, nil, dep.WithServiceClock(realClockForRun{}), dep.WithSchedule(dep.Schedule{Tick: 5 * time.Millisecond}))
	e.addToken()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.count(storage.DEPDeviceFilter{}) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run never synced")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type realClockForRun struct{}

func (realClockForRun) Now() time.Time { return time.Now() }
func (realClockForRun) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
