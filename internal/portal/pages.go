package portal

import (
	"embed"
	"net/http"
	"strings"

	"github.com/orchardmdm/orchard/internal/webui"
)

//go:embed templates/*.html
var templateFS embed.FS

// view is a page's own data (webui.Page.Data).
type view struct {
	Step, Steps int

	Username, Category string
	Platform           string
	PlatformName       string
	PlatformWhy        string
	Platforms          []platformOption
	SetupAssistant     bool

	Terms      []Document
	Categories []Category

	Heading, Message, Hint string
	// Link, with LinkText, is where a message page sends the person on.
	Link, LinkText         string
	Label, Expires, Action string
}

type platformOption struct {
	ID, Name string
	Selected bool
}

// render writes a page through the shared layout. The site allows
// framing (Setup Assistant's web view); every page but the Setup
// Assistant ones takes it back.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page, title, errMsg string, v view) {
	if !v.SetupAssistant {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		if csp := h.Get("Content-Security-Policy"); csp != "" && !strings.Contains(csp, "frame-ancestors") {
			h.Set("Content-Security-Policy", csp+"; frame-ancestors 'none'")
		}
	}
	pg := &webui.Page{Title: title, Data: v}
	if errMsg != "" {
		pg.Errors = webui.FormErrors{"": errMsg}
	}
	if r.Method == http.MethodHead {
		w = headWriter{w}
	}
	p.pages.Render(w, r, status, page, pg)
}

// headWriter drops the body of a HEAD answer, keeping its headers.
type headWriter struct{ http.ResponseWriter }

func (h headWriter) Write(b []byte) (int, error) { return len(b), nil }

// message renders a page that only tells something: a refusal, a used link.
func (p *Portal) message(w http.ResponseWriter, r *http.Request, status int, heading, msg, hint string) {
	p.render(w, r, status, "message", heading, "", view{Heading: heading, Message: msg, Hint: hint})
}

// saMessage is message for the Setup Assistant web view.
func (p *Portal) saMessage(w http.ResponseWriter, r *http.Request, status int, heading, msg, hint string) {
	p.render(w, r, status, "message", heading, "", view{Heading: heading, Message: msg, Hint: hint, SetupAssistant: true})
}

// flowMessage is a message page within a signed-in flow, in the Setup
// Assistant web view when the flow is one, with a link back into the flow.
func (p *Portal) flowMessage(w http.ResponseWriter, r *http.Request, f Flow, status int, v view) {
	v.SetupAssistant = f.Device != nil
	p.render(w, r, status, "message", v.Heading, "", v)
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

func platformView(r *http.Request, f *Flow, v *view) {
	_, why := platformFromUA(r.UserAgent())
	if f.PlatformChosen {
		why = "as you chose"
	}
	v.Platform, v.PlatformName, v.PlatformWhy = f.Platform, platformNames[f.Platform], why
	for _, id := range []string{iOS, iPadOS, macOS} {
		v.Platforms = append(v.Platforms, platformOption{ID: id, Name: platformNames[id], Selected: id == f.Platform})
	}
}
