package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/internal/servertest"
)

// A new admin's first steps: the first start says a push certificate comes
// first and how to get one; enroll profile before that is a 409 with the
// same next step, and writes no file.
func TestFirstStartPointsAtPushCertificate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &lineWatch{want: "no MDM push certificate yet", seen: make(chan string, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--public-url", "https://127.0.0.1:8443"}, io.Discard, w)
	}()
	var line string
	select {
	case line = <-w.seen:
	case err := <-done:
		t.Fatalf("serve ended before serving: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, want := range []string{"orchard push-cert csr", "orchard push-cert upload"} {
		if !strings.Contains(line, want) {
			t.Errorf("first-start line %q does not say %q", line, want)
		}
	}

	s := servertest.StartWithoutPushCert(t)
	file := filepath.Join(t.TempDir(), "enroll.mobileconfig")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"enroll", "profile", "--data", s.Dir, "--server", s.URL, "-o", file}, &out, &errOut)
	if err == nil {
		t.Fatal("enroll profile without a push certificate succeeded")
	}
	msg := err.Error() + errOut.String()
	if !strings.Contains(msg, "409") || !strings.Contains(msg, "upload an MDM push certificate first") {
		t.Fatalf("enroll profile: %q, want the 409 with the next step", msg)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a profile file was written")
	}
}
