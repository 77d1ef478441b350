package storage

import (
	"context"
	"encoding/json"
	"time"
)

// StoredDeclaration is a declaration an admin defined. ServerToken is a
// hash of its content (ddm.ContentToken), set by the caller.
type StoredDeclaration struct {
	Identifier  string          `json:"identifier"`
	Type        string          `json:"type"`
	Payload     json.RawMessage `json:"payload"`
	ServerToken string          `json:"server_token"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// DeclarationSet groups declarations and assigns them to channels: those
// its Scope (a scope.Scope as JSON, opaque here) selects and those listed
// in Channels.
type DeclarationSet struct {
	Name         string          `json:"name"`
	Declarations []string        `json:"declarations"`
	Channels     []string        `json:"channels"`
	Scope        json.RawMessage `json:"scope,omitempty"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// DDMStatus is the latest declarative status of one channel: per
// declaration and per status item, merged from full and partial reports,
// and the newest raw reports (at most MaxDDMRawReports).
type DDMStatus struct {
	Channel      string                      `json:"channel"`
	UpdatedAt    time.Time                   `json:"updated_at"`
	Declarations map[string]DeclarationState `json:"declarations"`
	Items        map[string]json.RawMessage  `json:"items"`
	Raw          []RawDDMReport              `json:"raw,omitempty"`
}

// DeclarationState is what a device last said of one declaration.
type DeclarationState struct {
	Kind        string          `json:"kind"`
	ServerToken string          `json:"server_token"`
	Active      bool            `json:"active"`
	Valid       string          `json:"valid"`
	Reasons     json.RawMessage `json:"reasons,omitempty"`
	At          time.Time       `json:"at"`
}

// RawDDMReport is one status body as the device sent it.
type RawDDMReport struct {
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// MaxDDMRawReports is how many raw status reports are kept per channel.
const MaxDDMRawReports = 5

// DeclarationStore keeps declarations, declaration sets and the devices'
// declarative status.
type DeclarationStore interface {
	// PutDeclaration creates or replaces the declaration by Identifier.
	PutDeclaration(ctx context.Context, d *StoredDeclaration) error
	// Declaration returns one; ErrNotFound when absent.
	Declaration(ctx context.Context, identifier string) (*StoredDeclaration, error)
	// Declarations returns all, by identifier.
	Declarations(ctx context.Context) ([]StoredDeclaration, error)
	// DeleteDeclaration removes it; ErrNotFound when absent; ErrConflict
	// while a set still names it.
	DeleteDeclaration(ctx context.Context, identifier string) error

	// PutDeclarationSet creates or replaces the set by Name; ErrNotFound
	// when it names a declaration that does not exist.
	PutDeclarationSet(ctx context.Context, s *DeclarationSet) error
	// DeclarationSet returns one; ErrNotFound when absent.
	DeclarationSet(ctx context.Context, name string) (*DeclarationSet, error)
	// DeclarationSets returns all, by name.
	DeclarationSets(ctx context.Context) ([]DeclarationSet, error)
	// DeleteDeclarationSet removes it; ErrNotFound when absent.
	DeleteDeclarationSet(ctx context.Context, name string) error

	// UpdateDDMStatus reads the channel's status (empty when none), lets fn
	// change it and stores it, atomically. fn may run more than once.
	UpdateDDMStatus(ctx context.Context, channel string, fn func(*DDMStatus) error) error
	// DDMStatus returns a channel's status; ErrNotFound when none.
	DDMStatus(ctx context.Context, channel string) (*DDMStatus, error)
	// DDMStatuses returns every channel's status, by channel, without raw
	// reports.
	DDMStatuses(ctx context.Context) ([]DDMStatus, error)
}
