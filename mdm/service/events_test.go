package service_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/mdm/identity"
	"github.com/orchardmdm/orchard/mdm/service"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// recorder notes each event it is told, as a short string.
type recorder struct{ got []string }

func (r *recorder) Observe(_ context.Context, ev service.Event) {
	switch ev := ev.(type) {
	case service.Authenticated:
		r.got = append(r.got, "Authenticated "+ev.Enrollment.ID)
	case service.Enrolled:
		r.got = append(r.got, fmt.Sprintf("Enrolled %s token=%x", ev.Enrollment.ID, ev.Enrollment.Token))
	case service.Connected:
		r.got = append(r.got, "Connected "+ev.Channel)
	case service.CommandDelivered:
		r.got = append(r.got, "CommandDelivered "+ev.Channel+" "+ev.Command.UUID)
	case service.ResultStored:
		r.got = append(r.got, "ResultStored "+ev.Result.ChannelID+" "+ev.Result.CommandUUID+" "+string(ev.Result.Status))
	default:
		r.got = append(r.got, fmt.Sprintf("unknown %T", ev))
	}
}

// The service tells every observer, in the order they were added, what
// happened after it is stored, and tells nothing twice.
func TestObserversAreToldEachEventOnce(t *testing.T) {
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	box, err := pki.LoadOrCreateSecretBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	first, second := &recorder{}, &recorder{}
	svc, err := service.New(store, box, service.WithObserver(first),
		service.WithObserver(service.ObserverFunc(func(ctx context.Context, ev service.Event) {
			order = append(order, fmt.Sprintf("%d:%d", len(first.got), len(second.got)))
			second.Observe(ctx, ev)
		})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const udid = "00008030-0001000000000001"
	id := identity.New(&x509.Certificate{SerialNumber: big.NewInt(7), NotAfter: time.Now().Add(time.Hour)}, "cert-hash-1")
	ch := mdm.Channel{DeviceID: udid}
	checkin := func(m any) {
		t.Helper()
		if _, err := svc.Checkin(ctx, id, &mdm.Checkin{Channel: ch, Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	checkin(&mdm.Authenticate{Topic: "topic", SerialNumber: "SERIAL1", ProductName: "iPhone15,3"})
	checkin(&mdm.TokenUpdate{Topic: "topic", Token: []byte{0xab}, PushMagic: "magic"})
	checkin(&mdm.TokenUpdate{Topic: "topic", Token: []byte{0xcd}, PushMagic: "magic"}) // not a new enrollment
	cmd := &storage.Command{UUID: "cmd-1", RequestType: "ProfileList", Raw: []byte("<plist/>"), CreatedAt: time.Now()}
	if err := store.Enqueue(ctx, cmd, []string{udid}); err != nil {
		t.Fatal(err)
	}
	report := func(st mdm.Status, uuid string) {
		t.Helper()
		if _, err := svc.Report(ctx, id, &mdm.Report{Channel: ch, Status: st, CommandUUID: uuid}); err != nil {
			t.Fatal(err)
		}
	}
	report(mdm.StatusIdle, "")
	report(mdm.Status("NotNow"), "cmd-1")
	report(mdm.Status("NotNow"), "cmd-1") // a repeat: stored once, told once
	want := []string{
		"Authenticated " + udid,
		"Enrolled " + udid + " token=ab",
		"Connected " + udid,
		"CommandDelivered " + udid + " cmd-1",
		"ResultStored " + udid + " cmd-1 NotNow",
	}
	for name, r := range map[string]*recorder{"first": first, "second": second} {
		if fmt.Sprint(r.got) != fmt.Sprint(want) {
			t.Errorf("%s observer got\n%v\nwant\n%v", name, r.got, want)
		}
	}
	for n, o := range order {
		if want := fmt.Sprintf("%d:%d", n+1, n); o != want {
			t.Fatalf("event %d: second observer ran at %s, want after the first (%s)", n, o, want)
		}
	}
}

func TestNewRefusesNilObservers(t *testing.T) {
	dir := t.TempDir()
	store, err := bolt.Open(filepath.Join(dir, "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	box, err := pki.LoadOrCreateSecretBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []service.Observer{nil, service.ObserverFunc(nil)} {
		if _, err := service.New(store, box, service.WithObserver(o)); err == nil {
			t.Errorf("New accepted observer %#v", o)
		}
	}
}
