package push_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/apns/apnstest"
	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/pki"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// fleet is a push service over a real bbolt store holding n enrolled
// channels with push tokens, pushing to a fake APNs on loopback.
type fleet struct {
	svc      *push.Service
	fake     *apnstest.Server
	store    *bolt.Store
	channels []string
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	cert, err := apnstest.NewPushCert()
	if err != nil {
		t.Fatal(err)
	}
	fake := apnstest.NewServer(cert.Leaf)
	t.Cleanup(fake.Close)
	store, err := bolt.Open(filepath.Join(t.TempDir(), "orchard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	box, err := pki.NewSecretBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{fake: fake, store: store, channels: make([]string, n)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64) // concurrent writers share one fsync
	for i := range n {
		f.channels[i] = fmt.Sprintf("00008030-PUSH%012X", i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := f.channels[i]
			errs <- store.Authenticate(context.Background(), &storage.AuthenticateRecord{Enrollment: storage.Enrollment{
				ID: id, DeviceID: id, Type: storage.Device, Topic: cert.Topic,
				Token: []byte(fmt.Sprintf("push-token-%021d", i)), PushMagic: fmt.Sprintf("MAGIC-%d", i),
				CertHash: fmt.Sprintf("hash-%d", i),
			}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.svc, err = push.New(ctx, store, box, push.WithLogger(slog.New(slog.DiscardHandler)),
		push.WithAPNsOptions(apns.WithBaseURL(fake.URL()), apns.WithRootCAs(fake.RootCAs())))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := apns.ParsePEM(cert.CertPEM, cert.KeyPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Upload(ctx, pc, "", false); err != nil {
		t.Fatal(err)
	}
	return f
}

// A bulk wake-up far larger than one push batch (and than the 50,000-slot
// queue the dispatcher had: that size no longer exists) reaches APNs once
// per channel, none dropped, and each outcome is recorded on its channel.
func TestPushChannelsWakesEveryChannelOnce(t *testing.T) {
	const n = 3*apns.DefaultBatchSize + 17
	f := newFleet(t, n)
	f.svc.PushChannels(context.Background(), f.channels)
	f.svc.PushChannels(context.Background(), f.channels[:500]) // most still waiting: coalesced or pushed again, never lost
	if err := f.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range f.fake.Pushes() {
		seen[string(p.Token)]++
	}
	for i, ch := range f.channels {
		tok := fmt.Sprintf("push-token-%021d", i)
		most := 1
		if i < 500 {
			most = 2 // the second call may come after their push went out
		}
		if seen[tok] < 1 || seen[tok] > most {
			t.Fatalf("%s pushed %d times", ch, seen[tok])
		}
		e, err := f.store.Enrollment(context.Background(), ch)
		if err != nil {
			t.Fatal(err)
		}
		if !e.LastPushSent || e.LastPushAt.IsZero() {
			t.Fatalf("%s: push outcome not recorded: sent=%v at=%v", ch, e.LastPushSent, e.LastPushAt)
		}
	}
	if len(seen) != n {
		t.Fatalf("fake saw %d distinct tokens, want %d", len(seen), n)
	}
}

// Channels that cannot be pushed (unknown, token invalid) are skipped
// without failing the rest.
func TestPushChannelsSkipsWhatCannotBePushed(t *testing.T) {
	f := newFleet(t, 3)
	ctx := context.Background()
	err := f.store.RecordPushResults(ctx, []storage.PushResult{{
		ChannelID: f.channels[1], Token: []byte(fmt.Sprintf("push-token-%021d", 1)), At: time.Now(), TokenInvalid: true, Reason: "Unregistered",
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.PushChannels(ctx, append([]string{"00008030-UNKNOWN00000"}, f.channels...))
	if err := f.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.fake.Pushes() {
		got = append(got, string(p.Token))
	}
	slices.Sort(got) // one batch is pushed concurrently, in no set order
	if len(got) != 2 || got[0] != fmt.Sprintf("push-token-%021d", 0) || got[1] != fmt.Sprintf("push-token-%021d", 2) {
		t.Fatalf("fake saw %q, want the tokens of channels 0 and 2", got)
	}
}
