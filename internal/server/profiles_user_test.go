package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// waitStateBy is waitState with any way of settling: settle answers what
// Orchard queued (a device channel, a user channel).
func waitStateBy(t *testing.T, s *servertest.Server, profileID, ch, want string, settle func() error) channelState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := settle(); err != nil {
			t.Fatal(err)
		}
		var st struct {
			Channels []channelState `json:"channels"`
		}
		if code := s.API(t, "GET", "/v1/profiles/"+profileID+"/status", nil, &st); code != http.StatusOK {
			t.Fatalf("status = %d", code)
		}
		for _, c := range st.Channels {
			if c.ChannelID == ch && c.State == want {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s never reached %s: %+v", profileID, ch, want, st.Channels)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testUserChannelProfiles: a profile scoped with "channel": "user" is
// installed on the macOS users' channels, verified from each user's own
// ProfileList, reaches a user who signs in later, never goes to the device
// channel, and is removed from the users when unscoped.
func testUserChannelProfiles(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	s := b.Start(t)
	mac := s.NewDevice(t)
	mac.ProductName, mac.Model, mac.ModelName, mac.OSVersion = "Mac14,2", "Mac14,2", "MacBook Air", "15.1"
	phone := s.NewDevice(t)
	s.Enroll(t, mac)
	s.Enroll(t, phone)
	alice := simdevice.User{UserID: "2DC6C8B4-9A4F-4B9E-8E5C-1D2F3A4B5C6D", ShortName: "alice", Token: []byte("alice-token"), PushMagic: "AM"}
	bob := simdevice.User{UserID: "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D", ShortName: "bob", Token: []byte("bob-token"), PushMagic: "BM"}
	if err := mac.UserTokenUpdate(ctx, alice, false); err != nil {
		t.Fatal(err)
	}
	if _, err := mac.UserSettle(ctx, alice); err != nil {
		t.Fatal(err)
	}
	aliceCh, bobCh := mac.UDID+":"+alice.UserID, mac.UDID+":"+bob.UserID

	const id = "com.example.user-wifi"
	if code := s.API(t, "POST", "/v1/profiles", wifiProfile(t, id, "33333333-0000-4000-8000-000000000001"), nil); code != http.StatusCreated {
		t.Fatalf("upload = %d", code)
	}
	if code := s.API(t, "PUT", "/v1/profiles/"+id+"/scope", map[string]any{"scope": map[string]any{"platforms": []string{"macOS"}, "channel": "user"}}, nil); code != http.StatusOK {
		t.Fatalf("scope = %d", code)
	}
	settleAll := func(users ...simdevice.User) func() error {
		return func() error {
			for _, u := range users {
				if _, err := mac.UserSettle(ctx, u); err != nil {
					return err
				}
			}
			_, err := mac.Settle(ctx)
			return err
		}
	}
	waitStateBy(t, s, id, aliceCh, "verified", settleAll(alice))
	if !slices.Contains(mac.UserInstalledProfiles(alice), id) {
		t.Fatalf("alice lacks the profile: %v", mac.UserInstalledProfiles(alice))
	}
	// A user who signs in later gets it when the user channel enrolls.
	if err := mac.UserTokenUpdate(ctx, bob, false); err != nil {
		t.Fatal(err)
	}
	waitStateBy(t, s, id, bobCh, "verified", settleAll(alice, bob))
	if got := mac.InstalledProfiles(); slices.Contains(got, id) {
		t.Fatalf("the Mac's device channel got a user profile: %v", got)
	}
	if _, err := phone.Settle(ctx); err != nil || slices.Contains(phone.InstalledProfiles(), id) {
		t.Fatalf("the iPhone got a macOS user profile: %v %v", phone.InstalledProfiles(), err)
	}
	var st struct {
		Channels []channelState `json:"channels"`
	}
	s.API(t, "GET", "/v1/profiles/"+id+"/status", nil, &st)
	for _, c := range st.Channels {
		if c.ChannelID != aliceCh && c.ChannelID != bobCh {
			t.Fatalf("state on a channel out of scope: %+v", c)
		}
	}

	// Unscope: both users lose it.
	if code := s.API(t, "PUT", "/v1/profiles/"+id+"/scope", map[string]any{"scope": map[string]any{}}, nil); code != http.StatusOK {
		t.Fatalf("unscope = %d", code)
	}
	for _, ch := range []string{aliceCh, bobCh} {
		waitStateBy(t, s, id, ch, "removed", settleAll(alice, bob))
	}
	if slices.Contains(mac.UserInstalledProfiles(alice), id) || slices.Contains(mac.UserInstalledProfiles(bob), id) {
		t.Fatal("a user still has the profile")
	}
}
