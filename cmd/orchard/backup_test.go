package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/apiclient"
	"github.com/orchardmdm/orchard/internal/server"
	"github.com/orchardmdm/orchard/internal/servertest"
	"github.com/orchardmdm/orchard/internal/simdevice"
)

// orchard backup while the server serves and commands keep being queued,
// then orchard restore into a new dir and a server on it: the same API key,
// the devices, every command queued before the backup began, and a device
// that keeps talking to the restored server with its identity.
func TestBackupWhileServingThenRestore(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	var devs []*simdevice.Device
	for range 3 {
		devs = append(devs, s.EnrollOTA(t))
	}
	api := &apiclient.Client{BaseURL: s.URL, Key: s.APIKey(), HTTP: s.Client}
	send := func() (string, error) {
		body, err := api.Call(ctx, "POST", "/v1/commands", map[string]any{"targets": []string{devs[0].UDID}, "request_type": "ProfileList"})
		if err != nil {
			return "", err
		}
		var out struct {
			CommandUUID string `json:"command_uuid"`
		}
		return out.CommandUUID, json.Unmarshal(body, &out)
	}
	before, err := send()
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := send(); err != nil {
				t.Errorf("write during backup: %v", err)
				return
			}
			writes++
		}
	}()
	file := filepath.Join(t.TempDir(), "orchard-backup.tar")
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"backup", "--to", file, "--data", s.Dir, "--server", s.URL}, &out, &errOut)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v %s", err, errOut.String())
	}
	t.Logf("%d commands queued while the backup ran; %s", writes, out.String())
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := os.Stat(file + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Error("the partial file is left behind")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if err := run(ctx, []string{"restore", "--from", file, "--data", restored}, &out, &errOut); err != nil {
		t.Fatalf("restore: %v %s", err, errOut.String())
	}
	// A second restore into the now full dir needs --force: exit 2.
	if err := run(ctx, []string{"restore", "--from", file, "--data", restored}, &out, &errOut); exitCode(err) != exitUsage {
		t.Errorf("restore into a full dir: exit %d (%v)", exitCode(err), err)
	}
	s2 := servertest.Start(t, func(c *server.Config) { c.DataDir = restored })
	if s2.APIKey() != s.APIKey() {
		t.Error("the restored server has another API key")
	}
	var list struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	s2.API(t, "GET", "/v1/devices", nil, &list)
	for _, d := range devs {
		if !slices.ContainsFunc(list.Devices, func(x struct {
			ID string `json:"id"`
		}) bool {
			return strings.EqualFold(x.ID, d.UDID)
		}) {
			t.Errorf("device %s is not on the restored server", d.UDID)
		}
	}
	if code := s2.API(t, "GET", "/v1/commands/"+before, nil, nil); code != 200 {
		t.Errorf("a command queued before the backup: %d on the restored server", code)
	}
	// The device's identity (CA, certificate records, binding) came along.
	dev := devs[1]
	dev.CheckinURL, dev.ServerURL, dev.Client = s2.URL+"/mdm/checkin", s2.URL+"/mdm/connect", s2.Client
	if _, err := dev.Idle(ctx); err != nil {
		t.Errorf("an enrolled device talking to the restored server: %v", err)
	}
}

// A backup through a server whose key the CLI does not have is refused
// with exit 4 and leaves no file; an offline backup of a running server's
// data dir is refused too.
func TestBackupRefused(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	file := filepath.Join(t.TempDir(), "b.tar")
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"backup", "--to", file, "--data", s.Dir, "--server", s.URL, "--api-key", "wrong-key-wrong-key"}, &out, &errOut)
	if exitCode(err) != exitRefused {
		t.Errorf("wrong key: exit %d (%v)", exitCode(err), err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused backup left a file")
	}
	err = run(ctx, []string{"backup", "--offline", "--to", file, "--data", s.Dir}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("offline backup of a running server: %v", err)
	}
	if err := run(ctx, []string{"backup", "--data", s.Dir}, &out, &errOut); exitCode(err) != exitUsage {
		t.Errorf("without --to: exit %d", exitCode(err))
	}
}
