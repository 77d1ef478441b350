package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// The CLI against a real server: it finds the API key and TLS certificate
// in the data dir, sends a command built from --set flags, and shows it.
func TestCLICommandsRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	cli := func(args ...string) []byte {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args[:2:2], append([]string{"--data", s.Dir, "--server", s.URL}, args[2:]...)...)
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("orchard %s: %v (%s)", strings.Join(args, " "), err, errOut.String())
		}
		return out.Bytes()
	}
	// The profile the CLI downloads enrolls a device through SCEP.
	file := filepath.Join(t.TempDir(), "enroll.mobileconfig")
	cli("enroll", "profile", "-o", file)
	profile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dev := s.NewDevice(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.EnrollFromProfile(ctx, profile, key, s.Client); err != nil {
		t.Fatal(err)
	}
	if err := dev.Enroll(ctx); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(cli("devices", "list"), &list); err != nil || len(list.Devices) != 1 || list.Devices[0].ID != dev.UDID {
		t.Fatalf("devices list = %+v %v", list, err)
	}
	var sent struct {
		CommandUUID string `json:"command_uuid"`
	}
	out := cli("commands", "send", "--udid", dev.UDID, "--type", "DeviceLock", "--set", "Message=Call IT", "--set", "PIN=123456")
	if err := json.Unmarshal(out, &sent); err != nil || sent.CommandUUID == "" {
		t.Fatalf("commands send = %s %v", out, err)
	}
	cmd, err := dev.Idle(ctx)
	if err != nil || cmd == nil || cmd.RequestType != "DeviceLock" || cmd.Payload["PIN"] != "123456" || cmd.Payload["Message"] != "Call IT" {
		t.Fatalf("device received %+v %v", cmd, err)
	}
	if _, err := dev.Report(ctx, "Acknowledged", cmd.UUID, nil); err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Targets []struct {
			Status string `json:"status"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(cli("commands", "show", sent.CommandUUID), &shown); err != nil || shown.Targets[0].Status != "Acknowledged" {
		t.Fatalf("commands show = %+v %v", shown, err)
	}
	// A wrong key is refused by the server, and the CLI says so.
	var errOut bytes.Buffer
	if err := run(ctx, []string{"devices", "list", "--data", s.Dir, "--server", s.URL, "--api-key", "wrong"}, &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v", err)
	}
}
