package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/orchardmdm/orchard/internal/browsertest"
	"github.com/orchardmdm/orchard/internal/servertest"
)

// TestPortalInBrowser runs the portal in headless Chromium as an iPhone:
// a wrong password, then sign-in, accepting the terms, the category, the profile download; a
// simulated device enrolls with the downloaded file and shows the user and
// category. Then an invitation link: its landing page, the profile, and
// the friendly page of the used link. Screenshots of every page go to
// $ORCHARD_SCREENSHOTS when set.
func TestPortalInBrowser(t *testing.T) {
	ctx := context.Background()
	s := servertest.Start(t)
	for _, c := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/users", map[string]any{"username": "ann", "display_name": "Ann", "password": "correct horse battery"}},
		{"/v1/categories", map[string]any{"name": "sales-phones", "description": "Phones of the sales team"}},
		{"/v1/categories", map[string]any{"name": "kiosk", "description": "Shared kiosks"}},
		{"/v1/terms", map[string]any{"name": "aup", "title": "Acceptable use", "summary": "Use company devices with care.",
			"text": "Full text of the acceptable use policy.", "all_users": true}},
	} {
		if code := s.API(t, "POST", c.path, c.body, nil); code != http.StatusCreated {
			t.Fatalf("POST %s = %d", c.path, code)
		}
	}
	tab := browsertest.New(t)
	downloads := t.TempDir()
	browsertest.Do(t, tab, chromedp.Emulate(device.IPhone13), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: new(true)})
		return err
	}))
	text := func(sel string) string { return browsertest.Get(t, tab, chromedp.Text(chromedp.CSS(sel))) }

	start := time.Now()
	if st := browsertest.Load(t, tab, chromedp.Navigate(s.URL+"/portal")); st != http.StatusOK || text("#platform") != "iPhone" {
		t.Fatalf("sign-in page: %d, platform %q", st, text("#platform"))
	}
	browsertest.Screenshot(t, tab, "1-signin")
	st := browsertest.Load(t, tab,
		chromedp.SendKeys(chromedp.CSS("#username"), "ann"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS("#signin")))
	if msg := text(".flash-error"); st != http.StatusUnauthorized || msg != "Wrong username or password." {
		t.Fatalf("wrong password: %d %q", st, msg)
	}
	browsertest.Screenshot(t, tab, "2-wrong-password")
	browsertest.Do(t, tab, chromedp.Clear(chromedp.CSS("#username")))
	st = browsertest.Load(t, tab,
		chromedp.SendKeys(chromedp.CSS("#username"), "ann"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#signin")))
	if st != http.StatusOK || text("h1") != "Terms and conditions" || !strings.Contains(text("main"), "Acceptable use") {
		t.Fatalf("after sign-in: %d %q, want the terms", st, text("main"))
	}
	if d := text("#decline-terms"); d != "Decline" {
		t.Fatalf("the terms page's Decline button says %q", d)
	}
	signedIn := time.Since(start)
	browsertest.Screenshot(t, tab, "3-terms")
	st = browsertest.Load(t, tab, chromedp.Click(chromedp.CSS("#accept")), chromedp.Click(chromedp.CSS("#accept-terms")))
	if st != http.StatusOK || text("h1") != "Device category" {
		t.Fatalf("after accepting the terms: %d %q", st, text("h1"))
	}
	browsertest.Screenshot(t, tab, "3-category")
	st = browsertest.Load(t, tab, chromedp.Click(chromedp.CSS(`input[value="sales-phones"]`)), chromedp.Click(chromedp.CSS("#choose-category")))
	if st != http.StatusOK || text("h1") != "Get your enrollment profile" || !strings.Contains(text("main"), "Profile Downloaded") {
		t.Fatalf("after the category: %d %q", st, text("main"))
	}
	browsertest.Screenshot(t, tab, "4-profile")

	dlCtx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	progress := chromedp.Events(dlCtx, cdpbrowser.DownloadProgress)
	browsertest.Do(t, tab, chromedp.Click(chromedp.CSS("#download")))
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the profile download: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(downloads, "orchard-enroll.mobileconfig")
			break
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the profile download was canceled")
		}
	}
	profile, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	downloaded := time.Since(start)
	dev := s.NewDevice(t)
	if err := dev.EnrollFromProfile(ctx, profile, mustKey(t), s.Client); err != nil {
		t.Fatal(err)
	}
	s.Enroll(t, dev)
	t.Logf("portal in Chromium: signed in after %v, profile downloaded after %v, device enrolled after %v",
		signedIn.Round(time.Millisecond), downloaded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	var shown struct {
		PrimaryUser string `json:"primary_user"`
		Category    string `json:"category"`
	}
	s.API(t, "GET", "/v1/devices/"+dev.UDID, nil, &shown)
	if shown.PrimaryUser != "ann" || shown.Category != "sales-phones" {
		t.Fatalf("device enrolled from the browser's profile = %+v", shown)
	}
	if as := acceptances(t, s); len(as) != 1 || as[0].Username != "ann" || as[0].Document != "aup" || !as[0].AcceptedLatest {
		t.Fatalf("acceptances after the browser's enrollment = %+v", as)
	}
	if st := browsertest.Load(t, tab, chromedp.Click(chromedp.CSS("#done-link"))); st != http.StatusOK || text("h1") != "You're done" {
		t.Fatalf("done page: %d %q", st, text("h1"))
	}
	browsertest.Screenshot(t, tab, "5-done")

	// An invitation link: the landing page, its button, then the used link.
	var inv struct {
		URL string `json:"url"`
	}
	if code := s.API(t, "POST", "/v1/enrollment/invitations", map[string]any{"label": "Ann's iPad"}, &inv); code != http.StatusCreated {
		t.Fatalf("create invitation = %d", code)
	}
	if st := browsertest.Load(t, tab, chromedp.Navigate(inv.URL)); st != http.StatusOK || !strings.Contains(text("main"), "Ann's iPad") {
		t.Fatalf("invitation landing page: %d %q", st, text("main"))
	}
	browsertest.Screenshot(t, tab, "6-invitation")
	progress = chromedp.Events(dlCtx, cdpbrowser.DownloadProgress)
	browsertest.Do(t, tab, chromedp.Click(chromedp.CSS("#get-profile")))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the invitation's profile: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			break
		}
	}
	if st := browsertest.Load(t, tab, chromedp.Navigate(inv.URL)); st != http.StatusGone || text("h1") != "This link was already used" {
		t.Fatalf("used invitation link: %d %q", st, text("h1"))
	}
	browsertest.Screenshot(t, tab, "7-used-link")
}
