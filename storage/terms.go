package storage

import (
	"context"
	"fmt"
	"time"
)

// TermsDocument is one version of a terms-and-conditions document: the
// current one, or an older one kept as history. Name is the key.
type TermsDocument struct {
	Name    string `json:"name"`
	Title   string `json:"title"`
	Summary string `json:"summary,omitempty"`
	Text    string `json:"text"`
	Version int    `json:"version"`
	// RequireReacceptance is what the admin asked of this version: users who
	// accepted an earlier one must accept again.
	RequireReacceptance bool `json:"require_reacceptance,omitempty"`
	// ReacceptFrom is the newest version, up to this one, that asked for
	// (re)acceptance (1 for the first): an acceptance of a version below it
	// no longer counts.
	ReacceptFrom int `json:"reaccept_from"`
	// AllUsers assigns the document to everyone; otherwise to the members
	// of Groups.
	AllUsers  bool      `json:"all_users,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"created_at"` // when this version was made
}

// TermsAcceptance is a user's acceptance of one version of a document.
type TermsAcceptance struct {
	Document   string    `json:"document"`
	Username   string    `json:"username"`
	Version    int       `json:"version"`
	AcceptedAt time.Time `json:"accepted_at"`
	Address    string    `json:"address,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
}

// Cursor is the acceptance's place in ListTermsAcceptances order, for
// its after argument.
func (a *TermsAcceptance) Cursor() string {
	return fmt.Sprintf("%s/%s/%010d", a.Document, a.Username, a.Version)
}

// TermsAcceptanceFilter narrows ListTermsAcceptances; empty fields match all.
type TermsAcceptanceFilter struct {
	Document string
	Username string
}

// TermsStore keeps terms-and-conditions documents with their versions,
// and users' acceptances of them.
type TermsStore interface {
	// CreateTerms adds a document at version 1 (also its first history
	// entry); ErrConflict when the name is taken.
	CreateTerms(ctx context.Context, d *TermsDocument) error
	// PutTermsVersion makes d the current version of its document, keeping
	// the one before in the history: d.Version must be one more than the
	// stored current version (ErrConflict otherwise, nothing written);
	// ErrNotFound when there is no such document.
	PutTermsVersion(ctx context.Context, d *TermsDocument) error
	// Terms returns a document's current version, or ErrNotFound.
	Terms(ctx context.Context, name string) (*TermsDocument, error)
	// TermsVersion returns one version of a document, or ErrNotFound.
	TermsVersion(ctx context.Context, name string, version int) (*TermsDocument, error)
	// ListTermsVersions returns every version of a document, oldest
	// first; ErrNotFound for an unknown document.
	ListTermsVersions(ctx context.Context, name string) ([]TermsDocument, error)
	// ListTerms returns current versions ordered by name, after the given
	// one, at most limit (limit <= 0: all).
	ListTerms(ctx context.Context, after string, limit int) ([]TermsDocument, error)
	// DeleteTerms removes a document with its history and every acceptance
	// of it; ErrNotFound when there is none.
	DeleteTerms(ctx context.Context, name string) error
	// AcceptTerms records an acceptance. ErrNotFound, and nothing written,
	// for an unknown document or user; ErrConflict when the version is not
	// one the document has had. Accepting a version again is no change:
	// the first acceptance is kept.
	AcceptTerms(ctx context.Context, a *TermsAcceptance) error
	// ListTermsAcceptances returns acceptances ordered by document, user
	// and version, after the given cursor (TermsAcceptance.Cursor), at most
	// limit (limit <= 0: all).
	ListTermsAcceptances(ctx context.Context, f TermsAcceptanceFilter, after string, limit int) ([]TermsAcceptance, error)
}
