package command_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/adminauth"
	"github.com/orchardmdm/orchard/internal/command"
	"github.com/orchardmdm/orchard/internal/metrics"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// pushRecorder stands in for APNs: it records each push call.
type pushRecorder struct {
	mu    sync.Mutex
	calls [][]string
}

func (p *pushRecorder) PushChannels(_ context.Context, channels []string) {
	p.mu.Lock()
	p.calls = append(p.calls, slices.Clone(channels))
	p.mu.Unlock()
}

func (p *pushRecorder) got() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

type fixture struct {
	t       *testing.T
	store   *bolt.Store
	pushed  *pushRecorder
	metrics *metrics.Metrics
	svc     *command.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, store: store, pushed: &pushRecorder{}, metrics: metrics.New()}
	if f.svc, err = command.New(store, store, f.pushed, command.WithObserver(f.metrics)); err != nil {
		t.Fatal(err)
	}
	return f
}

// enroll stores an enrolled iPhone with the given UDID.
func (f *fixture) enroll(id string) {
	f.t.Helper()
	e := storage.Enrollment{
		ID: id, DeviceID: id, Type: storage.Device, Enrolled: true, EnrolledAt: time.Now(),
		Topic: "com.apple.mgmt.External.test", Token: []byte{1, 2, 3}, PushMagic: "magic",
		Facts:    &storage.DeviceFacts{UDID: id, ProductName: "iPhone15,3", Model: "iPhone15,3", OSVersion: "17.5"},
		CertHash: "hash-" + id,
	}
	if err := f.store.Authenticate(context.Background(), &storage.AuthenticateRecord{Enrollment: e}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) depth(id string) int {
	f.t.Helper()
	n, err := f.store.QueueDepth(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// enqueued reads orchard_commands_enqueued_total for a request type.
func (f *fixture) enqueued(requestType string) float64 {
	f.t.Helper()
	fams, err := f.metrics.Registry().Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != "orchard_commands_enqueued_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "request_type" && l.GetValue() == requestType {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const (
	devA = "00008030-000A00000000000A"
	devB = "00008030-000B00000000000B"
	devC = "00008030-000C00000000000C" // never enrolled
)

func TestSendQueuesEveryEligibleTargetOnce(t *testing.T) {
	f := newFixture(t)
	f.enroll(devA)
	f.enroll(devB)
	ctx := context.Background()
	out, err := f.svc.Send(ctx, &command.Request{
		Targets:     []string{devA, devB, devC, devA, "not/an/id"},
		RequestType: "DeviceInformation",
		Payload:     map[string]any{"Queries": []any{"UDID"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.RequestType != "DeviceInformation" || out.UUID == "" {
		t.Fatalf("outcome %+v", out)
	}
	want := []command.TargetResult{
		{Target: devA, Queued: true},
		{Target: devB, Queued: true},
		{Target: devC, Error: "unknown device or channel"},
		{Target: devA, Error: "listed twice"},
	}
	if len(out.Targets) != 5 || !slices.EqualFunc(out.Targets[:4], want, func(a, b command.TargetResult) bool {
		return a.Target == b.Target && a.Queued == b.Queued && a.Error == b.Error
	}) || !strings.HasPrefix(out.Targets[4].Error, "invalid id") {
		t.Fatalf("targets = %+v", out.Targets)
	}
	cmd, targets, err := f.store.Command(ctx, out.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.RequestType != "DeviceInformation" || len(targets) != 2 {
		t.Fatalf("stored %q for %d targets", cmd.RequestType, len(targets))
	}
	uuid, rt, _, err := mdm.DecodeCommand(cmd.Raw)
	if err != nil || uuid != out.UUID || rt != "DeviceInformation" {
		t.Fatalf("stored plist: %s %s, %v", uuid, rt, err)
	}
	if n := f.enqueued("DeviceInformation"); n != 2 {
		t.Errorf("enqueued counter = %v, want 2", n)
	}
	if p := f.pushed.got(); len(p) != 1 || !slices.Equal(p[0], []string{devA, devB}) {
		t.Errorf("pushes = %v, want one push of both devices", p)
	}
}

func TestSendKeepsThePlistsCommandUUID(t *testing.T) {
	f := newFixture(t)
	f.enroll(devA)
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CommandUUID</key><string>my-own-uuid</string>
<key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict>
</dict></plist>`
	out, err := f.svc.Send(context.Background(), &command.Request{Targets: []string{devA}, Plist: []byte(plist), NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.UUID != "my-own-uuid" || out.RequestType != "ProfileList" {
		t.Fatalf("outcome %+v", out)
	}
	if f.depth(devA) != 1 {
		t.Error("not queued")
	}
	if p := f.pushed.got(); len(p) != 0 {
		t.Errorf("NoPush pushed %v", p)
	}
}

// A refused request writes, counts and pushes nothing.
func TestSendRefusals(t *testing.T) {
	f := newFixture(t)
	f.enroll(devA)
	many := make([]string, command.MaxTargets+1)
	for i := range many {
		many[i] = devA
	}
	for _, c := range []struct {
		name   string
		req    command.Request
		reason string // "" for ErrNoTarget
	}{
		{"both forms", command.Request{Targets: []string{devA}, RequestType: "ProfileList", Plist: []byte("<plist/>")}, "give either plist or request_type, not both"},
		{"no command", command.Request{Targets: []string{devA}}, "give a command: plist (base64) or request_type with payload"},
		{"unknown type", command.Request{Targets: []string{devA}, RequestType: "MakeCoffee"}, "MakeCoffee"},
		{"schema", command.Request{Targets: []string{devA}, RequestType: "DeviceLock", Payload: map[string]any{"PIN": 7}}, "PIN"},
		{"binary plist", command.Request{Targets: []string{devA}, Plist: []byte("bplist00")}, "plist: invalid plist: binary"},
		{"no targets", command.Request{RequestType: "ProfileList"}, "targets: give 1..100000"},
		{"too many targets", command.Request{Targets: many, RequestType: "ProfileList"}, "targets: give 1..100000"},
		{"ineligible", command.Request{Targets: []string{devA}, RequestType: "SetFirmwarePassword", Payload: map[string]any{"NewPassword": "x"}}, ""},
		{"unknown device", command.Request{Targets: []string{devC}, RequestType: "ProfileList"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := f.svc.Send(context.Background(), &c.req)
			var invalid *command.Invalid
			switch {
			case c.reason == "":
				if !errors.Is(err, command.ErrNoTarget) || out == nil || len(out.Targets) != len(c.req.Targets) || out.Targets[0].Error == "" {
					t.Fatalf("got %+v, %v; want ErrNoTarget with reasons", out, err)
				}
			case !errors.As(err, &invalid):
				t.Fatalf("got %v, want *Invalid", err)
			case !strings.Contains(invalid.Reason, c.reason) || strings.Contains(invalid.Reason, "\n"):
				t.Fatalf("reason %q, want one line containing %q", invalid.Reason, c.reason)
			}
		})
	}
	if f.depth(devA) != 0 || len(f.pushed.got()) != 0 || f.enqueued("ProfileList") != 0 {
		t.Fatal("a refused request left a trace")
	}
}

func TestQueueInOrderCountsAndPushesOnce(t *testing.T) {
	f := newFixture(t)
	f.enroll(devA)
	ctx := context.Background()
	first, err := f.svc.Build("DeviceInformation", map[string]any{"Queries": []any{"UDID"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Encode(map[string]any{"RequestType": "SecurityInfo"})
	if err != nil {
		t.Fatal(err)
	}
	if first.UUID == second.UUID {
		t.Fatal("two commands share a UUID")
	}
	n, err := f.svc.Queue(ctx, []string{devA}, command.Push, first, second)
	if err != nil || n != 2 {
		t.Fatalf("Queue = %d, %v", n, err)
	}
	next, err := f.store.Next(ctx, devA)
	if err != nil || next.UUID != first.UUID {
		t.Fatalf("Next = %+v, %v; want the first command", next, err)
	}
	if f.depth(devA) != 2 || f.enqueued("DeviceInformation") != 1 || f.enqueued("SecurityInfo") != 1 {
		t.Error("queued or counted wrong")
	}
	if p := f.pushed.got(); len(p) != 1 || !slices.Equal(p[0], []string{devA}) {
		t.Errorf("pushes = %v, want one", p)
	}

	// A channel that is not enrolled: nothing queued, counted or pushed.
	third, err := f.svc.Build("ProfileList", nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err = f.svc.Queue(ctx, []string{devA, devC}, command.Push, third)
	if n != 0 || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Queue to an unknown channel = %d, %v; want 0, ErrNotFound", n, err)
	}
	if f.depth(devA) != 2 || f.enqueued("ProfileList") != 0 || len(f.pushed.got()) != 1 {
		t.Error("a failed Queue left a trace")
	}
}

func TestBuildRefusesWhatTheSchemaRefuses(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Build("DeviceLock", map[string]any{"PIN": 7}); err == nil {
		t.Fatal("Build accepted a number for a string key")
	}
	if _, err := f.svc.Encode(map[string]any{"NoRequestType": true}); err == nil {
		t.Fatal("Encode accepted a command without RequestType")
	}
}

func TestNewRefusesNil(t *testing.T) {
	f := newFixture(t)
	p := &pushRecorder{}
	for i, c := range []struct {
		q    command.Enqueuer
		e    command.Enrollments
		p    command.Pusher
		opts []command.Option
	}{
		{nil, f.store, p, nil},
		{f.store, nil, p, nil},
		{f.store, f.store, nil, nil},
		{f.store, f.store, p, []command.Option{command.WithObserver(nil)}},
		{f.store, f.store, p, []command.Option{command.WithLogger(nil)}},
	} {
		if _, err := command.New(c.q, c.e, c.p, c.opts...); err == nil {
			t.Errorf("case %d: New accepted it", i)
		}
	}
}

// The command records who queued it: the admin actor of the request, by
// the audit log's name, and nobody when Orchard issues it itself.
func TestQueueRecordsTheSender(t *testing.T) {
	f := newFixture(t)
	f.enroll(devA)
	for _, c := range []struct {
		actor *adminauth.Actor
		want  string
	}{
		{&adminauth.Actor{Admin: "alice", Role: adminauth.Helpdesk}, "alice"},
		{&adminauth.Actor{Admin: "alice", TokenID: "t1", Role: adminauth.Helpdesk}, "alice/token:t1"},
		{&adminauth.Actor{Bootstrap: true, Role: adminauth.Owner}, "bootstrap"},
		{nil, ""},
	} {
		ctx := context.Background()
		if c.actor != nil {
			ctx = adminauth.WithActor(ctx, c.actor)
		}
		out, err := f.svc.Send(ctx, &command.Request{Targets: []string{devA}, RequestType: "ProfileList", NoPush: true})
		if err != nil {
			t.Fatal(err)
		}
		cmd, _, err := f.store.Command(ctx, out.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Sender != c.want {
			t.Errorf("sender of a command queued by %v = %q, want %q", c.actor, cmd.Sender, c.want)
		}
	}
}
