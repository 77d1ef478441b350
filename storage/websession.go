package storage

import (
	"context"
	"time"
)

// WebSession is one signed-in browser of a server-rendered page (the
// console, the enrollment portal). The store never sees the session id the
// browser holds, only its SHA-256, so a copy of the database cannot be
// replayed as a cookie.
type WebSession struct {
	// Kind keeps the surfaces apart ("console", "portal"): a session of one
	// kind is never found under another.
	Kind    string `json:"kind"`
	IDHash  []byte `json:"id_hash"`
	Subject string `json:"subject"` // who signed in ("" while signing in)
	// CSRF is the per-session token forms carry back.
	CSRF string `json:"csrf"`
	// Data holds small per-surface values (a pending second factor, a
	// flash message); never a password.
	Data          map[string]string `json:"data,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	IdleExpiresAt time.Time         `json:"idle_expires_at"`
	ExpiresAt     time.Time         `json:"expires_at"` // absolute: touching never moves it
}

// Expired tells whether s is no longer valid at now.
func (s *WebSession) Expired(now time.Time) bool {
	return !now.Before(s.IdleExpiresAt) || !now.Before(s.ExpiresAt)
}

// WebSessionStore keeps web sessions by kind and id hash.
type WebSessionStore interface {
	// CreateWebSession stores a new session; ErrConflict if its kind and
	// hash are taken.
	CreateWebSession(ctx context.Context, s *WebSession) error
	// GetWebSession returns the session of that kind and hash, or
	// ErrNotFound (expired sessions are returned: the caller decides).
	GetWebSession(ctx context.Context, kind string, idHash []byte) (*WebSession, error)
	// UpdateWebSession replaces an existing session's subject, CSRF token,
	// data and expiries; ErrNotFound if there is none.
	UpdateWebSession(ctx context.Context, s *WebSession) error
	// TouchWebSession moves a session's idle expiry; ErrNotFound if there
	// is none.
	TouchWebSession(ctx context.Context, kind string, idHash []byte, idleExpiresAt time.Time) error
	// DeleteWebSession removes one session; ErrNotFound if there is none.
	DeleteWebSession(ctx context.Context, kind string, idHash []byte) error
	// DeleteWebSessionsOf removes every session of that kind and subject
	// (an account disabled, a password changed) and says how many.
	DeleteWebSessionsOf(ctx context.Context, kind, subject string) (int, error)
	// DeleteExpiredWebSessions removes every session, of any kind, expired
	// (idle or absolute) at now, and says how many.
	DeleteExpiredWebSessions(ctx context.Context, now time.Time) (int, error)
}
