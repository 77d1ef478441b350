package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/enroll"
)

// Flow is where one person's enrollment stands; it lives in their session.
type Flow struct {
	Username string `json:"username,omitempty"`
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

// Session is a portal session: an ID (never shown), the CSRF token of its
// forms and the flow.
type Session struct {
	ID   string
	CSRF string
	Flow Flow
}

// Sessions keeps portal sessions server-side behind a cookie.
type Sessions interface {
	// Get returns the request's live session, or nil when it has none.
	Get(r *http.Request) (*Session, error)
	// Start begins a fresh session holding f under a new ID and cookie,
	// ending the request's old one (a sign-in rotates the ID).
	Start(w http.ResponseWriter, r *http.Request, f Flow) (*Session, error)
	// Save stores the session's flow.
	Save(ctx context.Context, s *Session) error
	// CheckCSRF refuses a form post whose token is not the session's, or
	// that comes from another origin.
	CheckCSRF(r *http.Request, s *Session) error
}

// ErrCSRF refuses a form post without the session's token.
var ErrCSRF = errors.New("This form has expired or did not come from this site: reload the page and try again.")

// MemorySessions keeps sessions in memory, for one process. It stands in
// until the shared web session store (internal/webui) is wired; the
// cookie follows the same rules: __Host- name, Secure, HttpOnly,
// SameSite=Lax, only a hash of the ID kept.
type MemorySessions struct {
	mu     sync.Mutex
	m      map[string]*memSession // hex SHA-256 of the ID -> session
	now    func() time.Time
	origin string
}

type memSession struct {
	csrf    string
	flow    Flow
	created time.Time
	seen    time.Time
}

const (
	cookieName     = "__Host-orchard-portal"
	sessionIdle    = 30 * time.Minute
	sessionMax     = 4 * time.Hour
	maxMemSessions = 100_000
)

// NewMemorySessions keeps sessions in memory; origin is the public URL's
// scheme and host, which form posts must come from.
func NewMemorySessions(origin string, now func() time.Time) *MemorySessions {
	if now == nil {
		now = time.Now
	}
	return &MemorySessions{m: map[string]*memSession{}, now: now, origin: origin}
}

func hashID(id string) string { s := sha256.Sum256([]byte(id)); return hex.EncodeToString(s[:]) }

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Get implements Sessions.
func (m *MemorySessions) Get(r *http.Request) (*Session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) > 128 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[hashID(c.Value)]
	now := m.now()
	if !ok || now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
		return nil, nil
	}
	s.seen = now
	return &Session{ID: c.Value, CSRF: s.csrf, Flow: s.flow}, nil
}

// Start implements Sessions.
func (m *MemorySessions) Start(w http.ResponseWriter, r *http.Request, f Flow) (*Session, error) {
	now := m.now()
	m.mu.Lock()
	if c, err := r.Cookie(cookieName); err == nil {
		delete(m.m, hashID(c.Value))
	}
	if len(m.m) >= maxMemSessions {
		for k, s := range m.m {
			if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
				delete(m.m, k)
			}
		}
		if len(m.m) >= maxMemSessions {
			m.mu.Unlock()
			return nil, errors.New("portal: too many sessions")
		}
	}
	s := &Session{ID: random(), CSRF: random(), Flow: f}
	m.m[hashID(s.ID)] = &memSession{csrf: s.CSRF, flow: f, created: now, seen: now}
	m.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.ID, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionMax / time.Second)})
	return s, nil
}

// Save implements Sessions.
func (m *MemorySessions) Save(ctx context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, ok := m.m[hashID(s.ID)]
	if !ok {
		return errors.New("portal: session ended")
	}
	ms.flow = s.Flow
	return nil
}

// CheckCSRF implements Sessions.
func (m *MemorySessions) CheckCSRF(r *http.Request, s *Session) error {
	if o := r.Header.Get("Origin"); o != "" && o != m.origin {
		return ErrCSRF
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return ErrCSRF
	}
	tok := r.PostFormValue("csrf")
	if s == nil || tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		return ErrCSRF
	}
	return nil
}
