package browsertest

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestChromiumMissing: a browser that is not there is an error that says
// how to install it (the tests then fail with it; they never skip).
func TestChromiumMissing(t *testing.T) {
	t.Setenv("CHROME_PATH", filepath.Join(t.TempDir(), "no-chromium"))
	_, err := Chromium()
	if err == nil || !strings.Contains(err.Error(), "install chromium (.ci/setup does it as root)") {
		t.Fatalf("Chromium() = %v", err)
	}
}

// TestChromiumFound: the default, or CHROME_PATH, names the binary.
func TestChromiumFound(t *testing.T) {
	p, err := Chromium()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(p) {
		t.Fatalf("Chromium() = %q, want an absolute path", p)
	}
}
