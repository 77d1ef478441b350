package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/plist"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/profiles"
	"github.com/orchardmdm/orchard/internal/scope"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// pushRecorder stands in for APNs.
type pushRecorder struct {
	mu sync.Mutex
	n  int
}

func (p *pushRecorder) PushChannels(_ context.Context, ch []string) {
	p.mu.Lock()
	p.n += len(ch)
	p.mu.Unlock()
}

// enqueued counts what the command service queued, per request type.
type enqueued struct {
	mu       sync.Mutex
	commands map[string]int
	targets  map[string]int
}

func (e *enqueued) CommandsEnqueued(rt string, n int) {
	e.mu.Lock()
	e.commands[rt]++
	e.targets[rt] += n
	e.mu.Unlock()
}

type harness struct {
	t      testing.TB
	queued *enqueued
	store  *bolt.Store
	cmds   *command.Service
	rec    *profiles.Reconciler
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHarness(t testing.TB) *harness {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	q := &enqueued{commands: map[string]int{}, targets: map[string]int{}}
	cmds, err := command.New(store, store, &pushRecorder{}, command.WithLogger(quiet()), command.WithObserver(q))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := profiles.New(store, cmds, &scope.Resolver{Devices: scope.StoreDevices{Store: store}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, queued: q, store: store, cmds: cmds, rec: rec}
}

func (h *harness) enroll(id, product string) {
	h.t.Helper()
	e := storage.Enrollment{
		ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: time.Now(),
		Topic: "com.apple.mgmt.External.test", Token: []byte{1, 2, 3}, PushMagic: "magic",
		Facts: &storage.DeviceFacts{UDID: id, ProductName: product, Model: product}, CertHash: "hash-" + id,
	}
	if err := h.store.Authenticate(context.Background(), &storage.AuthenticateRecord{Enrollment: e}); err != nil {
		h.t.Fatal(err)
	}
}

// putProfile stores version v of com.example.wifi with the given scope.
func (h *harness) putProfile(v int, s scope.Scope, reinstall bool) *storage.Profile {
	h.t.Helper()
	sc, err := json.Marshal(s)
	if err != nil {
		h.t.Fatal(err)
	}
	uuid := fmt.Sprintf("UUID-%d", v)
	p := &storage.Profile{ID: "com.example.wifi", Version: v, UUID: uuid, Scope: sc, Reinstall: reinstall}
	if err := h.store.PutProfile(context.Background(), p, &storage.ProfileVersion{ProfileID: p.ID, Version: v, UUID: uuid, Data: []byte("<plist/>")}); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) rescope(s scope.Scope) {
	h.t.Helper()
	ctx := context.Background()
	p, err := h.store.GetProfile(ctx, "com.example.wifi")
	if err != nil {
		h.t.Fatal(err)
	}
	if p.Scope, err = json.Marshal(s); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.PutProfile(ctx, p, nil); err != nil {
		h.t.Fatal(err)
	}
	h.reconcile()
}

func (h *harness) reconcile() {
	h.t.Helper()
	if err := h.rec.ScopeChanged(context.Background(), "com.example.wifi"); err != nil {
		h.t.Fatal(err)
	}
	if err := h.rec.Drain(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) state(ch string) storage.ChannelProfile {
	h.t.Helper()
	sts, err := h.store.ChannelProfiles(context.Background(), ch)
	if err != nil || len(sts) != 1 {
		h.t.Fatalf("states of %s = %+v, %v", ch, sts, err)
	}
	return sts[0]
}

// answer plays the device: it takes the next command of ch, which must be
// of type want, stores status for it and tells the reconciler, as the MDM
// service does. raw is the result body (ProfileList).
func (h *harness) answer(ch, want string, status storage.TargetStatus, raw []byte, errs ...storage.ErrorChain) {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.store.Next(ctx, ch)
	if err != nil || c == nil || c.RequestType != want {
		h.t.Fatalf("next command of %s = %+v, %v; want %s", ch, c, err, want)
	}
	h.rec.Observe(ctx, service.CommandDelivered{Channel: ch, Command: c})
	r := &storage.Result{CommandUUID: c.UUID, RequestType: c.RequestType, ChannelID: ch, Status: status, ErrorChain: errs, Raw: raw, At: time.Now()}
	if _, err := h.store.StoreResult(ctx, r); err != nil {
		h.t.Fatal(err)
	}
	h.rec.Observe(ctx, service.ResultStored{Result: r})
}

func (h *harness) noCommand(ch string) {
	h.t.Helper()
	if c, err := h.store.Next(context.Background(), ch); err != nil || c != nil {
		h.t.Fatalf("%s has a command queued: %+v, %v", ch, c, err)
	}
}

func profileList(t testing.TB, entries ...profiles.Installed) []byte {
	t.Helper()
	raw, err := plist.Marshal(map[string]any{"Status": "Acknowledged", "ProfileList": entries})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestScopeInstallVerifyRemove(t *testing.T) {
	h := newHarness(t)
	h.enroll("iphone-1", "iPhone15,3")
	h.enroll("iphone-2", "iPhone15,3")
	h.enroll("mac-1", "Mac14,9")
	h.putProfile(1, scope.Scope{Platforms: []string{"iOS"}}, true)
	h.reconcile()

	for _, ch := range []string{"iphone-1", "iphone-2"} {
		if st := h.state(ch); st.State != storage.ProfilePending || st.CommandUUID == "" || st.Attempts != 1 {
			t.Fatalf("%s after scoping: %+v", ch, st)
		}
	}
	if sts, _ := h.store.ChannelProfiles(context.Background(), "mac-1"); len(sts) != 0 {
		t.Fatalf("mac out of scope has states %+v", sts)
	}
	// Both iPhones got the same command: one InstallProfile for the version.
	if a, b := h.state("iphone-1").CommandUUID, h.state("iphone-2").CommandUUID; a != b {
		t.Fatalf("one install per version expected, got %s and %s", a, b)
	}
	// Reconciling again queues nothing new.
	h.reconcile()

	h.answer("iphone-1", "InstallProfile", storage.Acknowledged, nil)
	if st := h.state("iphone-1"); st.State != storage.ProfileSent {
		t.Fatalf("after ack: %+v", st)
	}
	// A ProfileList with another UUID does not verify it.
	h.answer("iphone-1", "ProfileList", storage.Acknowledged, profileList(t, profiles.Installed{PayloadIdentifier: "com.example.wifi", PayloadUUID: "OTHER"}))
	if st := h.state("iphone-1"); st.State != storage.ProfileSent {
		t.Fatalf("verified on a wrong UUID: %+v", st)
	}
	h.rec.Observe(context.Background(), service.ResultStored{Result: &storage.Result{ChannelID: "iphone-1", RequestType: "ProfileList", Status: storage.Acknowledged, CommandUUID: "x",
		Raw: profileList(t, profiles.Installed{PayloadIdentifier: "com.example.wifi", PayloadUUID: "UUID-1"})}})
	if st := h.state("iphone-1"); st.State != storage.ProfileVerified {
		t.Fatalf("after ProfileList: %+v", st)
	}
	h.noCommand("iphone-1")

	// Unscope: both iPhones get RemoveProfile.
	h.rescope(scope.Scope{})
	if st := h.state("iphone-1"); st.State != storage.ProfileRemoving {
		t.Fatalf("after unscoping: %+v", st)
	}
	h.answer("iphone-1", "RemoveProfile", storage.Acknowledged, nil)
	if st := h.state("iphone-1"); st.State != storage.ProfileRemoved {
		t.Fatalf("after removal: %+v", st)
	}
	// iphone-2 still has its install ahead of the removal (FIFO); its
	// answer no longer moves the state, which is the removal's now.
	h.answer("iphone-2", "InstallProfile", storage.Acknowledged, nil)
	if st := h.state("iphone-2"); st.State != storage.ProfileRemoving {
		t.Fatalf("iphone-2 after the stale install: %+v", st)
	}
	h.answer("iphone-2", "RemoveProfile", storage.Acknowledged, nil)
	if st := h.state("iphone-2"); st.State != storage.ProfileRemoved {
		t.Fatalf("iphone-2 after removal: %+v", st)
	}
	// Rescoping to everything installs again, the Mac included.
	h.rescope(scope.Scope{All: true})
	for _, ch := range []string{"iphone-1", "mac-1"} {
		if st := h.state(ch); st.State != storage.ProfilePending {
			t.Fatalf("%s back in scope: %+v", ch, st)
		}
	}
}

func TestFailedAfterOneRetry(t *testing.T) {
	h := newHarness(t)
	h.enroll("iphone-1", "iPhone15,3")
	h.putProfile(1, scope.Scope{Devices: []string{"iphone-1"}}, true)
	h.reconcile()
	bad := storage.ErrorChain{ErrorCode: 4001, ErrorDomain: "MCProfileErrorDomain", USEnglishDescription: "The profile is malformed."}
	h.answer("iphone-1", "InstallProfile", storage.Error, nil, bad)
	// The retry is queued by the work queue, not at once.
	if st := h.state("iphone-1"); st.State != storage.ProfilePending || st.CommandUUID != "" || h.rec.Pending() != 1 {
		t.Fatalf("after the first error: %+v, queue %d", st, h.rec.Pending())
	}
	if err := h.rec.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.state("iphone-1"); st.Attempts != 2 || st.CommandUUID == "" {
		t.Fatalf("retry: %+v", st)
	}
	h.answer("iphone-1", "InstallProfile", storage.Error, nil, bad)
	st := h.state("iphone-1")
	if st.State != storage.ProfileFailed || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "4001") || h.rec.Pending() != 0 {
		t.Fatalf("after the second error: %+v, queue %d", st, h.rec.Pending())
	}
	// No third attempt.
	h.reconcile()
	h.noCommand("iphone-1")
	// Resend asks for it again.
	if err := h.rec.Resend(context.Background(), "com.example.wifi", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.rec.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := h.state("iphone-1"); st.State != storage.ProfilePending || st.Attempts != 1 || st.CommandUUID == "" {
		t.Fatalf("after resend: %+v", st)
	}
}

func TestDrift(t *testing.T) {
	for _, reinstall := range []bool{true, false} {
		t.Run(fmt.Sprint("reinstall=", reinstall), func(t *testing.T) {
			h := newHarness(t)
			h.enroll("iphone-1", "iPhone15,3")
			h.putProfile(1, scope.Scope{All: true}, reinstall)
			h.reconcile()
			h.answer("iphone-1", "InstallProfile", storage.Acknowledged, nil)
			h.answer("iphone-1", "ProfileList", storage.Acknowledged, profileList(t, profiles.Installed{PayloadIdentifier: "com.example.wifi", PayloadUUID: "UUID-1"}))
			// The user removed it: the next ProfileList lacks it.
			h.rec.Observe(context.Background(), service.ResultStored{Result: &storage.Result{ChannelID: "iphone-1", RequestType: "ProfileList", Status: storage.Acknowledged, CommandUUID: "y", Raw: profileList(t)}})
			if err := h.rec.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			st := h.state("iphone-1")
			if reinstall {
				if st.State != storage.ProfilePending || st.CommandUUID == "" {
					t.Fatalf("not reinstalled: %+v", st)
				}
				h.answer("iphone-1", "InstallProfile", storage.Acknowledged, nil)
				return
			}
			if st.State != storage.ProfileFailed || len(st.Errors) == 0 {
				t.Fatalf("not reported: %+v", st)
			}
			h.noCommand("iphone-1")
		})
	}
}

func TestNewVersionReinstalls(t *testing.T) {
	h := newHarness(t)
	h.enroll("iphone-1", "iPhone15,3")
	p := h.putProfile(1, scope.Scope{All: true}, true)
	h.reconcile()
	h.answer("iphone-1", "InstallProfile", storage.Acknowledged, nil)
	p.Version, p.UUID = 2, "UUID-2"
	if err := h.store.PutProfile(context.Background(), p, &storage.ProfileVersion{ProfileID: p.ID, Version: 2, UUID: "UUID-2", Data: []byte("<plist v2/>")}); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	if st := h.state("iphone-1"); st.Version != 2 || st.State != storage.ProfilePending {
		t.Fatalf("after version 2: %+v", st)
	}
	h.answer("iphone-1", "ProfileList", storage.Acknowledged, profileList(t))
	c, err := h.store.Next(context.Background(), "iphone-1")
	if err != nil || c == nil || c.RequestType != "InstallProfile" || !strings.Contains(string(c.Raw), base64Of("<plist v2/>")) {
		t.Fatalf("next = %+v, %v", c, err)
	}
}

func TestEnrolledReconcilesAtOnce(t *testing.T) {
	h := newHarness(t)
	h.putProfile(1, scope.Scope{Platforms: []string{"iOS"}}, true)
	h.enroll("iphone-1", "iPhone15,3")
	e, err := h.store.Enrollment(context.Background(), "iphone-1")
	if err != nil {
		t.Fatal(err)
	}
	h.rec.Observe(context.Background(), service.Enrolled{Enrollment: e})
	// Queued synchronously, so observers after it (DeviceConfigured) queue behind.
	if st := h.state("iphone-1"); st.State != storage.ProfilePending || h.rec.Pending() != 0 {
		t.Fatalf("after Enrolled: %+v", st)
	}
}

func base64Of(s string) string {
	raw, _ := plist.Marshal([]byte(s))
	v := string(raw)
	i, j := strings.Index(v, "<data>"), strings.Index(v, "</data>")
	return strings.TrimSpace(v[i+6 : j])
}
