// Package storage declares what Orchard keeps and the contracts of the
// stores that keep it: small role interfaces, each documented, that the
// consuming packages ask for by the narrowest one they need. Backends live in
// subpackages (bolt is the embedded default) and must all pass the
// conformance suite in storage/storagetest unchanged.
package storage

import (
	"errors"
	"io"
)

var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnchanged: an update function leaves its record as it was.
	ErrUnchanged = errors.New("unchanged")
	// ErrConflict: the write lost a compare-and-set against a concurrent or
	// earlier change (the caller re-reads and decides again).
	ErrConflict = errors.New("conflict")
)

// Store is every role a backend plays, for wiring: the server opens one and
// hands each consumer only the role interface it asks for. Close waits for
// pending writes and releases the backend.
type Store interface {
	MDMStore
	EnrollStore
	DEPStore
	InventoryStore
	DirectoryStore
	AdminStore
	ProfileStore
	DeclarationStore
	PolicyStore
	WebSessionStore
	CategoryStore
	CommandHistory
	CommandLog
	WebhookStore
	TermsStore
	EnrollmentSessionStore
	io.Closer
}
