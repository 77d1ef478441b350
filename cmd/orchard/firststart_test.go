package main

import (
	"bytes"
	"context"
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
	line := serveFirstLine(t, "no MDM push certificate yet")
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
