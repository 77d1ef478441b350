package webui_test

import (
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var pages = fstest.MapFS{
	"pages/signin.html": {Data: []byte(`{{define "content"}}<h1>Sign in</h1>
<form method="post" action="/app/sign-in">{{template "csrf" .}}
<label for="user">Username</label><input id="user" name="user" type="text">
<button id="go" type="submit">Sign in</button></form>{{end}}`)},
	"pages/home.html": {Data: []byte(`{{define "content"}}<h1>Notes of {{.Subject}}</h1>
<form id="note-form" method="post" action="/app/note">{{template "csrf" .}}
<label for="note">Note</label><input id="note" name="note" type="text"
{{with index .Errors "note"}} aria-invalid="true" aria-describedby="note-error"{{end}}>
{{with index .Errors "note"}}<p class="error" id="note-error">{{.}}</p>{{end}}
<button id="save" type="submit">Save</button></form>{{end}}`)},
}

// app is a tiny surface on the foundation: a sign-in form, and behind the
// session a form that saves notes.
type app struct {
	site   *webui.Site
	store  *bolt.Store
	path   string
	clock  *clock
	srv    *httptest.Server
	saved  atomic.Int32 // notes the handler accepted
	framed bool
}

func newApp(t *testing.T, allowFraming bool) *app {
	t.Helper()
	a := &app{clock: &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}, path: filepath.Join(t.TempDir(), "orchard.db")}
	var err error
	a.store, err = bolt.Open(a.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.store.Close() })
	a.site, err = webui.New(webui.Options{Kind: "test", Name: "Test site", Prefix: "/app", Store: a.store,
		Now: a.clock.Now, AllowFraming: allowFraming})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := a.site.Templates(pages, nil, "pages/*.html")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /app/static/", a.site.Static())
	mux.HandleFunc("GET /app/{$}", func(w http.ResponseWriter, r *http.Request) {
		if webui.Subject(r) == "" {
			tmpl.Render(w, r, http.StatusOK, "signin", &webui.Page{Title: "Sign in"})
			return
		}
		tmpl.Render(w, r, http.StatusOK, "home", &webui.Page{Title: "Home", Nav: []webui.NavItem{{Label: "Home", Href: "/app/"}}})
	})
	mux.HandleFunc("POST /app/sign-in", func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.site.SignIn(w, r, r.PostFormValue("user"), nil); err != nil {
			t.Errorf("sign in: %v", err)
			http.Error(w, "sign-in failed", 500)
			return
		}
		a.site.Redirect(w, r, "/app/", webui.Flash{Message: "Signed in"})
	})
	mux.HandleFunc("POST /app/note", func(w http.ResponseWriter, r *http.Request) {
		if webui.Subject(r) == "" {
			webui.Refuse(w, http.StatusUnauthorized, "sign in first")
			return
		}
		note := r.PostFormValue("note")
		if note == "" {
			tmpl.Render(w, r, http.StatusUnprocessableEntity, "home", &webui.Page{Title: "Home", Errors: webui.FormErrors{"note": "Write a note first."}})
			return
		}
		a.saved.Add(1)
		a.site.Redirect(w, r, "/app/", webui.Flash{Message: "Saved: " + note})
	})
	mux.HandleFunc("POST /app/sign-out", func(w http.ResponseWriter, r *http.Request) {
		if err := a.site.SignOut(w, r); err != nil {
			t.Errorf("sign out: %v", err)
		}
		a.site.Redirect(w, r, "/app/", webui.Flash{Message: "Signed out"})
	})
	a.srv = httptest.NewTLSServer(a.site.Handler(mux))
	t.Cleanup(a.srv.Close)
	return a
}

// client is a browser-like client: a cookie jar, no redirects followed.
func (a *app) client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// token reads the hidden CSRF field of a rendered page.
func token(t *testing.T, body string) string {
	t.Helper()
	const mark = `name="csrf" value="`
	i := strings.Index(body, mark)
	if i < 0 {
		t.Fatalf("no CSRF field in %q", body)
	}
	rest := body[i+len(mark):]
	return rest[:strings.IndexByte(rest, '"')]
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// signIn walks the sign-in form and returns the session cookie set.
func (a *app) signIn(t *testing.T, c *http.Client, user string) *http.Cookie {
	t.Helper()
	_, body := get(t, c, a.srv.URL+"/app/")
	resp, _ := post(t, c, a.srv.URL+"/app/sign-in", url.Values{"user": {user}, "csrf": {token(t, body)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", resp.Status)
	}
	sc := cookieOf(resp, webui.SessionCookie("test"))
	if sc == nil {
		t.Fatal("sign-in set no session cookie")
	}
	return sc
}

func hashOf(v string) []byte { h := sha256.Sum256([]byte(v)); return h[:] }

var _ storage.WebSessionStore = (*bolt.Store)(nil)
