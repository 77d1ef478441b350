package webui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/storage"
)

// touchSlack: a session's idle expiry is written back only when it would
// move by more than this, so reading pages does not write on every request.
const touchSlack = time.Minute

type ctxKey int

const (
	sessionKey ctxKey = iota
	anonCSRFKey
)

// SessionCookie is the cookie name of a kind's session; the __Host- prefix
// makes the browser insist on Secure, Path=/ and no Domain, so no other
// host can plant one.
func SessionCookie(kind string) string { return "__Host-orchard-" + kind }

func csrfCookie(kind string) string { return "__Host-orchard-" + kind + "-csrf" }

// randomToken is 256 random bits, base64url without padding.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// Session returns the request's signed-in or anonymous session, or nil.
func Session(r *http.Request) *storage.WebSession {
	ws, _ := r.Context().Value(sessionKey).(*storage.WebSession)
	return ws
}

// Subject is who the request's session belongs to ("" when none).
func Subject(r *http.Request) string {
	if ws := Session(r); ws != nil {
		return ws.Subject
	}
	return ""
}

// load finds the request's session: a missing, unknown or expired one is
// no session (an expired one is deleted and its cookie cleared). Without a
// session the browser gets an anonymous CSRF cookie, so the sign-in form
// is protected too without writing anything to the store.
func (s *Site) load(w http.ResponseWriter, r *http.Request) (*http.Request, error) {
	ctx := r.Context()
	if c, err := r.Cookie(SessionCookie(s.o.Kind)); err == nil && validToken(c.Value) {
		h := hashID(c.Value)
		ws, err := s.o.Store.GetWebSession(ctx, s.o.Kind, h)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			s.clearCookie(w, SessionCookie(s.o.Kind))
		case err != nil:
			return r, fmt.Errorf("load session: %w", err)
		case ws.Expired(s.o.Now()):
			if err := s.o.Store.DeleteWebSession(ctx, s.o.Kind, h); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return r, fmt.Errorf("drop expired session: %w", err)
			}
			s.clearCookie(w, SessionCookie(s.o.Kind))
		default:
			idle := s.idleUntil(ws)
			if idle.Sub(ws.IdleExpiresAt) > touchSlack {
				if err := s.o.Store.TouchWebSession(ctx, s.o.Kind, h, idle); err != nil {
					return r, fmt.Errorf("touch session: %w", err)
				}
				ws.IdleExpiresAt = idle
			}
			return r.WithContext(context.WithValue(ctx, sessionKey, ws)), nil
		}
	}
	tok := ""
	if c, err := r.Cookie(csrfCookie(s.o.Kind)); err == nil && validToken(c.Value) {
		tok = c.Value
	} else if safeMethod(r.Method) {
		tok = randomToken()
		s.setCookie(w, csrfCookie(s.o.Kind), tok, 0)
	}
	return r.WithContext(context.WithValue(ctx, anonCSRFKey, tok)), nil
}

// validToken: what randomToken makes (43 base64url characters); anything
// else is not looked up at all.
func validToken(v string) bool {
	if len(v) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}

func (s *Site) idleUntil(ws *storage.WebSession) time.Time {
	idle := s.o.Now().Add(s.o.IdleTimeout)
	if idle.After(ws.ExpiresAt) {
		idle = ws.ExpiresAt
	}
	return idle
}

func (s *Site) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

func (s *Site) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// SignIn starts a new session for subject and sets its cookie. Any session
// the request came with is deleted first, so the id changes at sign-in (a
// planted id is worth nothing). data is stored with the session; it must
// not hold a secret the browser may not learn.
func (s *Site) SignIn(w http.ResponseWriter, r *http.Request, subject string, data map[string]string) (*storage.WebSession, error) {
	if old := Session(r); old != nil {
		if err := s.o.Store.DeleteWebSession(r.Context(), s.o.Kind, old.IDHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("drop the old session: %w", err)
		}
	}
	id := randomToken()
	now := s.o.Now()
	ws := &storage.WebSession{Kind: s.o.Kind, IDHash: hashID(id), Subject: subject, CSRF: randomToken(), Data: data,
		CreatedAt: now, ExpiresAt: now.Add(s.o.MaxAge)}
	ws.IdleExpiresAt = s.idleUntil(ws)
	if err := s.o.Store.CreateWebSession(r.Context(), ws); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	s.setCookie(w, SessionCookie(s.o.Kind), id, s.o.MaxAge)
	return ws, nil
}

// Save writes back a changed session (its subject, data or CSRF token).
func (s *Site) Save(ctx context.Context, ws *storage.WebSession) error {
	if err := s.o.Store.UpdateWebSession(ctx, ws); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// SignOut deletes the request's session and clears its cookie.
func (s *Site) SignOut(w http.ResponseWriter, r *http.Request) error {
	s.clearCookie(w, SessionCookie(s.o.Kind))
	ws := Session(r)
	if ws == nil {
		return nil
	}
	if err := s.o.Store.DeleteWebSession(r.Context(), s.o.Kind, ws.IDHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}

// DeleteExpired removes expired sessions of every kind; the server runs it
// now and then.
func (s *Site) DeleteExpired(ctx context.Context) (int, error) {
	return s.o.Store.DeleteExpiredWebSessions(ctx, s.o.Now())
}

// CSRFField is the name of the hidden form field that carries the token.
const CSRFField = "csrf"

// CSRFToken is the token the request's forms must carry: the session's,
// or the anonymous cookie's before sign-in.
func CSRFToken(r *http.Request) string {
	if ws := Session(r); ws != nil {
		return ws.CSRF
	}
	tok, _ := r.Context().Value(anonCSRFKey).(string)
	return tok
}

// csrfOK compares the posted token with the request's, in constant time.
func (s *Site) csrfOK(r *http.Request) bool {
	want := CSRFToken(r)
	got := r.PostFormValue(CSRFField)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
