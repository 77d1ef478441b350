package portal

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one template set per page, each with the layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"signin", "terms", "category", "profile", "done", "message", "invitation"} {
		out[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/platform.html", "templates/"+name+".html"))
	}
	return out
}()

func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}

// view is what every page template reads.
type view struct {
	Title, Error string
	Step, Steps  int
	CSRF         string

	Username, Category string
	Platform           string
	PlatformName       string
	PlatformWhy        string
	Platforms          []platformOption
	SetupAssistant     bool

	Terms      []Document
	Categories []Category

	Message, Hint string
	Label         string
	Expires       string
	Action        string
}

type platformOption struct {
	ID, Name string
	Selected bool
}

// render writes a page with the headers every page gets: no caching, no
// sniffing, no referrer (a link's token must not leak), a CSP without
// inline script. Framing is allowed only from the same origin, except for
// the Setup Assistant web view, which needs none.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	var buf bytes.Buffer
	if err := pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.Error("portal: render", "page", page, "err", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	csp := "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'"
	if !v.SetupAssistant {
		h.Set("X-Frame-Options", "DENY")
		csp += "; frame-ancestors 'none'"
	}
	h.Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// message renders a page that only tells something: a refusal, a used link.
func (p *Portal) message(w http.ResponseWriter, r *http.Request, status int, title, msg, hint string) {
	p.render(w, r, status, "message", view{Title: title, Message: msg, Hint: hint})
}

// Platforms the portal tells apart.
const (
	iOS    = "iOS"
	iPadOS = "iPadOS"
	macOS  = "macOS"
)

var platformNames = map[string]string{iOS: "iPhone", iPadOS: "iPad", macOS: "Mac"}

// platformFromUA reads the platform from a User-Agent and says why.
// iPadOS Safari asks for desktop sites by default and then sends a Mac
// User-Agent: the page says so and lets the person correct it.
func platformFromUA(ua string) (platform, why string) {
	switch {
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPod"):
		return iOS, "from your browser, which says iPhone"
	case strings.Contains(ua, "iPad"):
		return iPadOS, "from your browser, which says iPad"
	case strings.Contains(ua, "Macintosh"):
		return macOS, "from your browser, which says Mac; an iPad showing desktop websites says so too"
	}
	return iOS, "your browser did not say; iPhone assumed"
}

func (p *Portal) platformView(r *http.Request, f *Flow, v *view) {
	_, why := platformFromUA(r.UserAgent())
	if f.PlatformChosen {
		why = "as you chose"
	}
	v.Platform, v.PlatformName, v.PlatformWhy = f.Platform, platformNames[f.Platform], why
	for _, id := range []string{iOS, iPadOS, macOS} {
		v.Platforms = append(v.Platforms, platformOption{ID: id, Name: platformNames[id], Selected: id == f.Platform})
	}
}
