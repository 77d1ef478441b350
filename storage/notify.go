package storage

import "context"

// Notifier is implemented by a store several replicas share: it tells
// this replica when any replica (itself included) changed state that
// replicas cache (a certificate revoked, a binding or enrollment changed, a
// setting such as the push certificate replaced).
//
// Contract: Subscribe's channel first delivers ChangeAll once the
// subscription is live; after that, every committed change of a watched
// record is delivered. When the store loses its notifications it delivers
// ChangeLost, keeps trying, and delivers ChangeAll once subscribed again:
// between the two a consumer must not trust what it cached. The channel is
// closed when ctx ends.
type Notifier interface {
	Subscribe(ctx context.Context) <-chan Change
}

// ChangeKind says which kind of record changed.
type ChangeKind string

const (
	ChangeCert       ChangeKind = "cert"       // Key: the certificate's serial (revoked)
	ChangeBinding    ChangeKind = "binding"    // Key: the certificate hash whose binding changed
	ChangeEnrollment ChangeKind = "enrollment" // Key: the device ID whose channel enrolled or unenrolled
	ChangeSetting    ChangeKind = "setting"    // Key: the setting's key
	ChangeAll        ChangeKind = "all"        // subscribed (again): drop every cache and use them again
	ChangeLost       ChangeKind = "lost"       // notifications lost: read through until ChangeAll
)

// Change is one notification.
type Change struct {
	Kind ChangeKind
	Key  string
}
