package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// testAdminRoles: on a real server, a helpdesk admin's token locks a device
// (which then gets the DeviceLock), cannot erase it or send a raw command,
// and the audit log shows both, with the token as the actor.
func testAdminRoles(t *testing.T, backend servertest.Backend) {
	ctx := context.Background()
	s := backend.Start(t)
	dev := s.NewDevice(t)
	s.Enroll(t, dev)
	if code := s.API(t, "POST", "/v1/admins", map[string]any{"username": "hana", "role": "helpdesk", "password": "hana-long-password"}, nil); code != http.StatusCreated {
		t.Fatalf("create admin = %d", code)
	}
	var tok struct{ ID, Token string }
	if code := s.API(t, "POST", "/v1/admins/hana/tokens", map[string]any{}, &tok); code != http.StatusCreated || tok.Token == "" {
		t.Fatalf("token = %d", code)
	}
	as := func(method, path string, body any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := s.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := as("POST", "/v1/devices/"+dev.UDID+"/actions/lock", map[string]any{"message": "Call IT"}); code != http.StatusCreated {
		t.Fatalf("helpdesk lock = %d", code)
	}
	if code := as("POST", "/v1/devices/"+dev.UDID+"/actions/erase", map[string]any{"confirm": true}); code != http.StatusForbidden {
		t.Fatalf("helpdesk erase = %d, want 403", code)
	}
	if code := as("POST", "/v1/commands", map[string]any{"udids": []string{dev.UDID}, "command": map[string]any{"RequestType": "EraseDevice"}}); code != http.StatusForbidden {
		t.Fatalf("helpdesk raw command = %d, want 403", code)
	}
	cmd, err := dev.Idle(ctx)
	if err != nil || cmd == nil || cmd.RequestType != "DeviceLock" {
		t.Fatalf("device got %+v, %v; want the DeviceLock and nothing else", cmd, err)
	}
	var audit struct {
		Entries []struct{ Actor, Action, Target, Result string }
	}
	if code := s.API(t, "GET", "/v1/audit?actor=hana", nil, &audit); code != http.StatusOK || len(audit.Entries) != 3 {
		t.Fatalf("audit = %d %+v", code, audit.Entries)
	}
	want := []string{"action=lock ok", "action=erase denied", "POST /v1/commands denied"}
	for i, e := range audit.Entries {
		line := strings.Join(strings.Fields(e.Action+" "+e.Target+" "+e.Result), " ")
		if e.Actor != "hana/token:"+tok.ID || !strings.Contains(line, want[i]) {
			t.Errorf("entry %d = %+v, want %q by hana's token", i, e, want[i])
		}
	}
}
