package storage

import (
	"context"
	"strings"
	"time"
)

// AdminAccount is a person who administers Orchard. Password holds only
// the argon2id hash; the role is one of adminauth's.
type AdminAccount struct {
	Username     string    `json:"username"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"password_hash"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	// TOTPSealed is the console's second factor: the TOTP secret, sealed
	// with the server's secret box (nil: password only). TOTPUsedStep is
	// the last 30-second step whose code signed in, so no code is used twice.
	TOTPSealed   []byte `json:"totp_sealed,omitempty"`
	TOTPUsedStep int64  `json:"totp_used_step,omitempty"`
}

// APIToken is an admin's bearer token as stored: never the token, only
// its SHA-256 (the token is 256 random bits, so a fast hash is enough).
type APIToken struct {
	ID        string    `json:"id"`
	Admin     string    `json:"admin"`
	Name      string    `json:"name,omitempty"`
	Role      string    `json:"role"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// AuditEntry is one admin mutation: who, when, from where, what on which
// target, and how it ended. It never holds a request body or a secret.
type AuditEntry struct {
	ID     string    `json:"id"` // assigned by the store; sorts by time of writing
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // "bootstrap", "alice" or "alice/token:<id>"
	Source string    `json:"source"` // the client's address
	Action string    `json:"action"` // the route: "POST /v1/devices/{id}/actions/{action}"
	Target string    `json:"target,omitempty"`
	Status int       `json:"status"`
	Result string    `json:"result"` // "ok", "denied" or "failed: <reason>"
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Actor  string // exact, or a prefix ending in "/" for an admin's tokens
	Action string // substring of the action
	Target string // exact
	Since  time.Time
	Until  time.Time
}

// Match tells whether e passes f.
func (f AuditFilter) Match(e *AuditEntry) bool {
	switch {
	case f.Actor != "" && e.Actor != f.Actor && !strings.HasPrefix(e.Actor, f.Actor+"/"):
		return false
	case f.Action != "" && !strings.Contains(e.Action, f.Action):
		return false
	case f.Target != "" && e.Target != f.Target:
		return false
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !e.Time.Before(f.Until):
		return false
	}
	return true
}

// AdminStore keeps admin accounts, their API tokens and the audit log.
type AdminStore interface {
	// CreateAdmin stores a new account; ErrConflict if the username is taken.
	CreateAdmin(ctx context.Context, a *AdminAccount) error
	// UpdateAdmin replaces an existing account; ErrNotFound if there is none.
	UpdateAdmin(ctx context.Context, a *AdminAccount) error
	// GetAdmin returns one account or ErrNotFound.
	GetAdmin(ctx context.Context, username string) (*AdminAccount, error)
	// ListAdmins returns every account by username.
	ListAdmins(ctx context.Context) ([]AdminAccount, error)
	// DeleteAdmin removes an account and all its tokens, in one commit;
	// ErrNotFound if there is none.
	DeleteAdmin(ctx context.Context, username string) error

	// CreateAPIToken stores a token for an existing admin (ErrNotFound
	// otherwise); ErrConflict if its ID or hash is taken.
	CreateAPIToken(ctx context.Context, t *APIToken) error
	// APITokenByHash finds a token by the SHA-256 of its secret, or ErrNotFound.
	APITokenByHash(ctx context.Context, hash []byte) (*APIToken, error)
	// ListAPITokens returns an admin's tokens (every token when admin is
	// empty), by ID.
	ListAPITokens(ctx context.Context, admin string) ([]APIToken, error)
	// DeleteAPIToken revokes a token at once; ErrNotFound if there is none.
	DeleteAPIToken(ctx context.Context, id string) error

	// AppendAudit stores e durably and sets its ID; IDs increase in the
	// order entries are written.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns up to limit entries matching f, oldest first,
	// after the entry with ID after ("" from the start).
	ListAudit(ctx context.Context, f AuditFilter, after string, limit int) ([]AuditEntry, error)
}
