package service_test

import (
	"context"
	"crypto/x509"
	"errors"
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

// journal records what it is told and fails while broken is set.
type journal struct {
	got    []string
	broken bool
}

func (j *journal) Record(_ context.Context, ev service.Event) error {
	if j.broken {
		return errors.New("disk full")
	}
	switch ev := ev.(type) {
	case service.CheckinReceived:
		j.got = append(j.got, fmt.Sprintf("%T", ev.Checkin.Message))
	case service.ReportReceived:
		j.got = append(j.got, string(ev.Report.Status)+" "+ev.Report.CommandUUID)
	default:
		j.got = append(j.got, fmt.Sprintf("unexpected %T", ev))
	}
	return nil
}

// The journal is told every handled message, repeats included, and a
// journal that cannot write fails the request: the device's retry is then
// recorded, so nothing a 200 answered is missing.
func TestJournalIsToldEveryMessage(t *testing.T) {
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
	j := &journal{}
	svc, err := service.New(store, box, service.WithJournal(j))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const udid = "00008030-0001000000000002"
	id := identity.New(&x509.Certificate{SerialNumber: big.NewInt(8), NotAfter: time.Now().Add(time.Hour)}, "cert-hash-2")
	ch := mdm.Channel{DeviceID: udid}
	if _, err := svc.Checkin(ctx, id, &mdm.Checkin{Channel: ch, Message: &mdm.Authenticate{Topic: "t"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkin(ctx, id, &mdm.Checkin{Channel: ch, Message: &mdm.TokenUpdate{Topic: "t", Token: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	cmd := &storage.Command{UUID: "cmd-9", RequestType: "ProfileList", Raw: []byte("<plist/>"), CreatedAt: time.Now()}
	if err := store.Enqueue(ctx, cmd, []string{udid}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Report(ctx, id, &mdm.Report{Channel: ch, Status: mdm.StatusIdle}); err != nil {
		t.Fatal(err)
	}
	j.broken = true
	ack := &mdm.Report{Channel: ch, Status: "Acknowledged", CommandUUID: "cmd-9"}
	if _, err := svc.Report(ctx, id, ack); err == nil {
		t.Fatal("a report the journal could not record was answered")
	}
	j.broken = false
	// The device sends the result again: stored already, recorded now.
	if _, err := svc.Report(ctx, id, ack); err != nil {
		t.Fatal(err)
	}
	j.broken = true
	if _, err := svc.Checkin(ctx, id, &mdm.Checkin{Channel: ch, Message: &mdm.CheckOut{}}); err == nil {
		t.Fatal("a check-in the journal could not record was answered")
	}
	want := "[*mdm.Authenticate *mdm.TokenUpdate Idle  Acknowledged cmd-9]"
	if fmt.Sprint(j.got) != want {
		t.Fatalf("journal got %v, want %s", j.got, want)
	}
}
