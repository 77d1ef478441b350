package webui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/orchardmdm/orchard/internal/browsertest"
)

// TestBrowserCSRF drives the foundation in headless Chromium: sign in
// through the form, save a note with the form's token, then post the same
// form with its token removed and see the one-line refusal.
func TestBrowserCSRF(t *testing.T) {
	a := newApp(t, false)
	ctx := browsertest.New(t)
	if st := browsertest.Load(t, ctx, chromedp.Navigate(a.srv.URL+"/app/")); st != http.StatusOK {
		t.Fatalf("sign-in page: %d", st)
	}
	st := browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#user"), "alice"),
		chromedp.Click(chromedp.CSS("#go")),
	)
	if h := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("h1"))); st != http.StatusOK || h != "Notes of alice" {
		t.Fatalf("after sign-in: %d, the page says %q", st, h)
	}
	browsertest.Load(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#note"), "hello"),
		chromedp.Click(chromedp.CSS("#save")),
	)
	if f := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS(".flash"))); f != "Saved: hello" {
		t.Fatalf("flash after saving = %q", f)
	}
	browsertest.Screenshot(t, ctx, "saved")
	if a.saved.Load() != 1 {
		t.Fatalf("saved %d notes, want 1", a.saved.Load())
	}

	// The same form without its hidden token.
	browsertest.Do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#note"), "forged"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#note-form input[name=csrf]').remove()`),
	)
	st = browsertest.Load(t, ctx, chromedp.Click(chromedp.CSS("#save")))
	body := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("body")))
	if st != http.StatusForbidden || !strings.HasPrefix(body, "forbidden: missing or wrong CSRF token") {
		t.Fatalf("post without the token: %d %q", st, body)
	}
	if a.saved.Load() != 1 {
		t.Fatalf("the forged post was handled (saved %d)", a.saved.Load())
	}
}
