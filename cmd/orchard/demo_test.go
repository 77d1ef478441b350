package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/orchardmdm/orchard/internal/demo"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// watchWriter keeps what is written; wait blocks until a string shows up.
type watchWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func newWatchWriter() *watchWriter { return &watchWriter{changed: make(chan struct{})} }

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns once want has been written, or fails the test when the
// command ends (done) first.
func (w *watchWriter) wait(t *testing.T, want string, done <-chan error) {
	t.Helper()
	for {
		w.mu.Lock()
		if strings.Contains(w.buf.String(), want) {
			w.mu.Unlock()
			return
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case err := <-done:
			t.Fatalf("ended before %q: %v\n%s", want, err, w.String())
		}
	}
}

// orchard demo: its devices enroll, show in devices list, and a lock sent
// with the CLI line the demo prints reaches a device (woken through the
// fake APNs); cancelling stops it cleanly and removes its data dir.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newWatchWriter()
	type info struct {
		url, dir string
		fleet    *demo.Fleet
	}
	ready := make(chan info, 1)
	done := make(chan error, 1)
	go func() {
		done <- demoRun{listen: "127.0.0.1:0", n: 3, ready: func(url, dir string, f *demo.Fleet) { ready <- info{url, dir, f} }}.run(ctx, out, &bytes.Buffer{})
	}()
	var in info
	select {
	case in = <-ready:
	case err := <-done:
		t.Fatalf("demo ended before its devices enrolled: %v\n%s", err, out.String())
	}
	for _, want := range []string{"Demo iPhone 1", "Demo iPad 2", "Demo Mac 3", "devices action " + in.fleet.Devices[0].UDID + " lock"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	var list bytes.Buffer
	if err := run(ctx, []string{"--data", in.dir, "--server", in.url, "devices", "list", "-o", "csv"}, &list, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range in.fleet.Devices {
		if !strings.Contains(list.String(), d.UDID) {
			t.Errorf("devices list lacks %s:\n%s", d.UDID, list.String())
		}
	}
	// Every command line the demo prints runs as printed; one is the lock.
	var errOut bytes.Buffer
	printed := 0
	for _, l := range strings.Split(out.String(), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "orchard --data") || strings.Contains(l, "<") {
			continue
		}
		words, _, err := shellWords(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(ctx, words[1:], &bytes.Buffer{}, &errOut); err != nil {
			t.Fatalf("%s: %v %s", l, err, errOut.String())
		}
		printed++
	}
	if printed < 3 {
		t.Fatalf("ran %d printed command lines:\n%s", printed, out.String())
	}
	out.wait(t, "received DeviceLock", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo stopped with %v", err)
	}
	if !strings.Contains(out.String(), "demo stopped") {
		t.Errorf("no clean stop:\n%s", out.String())
	}
	if _, err := os.Stat(in.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's data dir is still there: %v", err)
	}
}

// orchard simulate enrolls its devices in an existing server through the
// admin API and they answer what the server sends, until stopped.
func TestSimulate(t *testing.T) {
	s := servertest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newWatchWriter()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"simulate", "--data", s.Dir, "--server", s.URL, "-n", "4", "--interval", "1s", "--prefix", "SIM"}, out, &bytes.Buffer{})
	}()
	out.wait(t, "devices online", done)
	var list struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
	}
	s.API(t, "GET", "/v1/devices", nil, &list)
	if len(list.Devices) != 4 {
		t.Fatalf("%d devices enrolled, want 4: %+v", len(list.Devices), list)
	}
	// A command queued now is answered at a device's next check-in.
	s.API(t, "POST", "/v1/commands", map[string]any{"targets": []string{list.Devices[0].ID}, "request_type": "ProfileList"}, nil)
	out.wait(t, "received ProfileList", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("simulate stopped with %v", err)
	}
}
