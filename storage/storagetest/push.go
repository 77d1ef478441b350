package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// runCounts checks CommandQueue.Counts.
func runCounts(t *testing.T, newStore func(t *testing.T) storage.MDMStore) {
	ctx := context.Background()
	s := newStore(t)
	if q, e, err := s.Counts(ctx); err != nil || q != 0 || e != 0 {
		t.Fatalf("empty store counts = %d, %d, %v", q, e, err)
	}
	for _, id := range []string{"DEV-A", "DEV-B", "DEV-C"} {
		if err := s.UpdateEnrollment(ctx, id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true}, func(*storage.Enrollment) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	user := "DEV-A:USER1"
	if err := s.UpdateEnrollment(ctx, user, &storage.Enrollment{ID: user, DeviceID: "DEV-A", Type: storage.User, UserID: "USER1", Enrolled: true}, func(*storage.Enrollment) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckOut(ctx, "DEV-C", time.Now()); err != nil {
		t.Fatal(err)
	}
	for i, chans := range [][]string{{"DEV-A", "DEV-B"}, {"DEV-A", user}} {
		cmd := &storage.Command{UUID: fmt.Sprintf("CMD-%d", i), RequestType: "ProfileList", Raw: []byte("x"), CreatedAt: time.Now()}
		if err := s.Enqueue(ctx, cmd, chans); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Next(ctx, "DEV-B"); err != nil { // offered before it is answered
		t.Fatal(err)
	}
	res := &storage.Result{CommandUUID: "CMD-0", ChannelID: "DEV-B", Status: storage.NotNow, At: time.Now()}
	if _, err := s.StoreResult(ctx, res); err != nil {
		t.Fatal(err)
	}
	if res.RequestType != "ProfileList" {
		t.Fatalf("StoreResult set RequestType %q, want the command's", res.RequestType)
	}
	q, e, err := s.Counts(ctx)
	if err != nil || q != 4 || e != 2 {
		t.Fatalf("counts = %d queued (want 4, a deferred one included), %d enrolled devices (want 2), %v", q, e, err)
	}
}

// runPush checks the storage.PushStore contract on a store that also keeps
// enrollments.
func runPush(t *testing.T, newStore func(t *testing.T) storage.MDMStore) {
	ctx := context.Background()
	t.Run("RecordPushResults", func(t *testing.T) {
		s := newStore(t)
		now := time.Now().UTC().Truncate(time.Second)
		for _, id := range []string{"DEV-A", "DEV-B"} {
			err := s.UpdateEnrollment(ctx, id, &storage.Enrollment{ID: id, DeviceID: id, Type: storage.Device, Enrolled: true}, func(e *storage.Enrollment) error {
				e.Token, e.PushMagic = []byte("token-"+id), "magic-"+id
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := s.RecordPushResults(ctx, []storage.PushResult{
			{ChannelID: "DEV-A", Token: []byte("token-DEV-A"), At: now, TokenInvalid: true, Reason: "Unregistered"},
			{ChannelID: "DEV-B", Token: []byte("an-older-token"), At: now, TokenInvalid: true, Reason: "BadDeviceToken"},
			{ChannelID: "UNKNOWN", Token: []byte("x"), At: now, Sent: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := s.Enrollment(ctx, "DEV-A")
		if !a.TokenInvalid || a.LastPushError != "Unregistered" || !a.LastPushAt.Equal(now) || a.LastPushSent {
			t.Fatalf("DEV-A after 410 = %+v", a)
		}
		b, _ := s.Enrollment(ctx, "DEV-B")
		if b.TokenInvalid || b.LastPushError != "BadDeviceToken" {
			t.Fatalf("a result for a replaced token invalidated the new one: %+v", b)
		}
		if _, err := s.Enrollment(ctx, "UNKNOWN"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown channel created: %v", err)
		}
		if err := s.RecordPushResults(ctx, []storage.PushResult{{ChannelID: "DEV-B", Token: []byte("token-DEV-B"), At: now, Sent: true}}); err != nil {
			t.Fatal(err)
		}
		if b, _ = s.Enrollment(ctx, "DEV-B"); !b.LastPushSent || b.LastPushError != "" {
			t.Fatalf("DEV-B after a sent push = %+v", b)
		}
	})
}
