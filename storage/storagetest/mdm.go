package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// runMDM checks the documented contracts of CheckinStore, CommandQueue and
// SettingsStore. newStore must return a fresh, empty store on real storage
// and arrange its own cleanup (t.Cleanup).
func runMDM(t *testing.T, newStore func(t *testing.T) storage.MDMStore) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Authenticate/NewDevice", testAuthenticateNew},
		{"Authenticate/PrevCertHashMismatch", testAuthenticatePrevMismatch},
		{"Authenticate/CertBoundToAnotherDevice", testAuthenticateCertElsewhere},
		{"Authenticate/Reenroll", testAuthenticateReenroll},
		{"Authenticate/UserChannelsUnenrolled", testAuthenticateUsers},
		{"Authenticate/SupersedesQueued", testAuthenticateSupersedes},
		{"Authenticate/HexUDIDIgnoresCase", testAuthenticateFoldedUDID},
		{"Rebind/KeepsEnrollment", testRebindKeepsEnrollment},
		{"Rebind/Refusals", testRebindRefusals},
		{"Renewal/RoundTrip", testRenewalRoundTrip},
		{"UpdateEnrollment", testUpdateEnrollment},
		{"CheckOut", testCheckOut},
		{"TouchLastSeen", testTouchLastSeen},
		{"ListEnrollments", testListEnrollments},
		{"Enqueue/ManyChannels", testEnqueueMany},
		{"Enqueue/NotEnrolled", testEnqueueNotEnrolled},
		{"Enqueue/DuplicateUUID", testEnqueueDuplicate},
		{"Queue/FIFO", testFIFO},
		{"Queue/ChannelsIndependent", testIndependent},
		{"Queue/NextEmpty", testNextEmpty},
		{"StoreResult/FinalDequeues", testResultFinal},
		{"StoreResult/NotNowDefers", testResultNotNow},
		{"StoreResult/Duplicate", testResultDuplicate},
		{"StoreResult/Unknown", testResultUnknown},
		{"StoreResult/FirstFinalWins", testResultFirstFinalWins},
		{"StoreResult/NotOffered", testResultNotOffered},
		{"Defer", testDefer},
		{"IdleNext", testIdleNext},
		{"Cancel", testCancel},
		{"QueueDepth", testQueueDepth},
		{"Readback", testReadback},
		{"Settings", testSettings},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, &harness{t: t, s: newStore(t), ctx: t.Context()})
		})
	}
}

// harness wraps a store with fatal-on-error helpers for the setup steps.
type harness struct {
	t   *testing.T
	s   storage.MDMStore
	ctx context.Context
}

// now is a fixed-precision time every backend can store exactly.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func deviceRecord(id, certHash string) storage.Enrollment {
	return storage.Enrollment{
		ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: now(),
		Topic: "com.apple.mgmt.External.test", Token: []byte{0xde, 0xad, 0xbe, 0xef}, PushMagic: "magic-" + id,
		Facts:    &storage.DeviceFacts{UDID: id, SerialNumber: "SN" + id, Model: "iPhone12,1", OSVersion: "18.1"},
		CertHash: certHash, CertSerial: "01" + certHash, CertNotAfter: now().Add(365 * 24 * time.Hour),
		EnrollmentMethod: "invitation",
	}
}

// enroll authenticates a device with certHash, reading the current
// binding for the compare-and-set like the check-in handler does.
func (h *harness) enroll(id, certHash string) *storage.Enrollment {
	h.t.Helper()
	prev := ""
	if e, err := h.s.Enrollment(h.ctx, id); err == nil {
		prev = e.CertHash
	} else if !errors.Is(err, storage.ErrNotFound) {
		h.t.Fatalf("Enrollment(%s): %v", id, err)
	}
	rec := &storage.AuthenticateRecord{Enrollment: deviceRecord(id, certHash), PrevCertHash: prev}
	if err := h.s.Authenticate(h.ctx, rec); err != nil {
		h.t.Fatalf("Authenticate(%s): %v", id, err)
	}
	return h.enrollment(id)
}

// addUser creates an enrolled user channel on a device.
func (h *harness) addUser(deviceID, userID string) string {
	h.t.Helper()
	id := deviceID + mdm.ChannelSeparator + userID
	create := &storage.Enrollment{ID: id, DeviceID: deviceID, Type: storage.User, UserID: userID}
	err := h.s.UpdateEnrollment(h.ctx, id, create, func(e *storage.Enrollment) error {
		e.Enrolled, e.Token, e.PushMagic, e.Topic = true, []byte{1, 2, 3}, "magic-"+id, "com.apple.mgmt.External.test"
		e.UserShortName = userID
		return nil
	})
	if err != nil {
		h.t.Fatalf("UpdateEnrollment(%s): %v", id, err)
	}
	return id
}

func (h *harness) enrollment(id string) *storage.Enrollment {
	h.t.Helper()
	e, err := h.s.Enrollment(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Enrollment(%s): %v", id, err)
	}
	return e
}

// command builds a command with a real envelope as its Raw bytes.
func command(t testing.TB, uuid, requestType string) *storage.Command {
	t.Helper()
	raw, err := mdm.EncodeCommand(uuid, mdm.CommandPayload{"RequestType": requestType})
	if err != nil {
		t.Fatal(err)
	}
	return &storage.Command{UUID: uuid, RequestType: requestType, Raw: raw, CreatedAt: now()}
}

func (h *harness) enqueue(uuid string, channels ...string) *storage.Command {
	h.t.Helper()
	c := command(h.t, uuid, "ProfileList")
	if err := h.s.Enqueue(h.ctx, c, channels); err != nil {
		h.t.Fatalf("Enqueue(%s, %v): %v", uuid, channels, err)
	}
	return c
}

// next returns the UUID at the head of a channel, "" when empty.
func (h *harness) next(channel string) string {
	h.t.Helper()
	c, err := h.s.Next(h.ctx, channel)
	if err != nil {
		h.t.Fatalf("Next(%s): %v", channel, err)
	}
	if c == nil {
		return ""
	}
	return c.UUID
}

func (h *harness) wantNext(channel, want string) {
	h.t.Helper()
	if got := h.next(channel); got != want {
		h.t.Fatalf("Next(%s) = %q, want %q", channel, got, want)
	}
}

// result answers a command as a device does: it asks for the channel's
// next command first (which offers the head of the queue), then reports.
func (h *harness) result(channel, uuid string, st storage.TargetStatus) bool {
	h.t.Helper()
	h.next(channel)
	dup, err := h.s.StoreResult(h.ctx, reportFor(channel, uuid, st))
	if err != nil {
		h.t.Fatalf("StoreResult(%s, %s, %s): %v", channel, uuid, st, err)
	}
	return dup
}

func reportFor(channel, uuid string, st storage.TargetStatus) *storage.Result {
	raw := fmt.Appendf(nil, "<plist><dict><key>CommandUUID</key><string>%s</string><key>Status</key><string>%s</string></dict></plist>", uuid, st)
	return &storage.Result{CommandUUID: uuid, ChannelID: channel, Status: st, Raw: raw, At: now()}
}

func (h *harness) target(uuid, channel string) storage.Target {
	h.t.Helper()
	_, targets, err := h.s.Command(h.ctx, uuid)
	if err != nil {
		h.t.Fatalf("Command(%s): %v", uuid, err)
	}
	for _, tg := range targets {
		if tg.ChannelID == channel {
			return tg
		}
	}
	h.t.Fatalf("command %s has no target %s (targets %+v)", uuid, channel, targets)
	return storage.Target{}
}

func (h *harness) depth(channel string) int {
	h.t.Helper()
	n, err := h.s.QueueDepth(h.ctx, channel)
	if err != nil {
		h.t.Fatalf("QueueDepth(%s): %v", channel, err)
	}
	return n
}

func (h *harness) boundTo(certHash string) string {
	h.t.Helper()
	id, err := h.s.DeviceForCert(h.ctx, certHash)
	if errors.Is(err, storage.ErrNotFound) {
		return ""
	}
	if err != nil {
		h.t.Fatalf("DeviceForCert(%s): %v", certHash, err)
	}
	return id
}

func testAuthenticateNew(t *testing.T, h *harness) {
	if _, err := h.s.Enrollment(h.ctx, "D1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Enrollment of an unknown device: %v, want ErrNotFound", err)
	}
	want := deviceRecord("D1", "cert-a")
	if err := h.s.Authenticate(h.ctx, &storage.AuthenticateRecord{Enrollment: want}); err != nil {
		t.Fatal(err)
	}
	e := h.enrollment("D1")
	if !e.Enrolled || e.Generation != 1 {
		t.Errorf("after first Authenticate: Enrolled %v Generation %d, want true 1", e.Enrolled, e.Generation)
	}
	if e.CertHash != "cert-a" || e.Type != storage.Device || e.DeviceID != "D1" || e.PushMagic != want.PushMagic {
		t.Errorf("stored enrollment %+v does not hold what was written", e)
	}
	if e.Facts == nil || *e.Facts != *want.Facts {
		t.Errorf("Facts = %+v, want %+v", e.Facts, want.Facts)
	}
	if !e.CertNotAfter.Equal(want.CertNotAfter) {
		t.Errorf("CertNotAfter = %v, want %v", e.CertNotAfter, want.CertNotAfter)
	}
	if got := h.boundTo("cert-a"); got != "D1" {
		t.Errorf("DeviceForCert(cert-a) = %q, want D1", got)
	}
	if got := h.boundTo("cert-unknown"); got != "" {
		t.Errorf("DeviceForCert(unknown) = %q, want ErrNotFound", got)
	}
}

func testAuthenticatePrevMismatch(t *testing.T, h *harness) {
	// A new device must be written with PrevCertHash "".
	rec := &storage.AuthenticateRecord{Enrollment: deviceRecord("D1", "cert-a"), PrevCertHash: "cert-old"}
	if err := h.s.Authenticate(h.ctx, rec); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Authenticate of a new device with a PrevCertHash: %v, want ErrConflict", err)
	}
	if _, err := h.s.Enrollment(h.ctx, "D1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused Authenticate created the device: %v", err)
	}
	if got := h.boundTo("cert-a"); got != "" {
		t.Fatalf("a refused Authenticate bound its certificate to %q", got)
	}

	h.enroll("D1", "cert-a")
	for _, prev := range []string{"", "cert-stale"} {
		rec := &storage.AuthenticateRecord{Enrollment: deviceRecord("D1", "cert-b"), PrevCertHash: prev}
		if err := h.s.Authenticate(h.ctx, rec); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("Authenticate with PrevCertHash %q while cert-a is bound: %v, want ErrConflict", prev, err)
		}
	}
	e := h.enrollment("D1")
	if e.CertHash != "cert-a" || e.Generation != 1 {
		t.Errorf("after refused writes: CertHash %q Generation %d, want cert-a 1", e.CertHash, e.Generation)
	}
	if got := h.boundTo("cert-b"); got != "" {
		t.Errorf("a refused Authenticate bound cert-b to %q", got)
	}
}

func testAuthenticateCertElsewhere(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	rec := &storage.AuthenticateRecord{Enrollment: deviceRecord("D2", "cert-a")}
	if err := h.s.Authenticate(h.ctx, rec); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Authenticate of D2 with D1's certificate: %v, want ErrConflict", err)
	}
	if _, err := h.s.Enrollment(h.ctx, "D2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the refused Authenticate created D2: %v", err)
	}
	if got := h.boundTo("cert-a"); got != "D1" {
		t.Errorf("DeviceForCert(cert-a) = %q, want D1", got)
	}
	// And an enrolled device cannot take it either.
	h.enroll("D2", "cert-b")
	rec = &storage.AuthenticateRecord{Enrollment: deviceRecord("D2", "cert-a"), PrevCertHash: "cert-b"}
	if err := h.s.Authenticate(h.ctx, rec); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Authenticate of enrolled D2 with D1's certificate: %v, want ErrConflict", err)
	}
	if got := h.boundTo("cert-b"); got != "D2" {
		t.Errorf("DeviceForCert(cert-b) = %q after a refused rebind, want D2", got)
	}
}

func testAuthenticateReenroll(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	e := h.enroll("D1", "cert-b")
	if e.Generation != 2 || e.CertHash != "cert-b" || !e.Enrolled {
		t.Errorf("after re-enrolling: Generation %d CertHash %q Enrolled %v, want 2 cert-b true", e.Generation, e.CertHash, e.Enrolled)
	}
	if got := h.boundTo("cert-a"); got != "" {
		t.Errorf("old certificate still bound to %q", got)
	}
	if got := h.boundTo("cert-b"); got != "D1" {
		t.Errorf("DeviceForCert(cert-b) = %q, want D1", got)
	}
	// The same certificate again (profile reinstalled) is a new generation too.
	if e := h.enroll("D1", "cert-b"); e.Generation != 3 || h.boundTo("cert-b") != "D1" {
		t.Errorf("re-Authenticate with the same certificate: Generation %d, bound to %q", e.Generation, h.boundTo("cert-b"))
	}
	// A checked-out device comes back through Authenticate.
	if err := h.s.CheckOut(h.ctx, "D1", now()); err != nil {
		t.Fatal(err)
	}
	if e := h.enroll("D1", "cert-c"); !e.Enrolled || e.Generation != 4 {
		t.Errorf("Authenticate after CheckOut: Enrolled %v Generation %d, want true 4", e.Enrolled, e.Generation)
	}
}

func testAuthenticateUsers(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D10", "cert-x") // shares a prefix with D1
	u1, u2 := h.addUser("D1", "user-1"), h.addUser("D1", "user-2")
	other := h.addUser("D10", "user-1")
	h.enroll("D1", "cert-b")
	for _, id := range []string{u1, u2} {
		e := h.enrollment(id)
		if e.Enrolled || len(e.Token) != 0 || e.PushMagic != "" {
			t.Errorf("user channel %s after its device re-enrolled: Enrolled %v Token %x PushMagic %q; want unenrolled without push",
				id, e.Enrolled, e.Token, e.PushMagic)
		}
		if e.UserShortName == "" {
			t.Errorf("user channel %s lost its history (UserShortName)", id)
		}
	}
	if !h.enrollment(other).Enrolled || !h.enrollment("D10").Enrolled {
		t.Errorf("re-enrolling D1 unenrolled a channel of D10")
	}
}

func testAuthenticateSupersedes(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D10", "cert-x")
	user := h.addUser("D1", "user-1")
	h.enqueue("c-dev", "D1")
	h.enqueue("c-both", "D1", user, "D10")
	h.enqueue("c-user", user)
	h.enqueue("c-deferred", "D1")
	h.result("D1", "c-dev", storage.Acknowledged) // finished before: stays as it was
	if err := h.s.Defer(h.ctx, "D1", "c-deferred"); err != nil {
		t.Fatal(err)
	}
	if g := h.target("c-both", "D1").Generation; g != 1 {
		t.Errorf("target Generation = %d, want the device's generation 1", g)
	}

	h.enroll("D1", "cert-b")

	for _, tc := range []struct {
		uuid, channel string
		want          storage.TargetStatus
	}{
		{"c-dev", "D1", storage.Acknowledged},
		{"c-both", "D1", storage.Superseded},
		{"c-both", user, storage.Superseded},
		{"c-both", "D10", storage.Queued},
		{"c-user", user, storage.Superseded},
		{"c-deferred", "D1", storage.Superseded},
	} {
		if got := h.target(tc.uuid, tc.channel).Status; got != tc.want {
			t.Errorf("%s on %s: status %s, want %s", tc.uuid, tc.channel, got, tc.want)
		}
	}
	h.wantNext("D1", "")
	h.wantNext(user, "")
	if err := h.s.Undefer(h.ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "")
	h.wantNext("D10", "c-both")
	if n := h.depth("D1") + h.depth(user); n != 0 {
		t.Errorf("QueueDepth of the re-enrolled device and user = %d, want 0", n)
	}
	// The new enrollment's queue works.
	h.enqueue("c-new", "D1")
	h.wantNext("D1", "c-new")
	if g := h.target("c-new", "D1").Generation; g != 2 {
		t.Errorf("new target Generation = %d, want 2", g)
	}
}

var errRefuse = errors.New("refused by fn")

func testUpdateEnrollment(t *testing.T, h *harness) {
	noop := func(*storage.Enrollment) error { return nil }
	if err := h.s.UpdateEnrollment(h.ctx, "D1", nil, noop); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateEnrollment of a missing channel without create: %v, want ErrNotFound", err)
	}
	create := deviceRecord("D1", "")
	create.Enrolled = false
	err := h.s.UpdateEnrollment(h.ctx, "D1", &create, func(e *storage.Enrollment) error {
		if e.PushMagic != create.PushMagic {
			t.Errorf("fn got %+v, want the create record", e)
		}
		e.Topic = "topic-1"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := h.enrollment("D1"); e.Topic != "topic-1" || e.PushMagic != create.PushMagic || e.ID != "D1" {
		t.Errorf("created enrollment = %+v", e)
	}
	// An existing record is updated, create ignored.
	other := deviceRecord("D1", "")
	other.PushMagic = "should-not-be-used"
	err = h.s.UpdateEnrollment(h.ctx, "D1", &other, func(e *storage.Enrollment) error {
		e.Token = []byte("new-token")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e := h.enrollment("D1")
	if string(e.Token) != "new-token" || e.Topic != "topic-1" || e.PushMagic != create.PushMagic {
		t.Errorf("updated enrollment = %+v", e)
	}
	// fn's error is returned and nothing is written.
	err = h.s.UpdateEnrollment(h.ctx, "D1", nil, func(e *storage.Enrollment) error {
		e.Topic = "half-written"
		return errRefuse
	})
	if !errors.Is(err, errRefuse) {
		t.Errorf("UpdateEnrollment returned %v, want fn's error", err)
	}
	if e := h.enrollment("D1"); e.Topic != "topic-1" {
		t.Errorf("a failed UpdateEnrollment wrote Topic %q", e.Topic)
	}
	err = h.s.UpdateEnrollment(h.ctx, "D2", &create, func(*storage.Enrollment) error { return errRefuse })
	if !errors.Is(err, errRefuse) {
		t.Errorf("UpdateEnrollment returned %v, want fn's error", err)
	}
	if _, err := h.s.Enrollment(h.ctx, "D2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a failed UpdateEnrollment created D2: %v", err)
	}
}

func testCheckOut(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D10", "cert-x")
	user := h.addUser("D1", "user-1")
	otherUser := h.addUser("D10", "user-1")
	at := now()
	if err := h.s.CheckOut(h.ctx, "D1", at); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"D1", user} {
		e := h.enrollment(id)
		if e.Enrolled {
			t.Errorf("%s still enrolled after CheckOut", id)
		}
		if !e.CheckedOutAt.Equal(at) {
			t.Errorf("%s CheckedOutAt = %v, want %v", id, e.CheckedOutAt, at)
		}
	}
	// History stays.
	e := h.enrollment("D1")
	if e.Generation != 1 || e.Facts == nil || e.Facts.SerialNumber != "SND1" || e.CertHash != "cert-a" {
		t.Errorf("CheckOut lost history: %+v", e)
	}
	list, err := h.s.ListEnrollments(h.ctx, "", 100)
	if err != nil || len(list) != 4 {
		t.Errorf("ListEnrollments after CheckOut: %d channels, %v; want all 4", len(list), err)
	}
	for _, id := range []string{"D10", otherUser} {
		if !h.enrollment(id).Enrolled {
			t.Errorf("CheckOut of D1 unenrolled %s", id)
		}
	}
	// A checked-out channel takes no commands.
	for _, ch := range []string{"D1", user} {
		err := h.s.Enqueue(h.ctx, command(t, "c-"+ch, "ProfileList"), []string{ch})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Enqueue to checked-out %s: %v, want ErrNotFound", ch, err)
		}
	}
}

func testTouchLastSeen(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	user := h.addUser("D1", "u")
	t0 := now()
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	steps := []struct {
		seen map[string]time.Time
		want map[string]time.Time
	}{
		{map[string]time.Time{"D1": t1, user: t0}, map[string]time.Time{"D1": t1, user: t0}},
		{map[string]time.Time{"D1": t0, user: t2}, map[string]time.Time{"D1": t1, user: t2}}, // D1 never goes back
		{map[string]time.Time{"D1": t2}, map[string]time.Time{"D1": t2, user: t2}},
	}
	for i, st := range steps {
		if err := h.s.TouchLastSeen(h.ctx, st.seen); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for id, want := range st.want {
			if got := h.enrollment(id).LastSeen; !got.Equal(want) {
				t.Errorf("step %d: %s LastSeen = %v, want %v", i, id, got, want)
			}
		}
	}
	if e := h.enrollment("D1"); !e.Enrolled || e.CertHash != "cert-a" {
		t.Errorf("TouchLastSeen changed other fields: %+v", e)
	}
}

func testListEnrollments(t *testing.T, h *harness) {
	var want []string
	for _, d := range []string{"D3", "D1", "D2", "D10"} {
		h.enroll(d, "cert-"+d)
		want = append(want, d)
	}
	for _, u := range []string{"b", "a"} {
		want = append(want, h.addUser("D1", u))
	}
	slices.Sort(want)
	for _, limit := range []int{1, 2, 3, len(want), len(want) + 5} {
		var got []string
		after := ""
		for page := 0; page <= len(want)+1; page++ {
			list, err := h.s.ListEnrollments(h.ctx, after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(list))
			}
			if len(list) == 0 {
				break
			}
			for _, e := range list {
				got = append(got, e.ID)
			}
			after = list[len(list)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged IDs %v, want %v", limit, got, want)
		}
	}
	// after need not exist.
	list, err := h.s.ListEnrollments(h.ctx, "D1:0", 2)
	if err != nil || len(list) != 2 || list[0].ID != "D1:a" || list[1].ID != "D1:b" {
		t.Errorf("ListEnrollments after a missing ID = %+v, %v; want D1:a, D1:b", list, err)
	}
}

func testEnqueueMany(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	user := h.addUser("D1", "u")
	chans := []string{"D1", "D2", user}
	c := h.enqueue("c1", chans...)
	cmd, targets, err := h.s.Command(h.ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.UUID != "c1" || cmd.RequestType != c.RequestType || !bytes.Equal(cmd.Raw, c.Raw) || !cmd.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("Command = %+v, want %+v", cmd, c)
	}
	var got []string
	for _, tg := range targets {
		got = append(got, tg.ChannelID)
		if tg.Status != storage.Queued || tg.ResultCount != 0 {
			t.Errorf("new target %+v, want Queued without results", tg)
		}
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(chans)); !slices.Equal(got, want) {
		t.Errorf("targets on %v, want %v", got, want)
	}
	for _, ch := range chans {
		n, err := h.s.Next(h.ctx, ch)
		if err != nil || n == nil || n.UUID != "c1" || !bytes.Equal(n.Raw, c.Raw) {
			t.Errorf("Next(%s) = %+v, %v; want c1 with its Raw bytes", ch, n, err)
		}
	}
}

func testEnqueueNotEnrolled(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	if err := h.s.CheckOut(h.ctx, "D2", now()); err != nil {
		t.Fatal(err)
	}
	for _, missing := range []string{"D9", "D2", "D1:nobody"} {
		err := h.s.Enqueue(h.ctx, command(t, "c-"+missing, "ProfileList"), []string{"D1", missing})
		if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), missing) {
			t.Errorf("Enqueue to %s: %v, want ErrNotFound naming the channel", missing, err)
		}
		if _, _, err := h.s.Command(h.ctx, "c-"+missing); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("refused Enqueue stored the command: %v", err)
		}
	}
	h.wantNext("D1", "")
	if n := h.depth("D1"); n != 0 {
		t.Errorf("QueueDepth(D1) = %d after refused enqueues, want 0", n)
	}
}

func testEnqueueDuplicate(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	first := h.enqueue("c1", "D1")
	dup := command(t, "c1", "DeviceInformation")
	if err := h.s.Enqueue(h.ctx, dup, []string{"D2"}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Enqueue of an existing UUID: %v, want ErrConflict", err)
	}
	cmd, targets, err := h.s.Command(h.ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.RequestType != first.RequestType || !bytes.Equal(cmd.Raw, first.Raw) || len(targets) != 1 || targets[0].ChannelID != "D1" {
		t.Errorf("duplicate Enqueue changed the command: %+v targets %+v", cmd, targets)
	}
	h.wantNext("D2", "")
}

func testFIFO(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	var want1, want2 []string
	for i := range 6 {
		u := fmt.Sprintf("cmd-%02d", i)
		if i%3 == 0 {
			h.enqueue(u, "D1", "D2")
			want1, want2 = append(want1, u), append(want2, u)
		} else if i%2 == 0 {
			h.enqueue(u, "D2")
			want2 = append(want2, u)
		} else {
			h.enqueue(u, "D1")
			want1 = append(want1, u)
		}
	}
	for ch, want := range map[string][]string{"D1": want1, "D2": want2} {
		var got []string
		for u := h.next(ch); u != ""; u = h.next(ch) {
			got = append(got, u)
			h.result(ch, u, storage.Acknowledged)
			if len(got) > len(want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s delivered %v, want %v", ch, got, want)
		}
	}
}

func testIndependent(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	user := h.addUser("D1", "u")
	h.enroll("D10", "cert-b")
	h.enqueue("c1", "D1", user, "D10")
	h.enqueue("c2", "D1", user, "D10")
	h.result("D1", "c1", storage.Acknowledged)
	h.wantNext("D1", "c2")
	h.wantNext(user, "c1")
	h.wantNext("D10", "c1")
	h.result(user, "c1", storage.NotNow)
	h.wantNext(user, "c2")
	h.wantNext("D1", "c2")
	h.wantNext("D10", "c1")
	if n, err := h.s.Cancel(h.ctx, "c2"); err != nil || n != 3 {
		t.Fatalf("Cancel(c2) = %d, %v; want 3", n, err)
	}
	h.wantNext("D10", "c1")
	if st := h.target("c1", "D10").Status; st != storage.Queued {
		t.Errorf("c1 on D10 is %s after results on other channels, want Queued", st)
	}
}

func testNextEmpty(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.wantNext("D1", "")
	h.wantNext("never-enrolled", "")
	h.enqueue("c1", "D1")
	h.result("D1", "c1", storage.Acknowledged)
	h.wantNext("D1", "")
}

func testResultFinal(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	for _, st := range []storage.TargetStatus{storage.Acknowledged, storage.Error, storage.CommandFormatError} {
		u := "c-" + string(st)
		h.enqueue(u, "D1")
		h.enqueue(u+"-next", "D1")
		h.wantNext("D1", u)
		if dup := h.result("D1", u, st); dup {
			t.Errorf("first %s result reported as duplicate", st)
		}
		tg := h.target(u, "D1")
		if tg.Status != st || tg.ResultCount != 1 {
			t.Errorf("target after %s: %+v", st, tg)
		}
		h.wantNext("D1", u+"-next")
		h.result("D1", u+"-next", storage.Acknowledged)
		h.wantNext("D1", "")
	}
}

func testResultNotNow(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	for _, u := range []string{"c1", "c2", "c3"} {
		h.enqueue(u, "D1")
	}
	h.result("D1", "c1", storage.NotNow)
	h.wantNext("D1", "c2")
	if st := h.target("c1", "D1").Status; st != storage.NotNow {
		t.Errorf("c1 status %s, want NotNow", st)
	}
	h.result("D1", "c2", storage.NotNow)
	h.wantNext("D1", "c3")
	if n := h.depth("D1"); n != 3 {
		t.Errorf("QueueDepth = %d with 2 deferred and 1 queued, want 3", n)
	}
	if err := h.s.Undefer(h.ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "c1") // original order restored
	// The device may say NotNow again in the next session: that defers
	// it again rather than being taken for a repeat.
	if dup := h.result("D1", "c1", storage.NotNow); dup {
		t.Error("NotNow after Undefer reported as a duplicate")
	}
	h.wantNext("D1", "c2")
	h.result("D1", "c2", storage.Acknowledged)
	h.wantNext("D1", "c3")
	h.result("D1", "c3", storage.Acknowledged)
	h.wantNext("D1", "")
	// A deferred command can still finish without Undefer.
	h.result("D1", "c1", storage.Error)
	if err := h.s.Undefer(h.ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "")
	if n := h.depth("D1"); n != 0 {
		t.Errorf("QueueDepth = %d after all finished, want 0", n)
	}
	if res, err := h.s.Results(h.ctx, "c1"); err != nil || len(res) != 3 {
		t.Errorf("Results(c1) = %d results, %v; want 3 (NotNow, NotNow, Error)", len(res), err)
	}
}

func testResultDuplicate(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enqueue("c1", "D1")
	h.enqueue("c2", "D1")
	h.enqueue("c3", "D1")
	for _, tc := range []struct {
		uuid string
		st   storage.TargetStatus
	}{{"c1", storage.Acknowledged}, {"c2", storage.NotNow}, {"c3", storage.Error}} {
		if dup := h.result("D1", tc.uuid, tc.st); dup {
			t.Errorf("first %s for %s reported as duplicate", tc.st, tc.uuid)
		}
		if dup := h.result("D1", tc.uuid, tc.st); !dup {
			t.Errorf("repeated %s for %s not reported as duplicate", tc.st, tc.uuid)
		}
		res, err := h.s.Results(h.ctx, tc.uuid)
		if err != nil || len(res) != 1 {
			t.Errorf("Results(%s) = %d, %v; want 1 stored result", tc.uuid, len(res), err)
		}
		if tg := h.target(tc.uuid, "D1"); tg.ResultCount != 1 || tg.Status != tc.st {
			t.Errorf("target %s after duplicate: %+v", tc.uuid, tg)
		}
	}
	h.wantNext("D1", "")
	if n := h.depth("D1"); n != 1 {
		t.Errorf("QueueDepth = %d, want 1 (c2 deferred)", n)
	}
}

func testResultUnknown(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	h.enqueue("c1", "D1")
	for _, r := range []*storage.Result{
		reportFor("D1", "nope", storage.Acknowledged),
		reportFor("D2", "c1", storage.Acknowledged),
		reportFor("D1:u", "c1", storage.Acknowledged),
	} {
		if _, err := h.s.StoreResult(h.ctx, r); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("StoreResult(%s on %s): %v, want ErrNotFound", r.CommandUUID, r.ChannelID, err)
		}
	}
	if res, err := h.s.Results(h.ctx, "c1"); err != nil || len(res) != 0 {
		t.Errorf("refused results were stored: %+v, %v", res, err)
	}
	h.wantNext("D1", "c1")
}

func testDefer(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enqueue("c1", "D1")
	h.enqueue("c2", "D1")
	if err := h.s.Defer(h.ctx, "D1", "c1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "c2")
	if err := h.s.Defer(h.ctx, "D1", "c2"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "")
	if n := h.depth("D1"); n != 2 {
		t.Errorf("QueueDepth = %d with 2 deferred, want 2", n)
	}
	if err := h.s.Undefer(h.ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "c1")
	h.result("D1", "c1", storage.Acknowledged)
	h.wantNext("D1", "c2")
	if err := h.s.Undefer(h.ctx, "D1"); err != nil { // nothing deferred
		t.Errorf("Undefer with nothing deferred: %v", err)
	}
	h.wantNext("D1", "c2")
	if err := h.s.Defer(h.ctx, "D1", "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Defer of an unknown command: %v, want ErrNotFound", err)
	}
}

// IdleNext is Undefer then Next: deferred and NotNow'd commands come
// back in their places, the head is offered (so it can be answered), and
// an empty queue answers nil.
func testIdleNext(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	idleNext := func(want string) {
		t.Helper()
		c, err := h.s.IdleNext(h.ctx, "D1")
		if err != nil {
			t.Fatalf("IdleNext: %v", err)
		}
		if got := ""; c != nil {
			got = c.UUID
			if len(c.Raw) == 0 {
				t.Errorf("IdleNext returned %s without its plist", got)
			}
		}
		if c == nil && want != "" || c != nil && c.UUID != want {
			t.Fatalf("IdleNext = %v, want %q", c, want)
		}
	}
	idleNext("")
	h.enqueue("c1", "D1")
	h.enqueue("c2", "D1")
	idleNext("c1")
	if h.target("c1", "D1").OfferedAt.IsZero() {
		t.Error("the head IdleNext returned was not marked offered")
	}
	// Answerable without a Next in between: IdleNext offered it.
	if ignored, err := h.s.StoreResult(h.ctx, reportFor("D1", "c1", storage.NotNow)); err != nil || ignored {
		t.Fatalf("NotNow after IdleNext: ignored %v, %v", ignored, err)
	}
	h.wantNext("D1", "c2")
	if err := h.s.Defer(h.ctx, "D1", "c2"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "")
	idleNext("c1") // both back, in their order
	if st := h.target("c1", "D1").Status; st != storage.Queued {
		t.Errorf("c1 after IdleNext: %s, want Queued", st)
	}
	h.result("D1", "c1", storage.Acknowledged)
	idleNext("c2")
	idleNext("c2") // nothing deferred: a read
	h.result("D1", "c2", storage.Acknowledged)
	idleNext("")
}

func testCancel(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	h.enroll("D3", "cert-c")
	h.enroll("D4", "cert-d")
	h.enqueue("c1", "D1", "D2", "D3", "D4")
	h.enqueue("c2", "D1", "D2", "D3", "D4")
	h.result("D1", "c1", storage.Acknowledged)
	h.result("D2", "c1", storage.NotNow)
	if err := h.s.Defer(h.ctx, "D3", "c1"); err != nil {
		t.Fatal(err)
	}
	n, err := h.s.Cancel(h.ctx, "c1")
	if err != nil || n != 3 {
		t.Fatalf("Cancel = %d, %v; want 3 (queued, NotNow'd, deferred)", n, err)
	}
	want := map[string]storage.TargetStatus{"D1": storage.Acknowledged, "D2": storage.Canceled, "D3": storage.Canceled, "D4": storage.Canceled}
	for ch, st := range want {
		if got := h.target("c1", ch).Status; got != st {
			t.Errorf("c1 on %s: %s, want %s", ch, got, st)
		}
	}
	for _, ch := range []string{"D1", "D2", "D3", "D4"} {
		if err := h.s.Undefer(h.ctx, ch); err != nil {
			t.Fatal(err)
		}
		h.wantNext(ch, "c2")
		if n := h.depth(ch); n != 1 {
			t.Errorf("QueueDepth(%s) = %d after Cancel, want 1", ch, n)
		}
	}
	if n, err := h.s.Cancel(h.ctx, "c1"); err != nil || n != 0 {
		t.Errorf("second Cancel = %d, %v; want 0", n, err)
	}
	if _, err := h.s.Cancel(h.ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Cancel of an unknown command: %v, want ErrNotFound", err)
	}
}

func testQueueDepth(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D10", "cert-b")
	user := h.addUser("D1", "u")
	if n := h.depth("D1"); n != 0 {
		t.Errorf("empty QueueDepth = %d", n)
	}
	for i := range 5 {
		h.enqueue(fmt.Sprint("c", i), "D1")
	}
	h.enqueue("u1", user)
	h.enqueue("x1", "D10")
	if n := h.depth("D1"); n != 5 {
		t.Errorf("QueueDepth(D1) = %d, want 5 (user and prefix-sharing channels not counted)", n)
	}
	h.result("D1", "c0", storage.Acknowledged)
	if n := h.depth("D1"); n != 4 {
		t.Errorf("QueueDepth(D1) = %d after one result, want 4", n)
	}
	if n := h.depth("unknown"); n != 0 {
		t.Errorf("QueueDepth(unknown) = %d", n)
	}
}

func testReadback(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enroll("D2", "cert-b")
	raw := []byte("\x00\xff binary <plist> \x00 not UTF-8 \xc3\x28")
	c := &storage.Command{UUID: "cmd-1", RequestType: "InstallProfile", Raw: raw, CreatedAt: now()}
	if err := h.s.Enqueue(h.ctx, c, []string{"D1", "D2"}); err != nil {
		t.Fatal(err)
	}
	h.enqueue("cmd-10", "D1") // its UUID extends cmd-1's
	got, _, err := h.s.Command(h.ctx, "cmd-1")
	if err != nil || !bytes.Equal(got.Raw, raw) {
		t.Fatalf("Command Raw = %q, %v; want %q", got.Raw, err, raw)
	}
	if n, _ := h.s.Next(h.ctx, "D1"); n == nil || !bytes.Equal(n.Raw, raw) {
		t.Errorf("Next Raw = %+v, want %q", n, raw)
	}
	r1 := reportFor("D1", "cmd-1", storage.NotNow)
	r2 := reportFor("D1", "cmd-1", storage.Error)
	r2.Raw = []byte("\x00raw error report\xff")
	r2.ErrorChain = []storage.ErrorChain{
		{ErrorCode: 4001, ErrorDomain: "MCProfileErrorDomain", LocalizedDescription: "The profile could not be installed.", USEnglishDescription: "The profile could not be installed."},
		{ErrorCode: 2003, ErrorDomain: "MCPayloadErrorDomain", LocalizedDescription: "missing SSID_STR"},
	}
	r3 := reportFor("D2", "cmd-1", storage.Acknowledged)
	r4 := reportFor("D1", "cmd-10", storage.Acknowledged)
	for _, r := range []*storage.Result{r1, r2, r3, r4} {
		h.next(r.ChannelID) // offers each command before its result
		if _, err := h.s.StoreResult(h.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	res, err := h.s.Results(h.ctx, "cmd-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("Results(cmd-1) = %d results, want 3 (not cmd-10's): %+v", len(res), res)
	}
	// Oldest first per channel; channels may interleave in any order.
	var d1 []storage.Result
	for _, r := range res {
		if r.CommandUUID != "cmd-1" {
			t.Errorf("Results(cmd-1) returned a result of %s", r.CommandUUID)
		}
		if r.ChannelID == "D1" {
			d1 = append(d1, r)
		}
	}
	if len(d1) != 2 || d1[0].Status != storage.NotNow || d1[1].Status != storage.Error {
		t.Fatalf("D1 results = %+v, want NotNow then Error", d1)
	}
	e := d1[1]
	if !bytes.Equal(e.Raw, r2.Raw) || !e.At.Equal(r2.At) || !slices.Equal(e.ErrorChain, r2.ErrorChain) {
		t.Errorf("stored result = %+v, want %+v", e, r2)
	}
	_, targets, err := h.s.Command(h.ctx, "cmd-1")
	if err != nil || len(targets) != 2 {
		t.Fatalf("Command(cmd-1) targets = %+v, %v; want D1 and D2 only", targets, err)
	}
	if _, _, err := h.s.Command(h.ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Command(unknown): %v, want ErrNotFound", err)
	}
	if res, err := h.s.Results(h.ctx, "nope"); len(res) != 0 || err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Results(unknown) = %+v, %v", res, err)
	}
}

func testSettings(t *testing.T, h *harness) {
	if _, err := h.s.Setting(h.ctx, "apns.topic"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unset Setting: %v, want ErrNotFound", err)
	}
	v1, v2 := []byte("\x00binary\xff value"), []byte("second")
	if err := h.s.PutSetting(h.ctx, "apns.topic", v1); err != nil {
		t.Fatal(err)
	}
	if err := h.s.PutSetting(h.ctx, "apns.topic.old", v2); err != nil {
		t.Fatal(err)
	}
	if got, err := h.s.Setting(h.ctx, "apns.topic"); err != nil || !bytes.Equal(got, v1) {
		t.Errorf("Setting = %q, %v; want %q", got, err, v1)
	}
	if err := h.s.PutSetting(h.ctx, "apns.topic", v2); err != nil {
		t.Fatal(err)
	}
	if got, err := h.s.Setting(h.ctx, "apns.topic"); err != nil || !bytes.Equal(got, v2) {
		t.Errorf("overwritten Setting = %q, %v; want %q", got, err, v2)
	}
}

// testConcurrent runs a producer and a consumer per channel at once, all
// channels together: every command arrives, in order, exactly once.
func testConcurrent(t *testing.T, h *harness) {
	const channels, perChannel = 8, 30
	ids := make([]string, channels)
	for i := range ids {
		ids[i] = h.enroll(fmt.Sprintf("D%02d", i), fmt.Sprint("cert-", i)).ID
	}
	var wg sync.WaitGroup
	for _, ch := range ids {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perChannel {
				if err := h.s.Enqueue(h.ctx, command(t, fmt.Sprintf("%s-%03d", ch, i), "ProfileList"), []string{ch}); err != nil {
					t.Errorf("Enqueue on %s: %v", ch, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < perChannel; {
				c, err := h.s.Next(h.ctx, ch)
				if err != nil {
					t.Errorf("Next(%s): %v", ch, err)
					return
				}
				if c == nil {
					time.Sleep(100 * time.Microsecond) // producer is behind
					continue
				}
				if want := fmt.Sprintf("%s-%03d", ch, i); c.UUID != want {
					t.Errorf("%s delivered %s, want %s", ch, c.UUID, want)
					return
				}
				if _, err := h.s.StoreResult(h.ctx, reportFor(ch, c.UUID, storage.Acknowledged)); err != nil {
					t.Errorf("StoreResult on %s: %v", ch, err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, ch := range ids {
		h.wantNext(ch, "")
		for i := range perChannel {
			u := fmt.Sprintf("%s-%03d", ch, i)
			if tg := h.target(u, ch); tg.Status != storage.Acknowledged || tg.ResultCount != 1 {
				t.Errorf("%s on %s: %+v, want one Acknowledged result", u, ch, tg)
			}
		}
	}
}

// The first final answer of a device stands: later results, whatever their
// status, are neither stored nor moved on (issue #10).
func testResultFirstFinalWins(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	h.enqueue("c-ack", "D1")
	h.enqueue("c-err", "D1")
	for _, first := range []struct {
		uuid string
		st   storage.TargetStatus
	}{{"c-ack", storage.Acknowledged}, {"c-err", storage.Error}} {
		if h.result("D1", first.uuid, first.st) {
			t.Fatalf("first result for %s ignored", first.uuid)
		}
		for _, later := range []storage.TargetStatus{storage.Error, storage.NotNow, storage.CommandFormatError, storage.Acknowledged} {
			if later == first.st {
				continue
			}
			ignored, err := h.s.StoreResult(h.ctx, reportFor("D1", first.uuid, later))
			if err != nil || !ignored {
				t.Errorf("%s after %s on %s: ignored=%v err=%v, want ignored", later, first.st, first.uuid, ignored, err)
			}
		}
		if tg := h.target(first.uuid, "D1"); tg.Status != first.st || tg.ResultCount != 1 {
			t.Errorf("target %s after later results: %+v, want %s with one result", first.uuid, tg, first.st)
		}
		if res, err := h.s.Results(h.ctx, first.uuid); err != nil || len(res) != 1 || res[0].Status != first.st {
			t.Errorf("Results(%s) = %+v, %v; want only the %s", first.uuid, res, err, first.st)
		}
	}
	// A late NotNow must not park the finished command in the deferred set.
	if n := h.depth("D1"); n != 0 {
		t.Errorf("QueueDepth = %d, want 0", n)
	}
	if err := h.s.Undefer(h.ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	h.wantNext("D1", "")
}

// Only a command Next handed to the channel may be answered on it.
func testResultNotOffered(t *testing.T, h *harness) {
	h.enroll("D1", "cert-a")
	user := h.addUser("D1", "u")
	h.enqueue("c1", "D1", user)
	h.enqueue("c2", "D1")
	refuse := func(channel, uuid string) {
		t.Helper()
		if _, err := h.s.StoreResult(h.ctx, reportFor(channel, uuid, storage.Acknowledged)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("result for %s on %s before it was offered: %v, want ErrNotFound", uuid, channel, err)
		}
	}
	refuse("D1", "c1")
	refuse("D1", "c2")
	h.wantNext("D1", "c1")
	refuse("D1", "c2") // behind the head: never offered
	refuse(user, "c1") // offered on the device channel, not on the user's
	if tg := h.target("c2", "D1"); tg.Status != storage.Queued || tg.ResultCount != 0 {
		t.Errorf("refused results moved c2: %+v", tg)
	}
	if res, err := h.s.Results(h.ctx, "c2"); err != nil || len(res) != 0 {
		t.Errorf("refused results were stored: %+v, %v", res, err)
	}
	h.enqueue("c3", "D1")
	if _, err := h.s.StoreResult(h.ctx, reportFor("D1", "c1", storage.Acknowledged)); err != nil {
		t.Fatalf("result for the offered command: %v", err)
	}
	// The answer to a result carries the next command: c2 is offered now,
	// c3 behind it is not.
	refuse("D1", "c3")
	if _, err := h.s.StoreResult(h.ctx, reportFor("D1", "c2", storage.Acknowledged)); err != nil {
		t.Fatalf("result for the command offered with the previous answer: %v", err)
	}
	h.wantNext("D1", "c3")
	h.wantNext(user, "c1")
}

// A hex UDID in another case is the same device: it can neither enroll as
// a second record nor miss the first one on lookup (issue #10).
func testAuthenticateFoldedUDID(t *testing.T, h *harness) {
	const upper, lower = "00008030-001A35E11E88802E", "00008030-001a35e11e88802e"
	h.enroll(upper, "cert-a")
	user := h.addUser(upper, "user-1")
	rec := &storage.AuthenticateRecord{Enrollment: deviceRecord(lower, "cert-b")}
	if err := h.s.Authenticate(h.ctx, rec); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Authenticate(%s) with %s enrolled: %v, want ErrConflict", lower, upper, err)
	}
	if _, err := h.s.DeviceForCert(h.ctx, "cert-b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused Authenticate bound its certificate: %v", err)
	}
	for _, id := range []string{lower, upper} {
		if e := h.enrollment(id); e.ID != upper || e.CertHash != "cert-a" {
			t.Errorf("Enrollment(%s) = %s bound to %s, want %s bound to cert-a", id, e.ID, e.CertHash, upper)
		}
	}
	if e := h.enrollment(strings.ToLower(user)); e.ID != user {
		t.Errorf("user channel under the other spelling = %s, want %s", e.ID, user)
	}
	list, err := h.s.ListEnrollments(h.ctx, "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListEnrollments = %d records, %v; want the device and its user", len(list), err)
	}
	// Re-enrolling under the stored spelling still works.
	h.enroll(upper, "cert-c")
	// IDs outside Apple's hex shapes stay exact.
	h.enroll("DEV-A", "cert-d")
	if _, err := h.s.Enrollment(h.ctx, "dev-a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Enrollment(dev-a) = %v, want ErrNotFound (not a hex UDID)", err)
	}
}
