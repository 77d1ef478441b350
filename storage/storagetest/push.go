package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/mdm"
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
	t.Run("PushTargets", func(t *testing.T) {
		s := newStore(t)
		user := "DEV-A" + mdm.ChannelSeparator + "USER1"
		for _, e := range []storage.Enrollment{
			{ID: "DEV-A", DeviceID: "DEV-A", Type: storage.Device, Topic: "com.apple.mgmt.A", Token: []byte{0, 1, 0xfe}, PushMagic: "magic-A"},
			{ID: "DEV-B", DeviceID: "DEV-B", Type: storage.Device, Topic: "com.apple.mgmt.B", Token: []byte("token-B"), PushMagic: "magic-B"},
			{ID: "DEV-C", DeviceID: "DEV-C", Type: storage.Device},
			{ID: user, DeviceID: "DEV-A", Type: storage.User, UserID: "USER1", Token: []byte("token-U"), PushMagic: "magic-U"},
		} {
			e.Enrolled = true
			if err := s.UpdateEnrollment(ctx, e.ID, &e, func(*storage.Enrollment) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CheckOut(ctx, "DEV-B", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordPushResults(ctx, []storage.PushResult{{ChannelID: user, Token: []byte("token-U"), At: time.Now(), TokenInvalid: true, Reason: "Unregistered"}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.PushTargets(ctx, []string{user, "UNKNOWN", "DEV-C", "DEV-A", "DEV-B", "dev-a"})
		if err != nil {
			t.Fatal(err)
		}
		want := []storage.PushTarget{
			{ID: user, Enrolled: true, Token: []byte("token-U"), PushMagic: "magic-U", TokenInvalid: true},
			{ID: "DEV-C", Enrolled: true},
			{ID: "DEV-A", Enrolled: true, Topic: "com.apple.mgmt.A", Token: []byte{0, 1, 0xfe}, PushMagic: "magic-A"},
			{ID: "DEV-B", Topic: "com.apple.mgmt.B", Token: []byte("token-B"), PushMagic: "magic-B"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("PushTargets =\n%+v\nwant (given order, unknown and other spellings left out)\n%+v", got, want)
		}
		for i, pushable := range []bool{false, false, true, false} {
			if got[i].Pushable() != pushable {
				t.Errorf("%s: Pushable() = %v, want %v", got[i].ID, !pushable, pushable)
			}
		}
		if got, err := s.PushTargets(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("PushTargets(nil) = %v, %v", got, err)
		}
	})
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
