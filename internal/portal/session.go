package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/orchardmdm/orchard/internal/enroll"
	"github.com/orchardmdm/orchard/internal/webui"
	"github.com/orchardmdm/orchard/storage"
)

// Flow is where one person's enrollment stands. It lives in their portal
// session (internal/webui, kind "portal") under flowKey; it holds no
// secret.
type Flow struct {
	// ID names the enrollment in the stage records: it stays the same
	// across the sign-in, which changes the session's ID.
	ID string `json:"id"`
	// Platform is iOS, iPadOS or macOS: from the User-Agent, or as the
	// person corrected it.
	Platform       string `json:"platform,omitempty"`
	PlatformChosen bool   `json:"platform_chosen,omitempty"`
	Category       string `json:"category,omitempty"`
	CategoryDone   bool   `json:"category_done,omitempty"`
	TermsDone      bool   `json:"terms_done,omitempty"`
	Downloaded     bool   `json:"downloaded,omitempty"`
	// Setup Assistant sign-in: the verified device and its ADE profile.
	Device    *enroll.MachineInfo `json:"device,omitempty"`
	TokenID   string              `json:"token_id,omitempty"`
	ProfileID string              `json:"profile_id,omitempty"`
}

const flowKey = "flow"

// current is the request's session and its flow (nil, zero flow: none).
func current(r *http.Request) (*storage.WebSession, Flow) {
	ws := webui.Session(r)
	var f Flow
	if ws != nil {
		_ = json.Unmarshal([]byte(ws.Data[flowKey]), &f) // a bad one starts over
	}
	return ws, f
}

func flowData(f Flow) map[string]string {
	b, _ := json.Marshal(f)
	return map[string]string{flowKey: string(b)}
}

// save stores the flow in the session.
func (p *Portal) save(r *http.Request, ws *storage.WebSession, f Flow) error {
	ws.Data = flowData(f)
	return p.cfg.Site.Save(r.Context(), ws)
}

// anonymousID names an enrollment before sign-in, when there is no stored
// session yet: derived from the browser's anonymous CSRF token, so the
// sign-in page and the sign-in post name the same enrollment.
func anonymousID(r *http.Request) string {
	tok := webui.CSRFToken(r)
	if tok == "" {
		return newID()
	}
	sum := sha256.Sum256([]byte("portal enrollment " + tok))
	return hex.EncodeToString(sum[:16])
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
