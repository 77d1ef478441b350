package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

//go:embed static/orchard.css templates/base.html
var embedded embed.FS

// staticFiles are the embedded assets under content-hashed names, so a
// browser may cache them for good and still never see a stale one.
type staticFiles struct {
	byName   map[string][]byte // "orchard.1a2b3c4d5e.css" -> content
	hashedOf map[string]string // "orchard.css" -> "orchard.1a2b3c4d5e.css"
}

func loadStatic() (*staticFiles, error) {
	st := &staticFiles{byName: map[string][]byte{}, hashedOf: map[string]string{}}
	entries, err := fs.ReadDir(embedded, "static")
	if err != nil {
		return nil, fmt.Errorf("webui: static files: %w", err)
	}
	for _, e := range entries {
		b, err := embedded.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("webui: static files: %w", err)
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:5]) + ext
		st.byName[hashed] = b
		st.hashedOf[e.Name()] = hashed
	}
	return st, nil
}

// Asset is the URL of an embedded static file ("orchard.css").
func (s *Site) Asset(name string) string {
	return s.o.Prefix + "/static/" + s.static.hashedOf[name]
}

// Static serves the embedded files; mount it at Prefix+"/static/".
func (s *Site) Static() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, s.o.Prefix+"/static/")
		b, ok := s.static.byName[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", mimeOf(name))
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(b)
	})
}

func mimeOf(name string) string {
	switch path.Ext(name) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	}
	return "application/octet-stream"
}

// NavItem is one link of the header's navigation.
type NavItem struct {
	Label, Href string
}

// FormErrors maps a form field's name to what is wrong with it; "" is the
// form as a whole. The layout shows them next to their fields.
type FormErrors map[string]string

// Add records the first problem of a field.
func (e FormErrors) Add(field, msg string) {
	if _, ok := e[field]; !ok {
		e[field] = msg
	}
}

// Flash is a one-time message shown on the next page.
type Flash struct {
	Error   bool
	Message string
}

// Page is what the layout shows around a page's own content ("content"
// template). Render fills the fields below Data.
type Page struct {
	Title  string
	Nav    []NavItem
	Errors FormErrors
	Data   any

	Site       string // the site's name
	Prefix     string
	Subject    string // who is signed in, "" if nobody
	CSRF       string // for {{template "csrf" $}}
	Flash      *Flash
	Stylesheet string
	Path       string // the request's path, to mark the current nav item
}

// Templates are a surface's pages, each parsed into its own copy of the
// base layout.
type Templates struct {
	site  *Site
	pages map[string]*template.Template
}

// Templates parses every file matching patterns in fsys as one page named
// after the file without its extension ("devices.html" -> "devices"). A
// page defines "content"; funcs are added to the layout's. A file whose
// name starts with "_" is no page: its definitions (a form several pages
// show) are parsed into every page.
func (s *Site) Templates(fsys fs.FS, funcs template.FuncMap, patterns ...string) (*Templates, error) {
	base, err := template.New("base").Funcs(template.FuncMap{"asset": s.Asset}).Funcs(funcs).ParseFS(embedded, "templates/base.html")
	if err != nil {
		return nil, fmt.Errorf("webui: base layout: %w", err)
	}
	var pages []string
	for _, p := range patterns {
		files, err := fs.Glob(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		for _, f := range files {
			if !strings.HasPrefix(path.Base(f), "_") {
				pages = append(pages, f)
				continue
			}
			if _, err := base.ParseFS(fsys, f); err != nil {
				return nil, fmt.Errorf("webui: shared %s: %w", f, err)
			}
		}
	}
	t := &Templates{site: s, pages: map[string]*template.Template{}}
	for _, f := range pages {
		c, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		if _, err := c.ParseFS(fsys, f); err != nil {
			return nil, fmt.Errorf("webui: page %s: %w", f, err)
		}
		name := strings.TrimSuffix(path.Base(f), path.Ext(f))
		t.pages[name] = c
	}
	if len(t.pages) == 0 {
		return nil, fmt.Errorf("webui: no page matches %q", patterns)
	}
	return t, nil
}

// Render writes page name with status. The page is executed into a buffer
// first, so a template error is a clean 500 rather than half a page.
func (t *Templates) Render(w http.ResponseWriter, r *http.Request, status int, name string, p *Page) {
	tmpl, ok := t.pages[name]
	if !ok {
		t.site.o.Logger.Error("web page: no such template", "page", name)
		Refuse(w, http.StatusInternalServerError, "internal error: page missing")
		return
	}
	if p == nil {
		p = &Page{}
	}
	p.Site, p.Prefix, p.Subject, p.CSRF, p.Path = t.site.o.Name, t.site.o.Prefix, Subject(r), CSRFToken(r), r.URL.Path
	p.Stylesheet = t.site.Asset("orchard.css")
	p.Flash = t.site.takeFlash(w, r)
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "base", p); err != nil {
		t.site.o.Logger.Error("web page", "page", name, "err", err)
		Refuse(w, http.StatusInternalServerError, "internal error: the page could not be rendered")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func flashCookie(kind string) string { return "__Host-orchard-" + kind + "-flash" }

const maxFlash = 300

// Redirect sends the browser to url with 303 See Other (so a reload does
// not post again), carrying a flash message for the next page when msg is
// not empty.
func (s *Site) Redirect(w http.ResponseWriter, r *http.Request, url string, f Flash) {
	if f.Message != "" {
		msg := f.Message
		for len(msg) > maxFlash {
			_, n := utf8.DecodeLastRuneInString(msg)
			msg = msg[:len(msg)-n]
		}
		v := "ok|"
		if f.Error {
			v = "error|"
		}
		s.setCookie(w, flashCookie(s.o.Kind), base64.RawURLEncoding.EncodeToString([]byte(v+msg)), 0)
	}
	http.Redirect(w, r, url, http.StatusSeeOther)
}

func (s *Site) takeFlash(w http.ResponseWriter, r *http.Request) *Flash {
	c, err := r.Cookie(flashCookie(s.o.Kind))
	if err != nil {
		return nil
	}
	s.clearCookie(w, flashCookie(s.o.Kind))
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || !utf8.Valid(b) {
		return nil
	}
	kind, msg, ok := strings.Cut(string(b), "|")
	if !ok || msg == "" || len(msg) > maxFlash {
		return nil
	}
	return &Flash{Error: kind == "error", Message: msg}
}
