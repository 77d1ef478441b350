package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

func runProfiles(t *testing.T, open func(t *testing.T) storage.ProfileStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t.Run("VersionsAppendOnly", func(t *testing.T) {
		s := open(t)
		p := &storage.Profile{ID: "com.example.wifi", Version: 1, UUID: "U1", CreatedAt: now, UpdatedAt: now}
		if err := s.PutProfile(ctx, p, nil); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("new profile without a version: %v, want ErrConflict", err)
		}
		if _, err := s.GetProfile(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused profile was written: %v", err)
		}
		v1 := &storage.ProfileVersion{ProfileID: p.ID, Version: 1, UUID: "U1", Data: []byte("one"), CreatedAt: now}
		if err := s.PutProfile(ctx, p, v1); err != nil {
			t.Fatal(err)
		}
		// Version 1 again, or skipping to 3, is a conflict.
		for _, n := range []int{1, 3} {
			q := *p
			q.Version = n
			if err := s.PutProfile(ctx, &q, &storage.ProfileVersion{ProfileID: p.ID, Version: n, Data: []byte("x")}); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("version %d after 1: %v, want ErrConflict", n, err)
			}
		}
		p2 := *p
		p2.Version, p2.UUID = 2, "U2"
		if err := s.PutProfile(ctx, &p2, &storage.ProfileVersion{ProfileID: p.ID, Version: 2, UUID: "U2", Data: []byte("two")}); err != nil {
			t.Fatal(err)
		}
		// A settings change without a new version keeps the version.
		p2.Reinstall = true
		if err := s.PutProfile(ctx, &p2, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetProfile(ctx, p.ID)
		if err != nil || got.Version != 2 || got.UUID != "U2" || !got.Reinstall {
			t.Fatalf("GetProfile = %+v, %v", got, err)
		}
		old, err := s.GetProfileVersion(ctx, p.ID, 1)
		if err != nil || string(old.Data) != "one" {
			t.Fatalf("version 1 = %+v, %v", old, err)
		}
		if _, err := s.GetProfileVersion(ctx, p.ID, 3); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("version 3: %v", err)
		}
		list, err := s.ListProfiles(ctx, "", 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("ListProfiles = %v, %v", list, err)
		}
	})
	t.Run("ChannelStates", func(t *testing.T) {
		s := open(t)
		if got, err := s.ChannelProfiles(ctx, "dev-1"); err != nil || len(got) != 0 {
			t.Fatalf("no states: %v, %v", got, err)
		}
		states := []storage.ChannelProfile{
			{ProfileID: "p.b", ChannelID: "dev-1", State: storage.ProfilePending, Version: 1},
			{ProfileID: "p.a", ChannelID: "dev-1", State: storage.ProfileVerified, Version: 1},
			{ProfileID: "p.a", ChannelID: "dev-2", State: storage.ProfileFailed, Errors: []string{"outer", "inner"}},
			{ProfileID: "p.a", ChannelID: "dev-10", State: storage.ProfileSent},
		}
		if err := s.PutChannelProfiles(ctx, states); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChannelProfiles(ctx, "dev-1")
		if err != nil || len(got) != 2 || got[0].ProfileID != "p.a" || got[1].State != storage.ProfilePending {
			t.Fatalf("ChannelProfiles(dev-1) = %+v, %v", got, err)
		}
		// Replace one; a channel whose ID prefixes another's stays apart.
		if err := s.PutChannelProfiles(ctx, []storage.ChannelProfile{{ProfileID: "p.b", ChannelID: "dev-1", State: storage.ProfileRemoved}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ChannelProfiles(ctx, "dev-1")
		if len(got) != 2 || got[1].State != storage.ProfileRemoved {
			t.Fatalf("after replace: %+v", got)
		}
		all, err := s.ProfileStates(ctx, "p.a", "", 0)
		if err != nil || len(all) != 3 || all[0].ChannelID != "dev-1" || all[1].ChannelID != "dev-10" {
			t.Fatalf("ProfileStates = %+v, %v", all, err)
		}
		page, err := s.ProfileStates(ctx, "p.a", "dev-10", 1)
		if err != nil || len(page) != 1 || page[0].ChannelID != "dev-2" || len(page[0].Errors) != 2 {
			t.Fatalf("page after dev-10 = %+v, %v", page, err)
		}
		if err := s.PutChannelProfiles(ctx, []storage.ChannelProfile{{ProfileID: "", ChannelID: "x"}}); err == nil {
			t.Fatal("a state without a profile was accepted")
		}
	})
}
