package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// --insecure-machineinfo warns once at start and again on every
// unverified MachineInfo it lets through (issue #19 section 3); a verified
// one passes without the warning.
func TestInsecureMachineInfoWarns(t *testing.T) {
	logs := &lockedBuffer{}
	s := servertest.Start(t, func(c *server.Config) {
		c.InsecureMachineInfo = true
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	const atStart, onUse = "--insecure-machineinfo is on: ADE and Apple Configurator", "accepting MachineInfo not verified"
	if n := strings.Count(logs.String(), atStart); n != 1 {
		t.Fatalf("start warnings = %d, want 1:\n%s", n, logs)
	}
	var prof struct {
		ID string `json:"id"`
	}
	if code := s.API(t, "POST", "/v1/configurator/profiles", map[string]any{"name": "Lab"}, &prof); code != http.StatusCreated {
		t.Fatalf("create profile = %d", code)
	}
	d := s.NewDevice(t)
	req, _ := http.NewRequest("POST", s.URL+"/v1/configurator/serials?profile_id="+prof.ID, strings.NewReader(d.SerialNumber+",lab\n"))
	req.Header.Set("Authorization", "Bearer "+s.APIKey())
	req.Header.Set("Content-Type", "text/csv")
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("import serial = %d: %s", resp.StatusCode, body)
	}
	post := func() {
		t.Helper()
		info, err := d.MachineInfo()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Client.Post(s.URL+"/enroll/configurator/"+prof.ID, "application/pkcs7-signature", bytes.NewReader(info))
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 {
			t.Fatalf("lab MachineInfo = %d %s", resp.StatusCode, body)
		}
	}
	post()
	post()
	d.Apple = s.Apple
	post()
	if n := strings.Count(logs.String(), onUse); n != 2 {
		t.Fatalf("per-use warnings = %d, want 2 (one per unverified MachineInfo):\n%s", n, logs)
	}
}
