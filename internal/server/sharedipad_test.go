package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
)

// Issue #19 section 4: every user of a Shared iPad sends the same UserID;
// each gets a channel of its own, keyed by UserShortName, so a command for
// one user is never delivered to another. A user waiting in setup is sent
// UserConfigured; a user channel from before per-user keys is left alone
// and reported in the log.
func testSharedIPadUsers(t *testing.T, b servertest.Backend) {
	ctx := context.Background()
	logs := &lockedBuffer{}
	s := b.Start(t, func(c *server.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	ipad := s.NewDevice(t)
	ipad.Model, ipad.ModelName, ipad.ProductName = "iPad13,16", "iPad Air", "iPad13,16"
	s.Enroll(t, ipad)

	ann := simdevice.SharedIPadUser("ann@school.example")
	bob := simdevice.SharedIPadUser("bob@school.example")
	if err := ipad.UserTokenUpdate(ctx, ann, true); err != nil {
		t.Fatal(err)
	}
	if err := ipad.UserTokenUpdate(ctx, bob, false); err != nil {
		t.Fatal(err)
	}
	var view struct {
		Users []struct {
			ID            string `json:"id"`
			Type          string `json:"type"`
			UserShortName string `json:"user_short_name"`
		} `json:"users"`
	}
	if code := s.API(t, "GET", "/v1/devices/"+ipad.UDID, nil, &view); code != http.StatusOK {
		t.Fatalf("GET device = %d", code)
	}
	got := map[string]string{}
	for _, u := range view.Users {
		got[u.ID] = u.Type
	}
	for _, u := range []simdevice.User{ann, bob} {
		if typ := got[ipad.UDID+":"+u.ShortName]; typ != string(storage.SharedIPadUser) {
			t.Errorf("user channels %v: no %s channel of type %q", got, u.ShortName, storage.SharedIPadUser)
		}
	}
	if len(got) != 2 {
		t.Errorf("user channels %v, want one per user", got)
	}

	// Ann waits in setup: UserConfigured. Bob does not.
	cmds, err := ipad.UserDrain(ctx, ann)
	if err != nil || len(cmds) != 1 || cmds[0].RequestType != "UserConfigured" {
		t.Fatalf("ann's channel after sign-in: %+v, %v; want UserConfigured", cmds, err)
	}
	if cmds, err := ipad.UserDrain(ctx, bob); err != nil || len(cmds) != 0 {
		t.Fatalf("bob's channel after sign-in: %+v, %v; want nothing", cmds, err)
	}
	// A later TokenUpdate of Ann's still waiting does not queue it again.
	if err := ipad.UserTokenUpdate(ctx, ann, true); err != nil {
		t.Fatal(err)
	}
	if cmds, err := ipad.UserDrain(ctx, ann); err != nil || len(cmds) != 0 {
		t.Fatalf("ann's channel after a second TokenUpdate: %+v, %v; want nothing", cmds, err)
	}

	// A command for Ann is Ann's alone.
	var sent sendResp
	if code := s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{ipad.UDID}, "user_id": ann.ShortName, "request_type": "ProfileList"}, &sent); code != http.StatusCreated {
		t.Fatalf("send to ann = %d %+v", code, sent)
	}
	if cmds, err := ipad.UserDrain(ctx, bob); err != nil || len(cmds) != 0 {
		t.Fatalf("bob got %+v, %v; the command was for ann", cmds, err)
	}
	if cmds, err := ipad.Drain(ctx, nil); err != nil || len(cmds) != 0 {
		t.Fatalf("the device channel got %+v, %v; the command was for ann", cmds, err)
	}
	if cmds, err := ipad.UserDrain(ctx, ann); err != nil || len(cmds) != 1 || cmds[0].UUID != sent.CommandUUID {
		t.Fatalf("ann's channel: %+v, %v; want the command sent to her", cmds, err)
	}

	// A Shared iPad user message without a short name names no channel.
	noName := ann
	noName.ShortName, noName.LongName = "", ""
	if err := ipad.UserTokenUpdate(ctx, noName, false); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("Shared iPad TokenUpdate without UserShortName: %v, want 400", err)
	}

	// A channel keyed by the shared UserID (written before this rule) stays
	// where it is, and the next scan says so.
	legacy := ipad.UDID + mdm.ChannelSeparator + mdm.SharedIPadUserID
	err = s.Store().UpdateEnrollment(ctx, legacy, &storage.Enrollment{ID: legacy, DeviceID: ipad.UDID, Type: storage.User, UserID: mdm.SharedIPadUserID},
		func(e *storage.Enrollment) error { e.Enrolled = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RenewIdentities(ctx); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); !strings.Contains(l, "Shared iPad user channels from before per-user keys") || !strings.Contains(l, legacy) {
		t.Fatalf("no warning naming the legacy channel %s in the log", legacy)
	}
	if e, err := s.Store().Enrollment(ctx, legacy); err != nil || !e.Enrolled {
		t.Fatalf("legacy channel after the scan: %+v, %v; want it left as it was", e, err)
	}
}
