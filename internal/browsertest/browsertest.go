// Package browsertest runs Debian's Chromium headless through chromedp for
// the browser tests of Orchard's server-rendered pages. A missing browser
// fails the test with how to install it: browser tests never skip.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultPath is where Debian's chromium package puts the browser.
const DefaultPath = "/usr/bin/chromium"

// Chromium finds the browser: $CHROME_PATH when set, else DefaultPath.
func Chromium() (string, error) {
	p := os.Getenv("CHROME_PATH")
	if p == "" {
		p = DefaultPath
	}
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("no Chromium at %s: install chromium (.ci/setup does it as root), or set CHROME_PATH: %w", p, err)
	}
	return p, nil
}

// New starts a headless Chromium with a fresh profile in t.TempDir and
// returns a browser tab's context; the browser is stopped at cleanup. The
// test servers' certificates come from Orchard's own test CA, hence
// --ignore-certificate-errors.
func New(t testing.TB) context.Context {
	t.Helper()
	path, err := Chromium()
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a failure to launch is reported here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx
}

// Do runs steps in the tab with a generous bound, so a page that never
// loads fails the test instead of hanging it; the bound is a safety net,
// not a timing assertion.
func Do(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Get runs one action that answers a value (a text, a location), bounded
// like Do.
func Get[T any](t testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// Load runs steps that end in a page load (a click on a submit button or a
// link, a navigation), waits for the new document and returns its HTTP
// status, bounded like Do.
func Load(t testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return resp.Status
}

// ScreenshotDir is where screenshots go: $ORCHARD_SCREENSHOTS when set,
// else a directory of t.TempDir.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ORCHARD_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// Screenshot saves a full-page PNG (quality 100 is PNG, not JPEG) of the tab as <test>-<name>.png in
// ScreenshotDir and returns its path, so a page can be looked at.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png := Get(t, ctx, chromedp.FullScreenshot(100))
	safe := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name() + "-" + name)
	p := filepath.Join(ScreenshotDir(t), safe+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}
