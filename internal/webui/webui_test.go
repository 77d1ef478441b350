package webui_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// TestSessionCookie: the session cookie is __Host-, Secure, HttpOnly,
// SameSite=Lax, Path=/; the store keeps only the hash of its value.
func TestSessionCookie(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	sc := a.signIn(t, c, "alice")
	if !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Domain != "" {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", sc)
	}
	if !strings.HasPrefix(sc.Name, "__Host-") || len(sc.Value) != 43 {
		t.Fatalf("cookie %s=%q: want a __Host- name and 256 random bits", sc.Name, sc.Value)
	}
	ws, err := a.store.GetWebSession(t.Context(), "test", hashOf(sc.Value))
	if err != nil || ws.Subject != "alice" {
		t.Fatalf("session by hash = %+v, %v", ws, err)
	}
	if _, err := a.store.GetWebSession(t.Context(), "test", []byte(sc.Value)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session by the raw id: %v, want ErrNotFound", err)
	}
	_, body := get(t, c, a.srv.URL+"/app/")
	if !strings.Contains(body, "Notes of alice") || !strings.Contains(body, "Signed in") {
		t.Fatalf("home after sign-in: %s", body)
	}
	a.store.Close()
	raw, err := os.ReadFile(a.path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(sc.Value)) {
		t.Fatal("the database file holds the session id itself")
	}
}

// TestSignInRotates: signing in again replaces the session, and the old id
// is worth nothing; signing out deletes the session.
func TestSignInRotates(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	first := a.signIn(t, c, "alice")
	second := a.signIn(t, c, "alice")
	if first.Value == second.Value {
		t.Fatal("sign-in kept the session id")
	}
	if _, err := a.store.GetWebSession(t.Context(), "test", hashOf(first.Value)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old session after sign-in: %v", err)
	}
	// The old cookie alone no longer signs anyone in.
	old := a.client(t)
	u, _ := url.Parse(a.srv.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: first.Name, Value: first.Value, Path: "/"}})
	if _, body := get(t, old, a.srv.URL+"/app/"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatalf("old cookie still signed in: %s", body)
	}
	_, body := get(t, c, a.srv.URL+"/app/")
	resp, _ := post(t, c, a.srv.URL+"/app/sign-out", url.Values{"csrf": {token(t, body)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if sc := cookieOf(resp, first.Name); sc == nil || sc.MaxAge >= 0 {
		t.Fatalf("sign-out did not clear the cookie: %+v", sc)
	}
	if _, err := a.store.GetWebSession(t.Context(), "test", hashOf(second.Value)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session after sign-out: %v", err)
	}
}

// TestExpiry: a session unused past the idle timeout ends, and one used
// all along still ends at its absolute age; both are deleted.
func TestExpiry(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	sc := a.signIn(t, c, "alice")
	a.clock.Add(29 * time.Minute)
	if _, body := get(t, c, a.srv.URL+"/app/"); !strings.Contains(body, "Notes of alice") {
		t.Fatal("signed out before the idle timeout")
	}
	a.clock.Add(31 * time.Minute) // 31 min after the last use
	if _, body := get(t, c, a.srv.URL+"/app/"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatal("still signed in past the idle timeout")
	}
	if _, err := a.store.GetWebSession(t.Context(), "test", hashOf(sc.Value)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("idle-expired session kept: %v", err)
	}

	sc = a.signIn(t, c, "alice")
	for range 12*3 - 1 { // every 20 minutes for 11 h 40 min
		a.clock.Add(20 * time.Minute)
		if _, body := get(t, c, a.srv.URL+"/app/"); !strings.Contains(body, "Notes of alice") {
			t.Fatal("signed out while in use before the absolute age")
		}
	}
	a.clock.Add(20 * time.Minute)
	if _, body := get(t, c, a.srv.URL+"/app/"); !strings.Contains(body, "<h1>Sign in</h1>") {
		t.Fatal("still signed in past the absolute age")
	}
	if n, err := a.site.DeleteExpired(t.Context()); err != nil || n != 0 {
		t.Fatalf("DeleteExpired after the lazy delete: %d, %v", n, err)
	}
}

// TestCSRF: a state change needs the session's token and a same-origin
// request; a refused one answers 403 with one plain line and never reaches
// the handler.
func TestCSRF(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	a.signIn(t, c, "alice")
	_, body := get(t, c, a.srv.URL+"/app/")
	tok := token(t, body)
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  map[string]string
		want string
	}{
		{"no token", url.Values{"note": {"x"}}, nil, "forbidden: missing or wrong CSRF token"},
		{"wrong token", url.Values{"note": {"x"}, "csrf": {strings.Repeat("A", 43)}}, nil, "forbidden: missing or wrong CSRF token"},
		{"cross-site", url.Values{"note": {"x"}, "csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, "forbidden: cross-origin"},
		{"foreign origin", url.Values{"note": {"x"}, "csrf": {tok}}, map[string]string{"Origin": "https://evil.example"}, "forbidden: cross-origin"},
	} {
		resp, body := post(t, c, a.srv.URL+"/app/note", tc.form, tc.hdr)
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(body, tc.want) || strings.Count(body, "\n") != 1 {
			t.Errorf("%s: %s %q, want 403 %q on one line", tc.name, resp.Status, body, tc.want)
		}
	}
	if n := a.saved.Load(); n != 0 {
		t.Fatalf("%d refused posts reached the handler", n)
	}
	resp, _ := post(t, c, a.srv.URL+"/app/note", url.Values{"note": {"hello"}, "csrf": {tok}},
		map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": a.srv.URL})
	if resp.StatusCode != http.StatusSeeOther || a.saved.Load() != 1 {
		t.Fatalf("post with the token: %s, saved %d", resp.Status, a.saved.Load())
	}
	if _, body := get(t, c, a.srv.URL+"/app/"); !strings.Contains(body, "Saved: hello") {
		t.Fatalf("no flash after the save: %s", body)
	}
	// The flash is shown once.
	if _, body := get(t, c, a.srv.URL+"/app/"); strings.Contains(body, "Saved: hello") {
		t.Fatal("flash shown twice")
	}

	// Before sign-in, the sign-in form is protected by the anonymous token.
	anon := a.client(t)
	if resp, _ := post(t, anon, a.srv.URL+"/app/sign-in", url.Values{"user": {"mallory"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without a token: %s", resp.Status)
	}
}

// TestFormErrors: a form error is shown next to its field.
func TestFormErrors(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	a.signIn(t, c, "alice")
	_, body := get(t, c, a.srv.URL+"/app/")
	resp, body := post(t, c, a.srv.URL+"/app/note", url.Values{"note": {""}, "csrf": {token(t, body)}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `aria-describedby="note-error"`) ||
		!strings.Contains(body, `<p class="error" id="note-error">Write a note first.</p>`) {
		t.Fatalf("empty note: %s %s", resp.Status, body)
	}
}

// TestBodyLimit: a form post over the limit answers 413 and is not handled.
func TestBodyLimit(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	a.signIn(t, c, "alice")
	_, body := get(t, c, a.srv.URL+"/app/")
	resp, msg := post(t, c, a.srv.URL+"/app/note", url.Values{"note": {strings.Repeat("x", 70<<10)}, "csrf": {token(t, body)}}, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "64 KiB") || a.saved.Load() != 0 {
		t.Fatalf("big post: %s %q, saved %d", resp.Status, msg, a.saved.Load())
	}
}

// TestHeaders: pages carry the security headers and no-store; framing is
// refused unless the site opts out; the stylesheet is served under its
// content hash, cacheable for good.
func TestHeaders(t *testing.T) {
	a := newApp(t, false)
	c := a.client(t)
	resp, body := get(t, c, a.srv.URL+"/app/")
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	for _, want := range []string{`<a class="skip" href="#main">`, `<main id="main"`, `<label for="user">`, `lang="en"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	css := a.site.Asset("orchard.css")
	if !strings.Contains(body, `href="`+css+`"`) || !strings.HasPrefix(css, "/app/static/orchard.") || css == "/app/static/orchard.css" {
		t.Fatalf("stylesheet %q not linked by hash", css)
	}
	resp, sheet := get(t, c, a.srv.URL+css)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.Contains(sheet, ":focus-visible") {
		t.Fatalf("stylesheet: %s %q", resp.Status, resp.Header.Get("Cache-Control"))
	}
	if resp, _ := get(t, c, a.srv.URL+"/app/static/orchard.css"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unhashed name: %s", resp.Status)
	}

	framed := newApp(t, true)
	resp, _ = get(t, framed.client(t), framed.srv.URL+"/app/")
	if resp.Header.Get("X-Frame-Options") != "" || strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors") {
		t.Fatalf("framing opt-out still refuses: %v", resp.Header)
	}
}

func TestNewRefuses(t *testing.T) {
	a := newApp(t, false)
	for _, o := range []webui.Options{{Prefix: "/x", Store: a.store}, {Kind: "k"}, {Kind: "k", Prefix: "x", Store: a.store}, {Kind: "a b", Store: a.store}} {
		if _, err := webui.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestSharedTemplates: a file named _*.html is no page, and every page can
// use what it defines.
func TestSharedTemplates(t *testing.T) {
	site, err := webui.New(webui.Options{Kind: "shared", Name: "Shared", Prefix: "/s", Store: newApp(t, false).store})
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{
		"t/_parts.html": {Data: []byte(`{{define "greeting"}}<p class="greeting">Hello {{.}}</p>{{end}}`)},
		"t/one.html":    {Data: []byte(`{{define "content"}}<h1>One</h1>{{template "greeting" "one"}}{{end}}`)},
		"t/two.html":    {Data: []byte(`{{define "content"}}<h1>Two</h1>{{template "greeting" "two"}}{{end}}`)},
	}
	tmpl, err := site.Templates(fsys, nil, "t/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"one", "two"} {
		rec := httptest.NewRecorder()
		tmpl.Render(rec, httptest.NewRequest("GET", "/s/"+page, nil), http.StatusOK, page, &webui.Page{})
		if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `<p class="greeting">Hello `+page+`</p>`) {
			t.Errorf("page %s: %d %s", page, rec.Code, body)
		}
	}
	rec := httptest.NewRecorder()
	tmpl.Render(rec, httptest.NewRequest("GET", "/s/x", nil), http.StatusOK, "_parts", &webui.Page{})
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("the shared file is served as a page: %d", rec.Code)
	}
}
