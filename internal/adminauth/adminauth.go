// Package adminauth is who may do what on the admin surface: the four
// admin roles, the five kinds of access a route declares, the one rule
// between them, the actor a request runs as, and the password hashing
// admin accounts use. The admin API (and later the console) enforce it in
// one middleware; nothing else decides access.
package adminauth

import (
	"context"
	"fmt"
)

// Role is an admin's or a token's role.
type Role string

const (
	Owner    Role = "owner"    // everything
	Admin    Role = "admin"    // everything but managing admins
	Helpdesk Role = "helpdesk" // read and non-destructive actions
	Auditor  Role = "auditor"  // read only
)

// Roles lists every role, highest first.
var Roles = []Role{Owner, Admin, Helpdesk, Auditor}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want owner, admin, helpdesk or auditor)", s)
}

// rank orders roles; an unknown role ranks below every real one.
func (r Role) rank() int {
	switch r {
	case Owner:
		return 4
	case Admin:
		return 3
	case Helpdesk:
		return 2
	case Auditor:
		return 1
	}
	return 0
}

// AtMost tells whether r is no higher than other (a token's role must be
// at most its admin's).
func (r Role) AtMost(other Role) bool { return r.rank() > 0 && r.rank() <= other.rank() }

// Lower returns the lower of two roles: what a token may do is bounded by
// its admin's role now, not only when it was made.
func Lower(a, b Role) Role {
	if a.rank() <= b.rank() {
		return a
	}
	return b
}

// Need is the kind of access a route (or one request on it) takes.
type Need int

const (
	// Read: look, change nothing.
	Read Need = iota + 1
	// Action: a non-destructive device action (refresh, lock, clear
	// passcode, lost mode, a push, a sync).
	Action
	// Destructive: loses data or management (erase, retire, revoke, delete).
	Destructive
	// Policy: what devices are told to be and how they enroll (commands,
	// profiles, enrollment, push certificate, ABM tokens), and secrets.
	Policy
	// ManageAdmins: admin accounts, and the backup that holds everything.
	ManageAdmins
)

func (n Need) String() string {
	switch n {
	case Read:
		return "read"
	case Action:
		return "action"
	case Destructive:
		return "destructive"
	case Policy:
		return "policy"
	case ManageAdmins:
		return "manage-admins"
	}
	return fmt.Sprintf("need(%d)", int(n))
}

// Allows is the one rule: which role may take which access.
func (r Role) Allows(n Need) bool {
	switch r {
	case Owner:
		return n >= Read && n <= ManageAdmins
	case Admin:
		return n >= Read && n <= Policy
	case Helpdesk:
		return n == Read || n == Action
	case Auditor:
		return n == Read
	}
	return false
}

// Actor is who a request runs as. Exactly one of the bootstrap key, an
// admin's password session (later, the console) or an admin's API token.
type Actor struct {
	// Admin is the admin's username; empty for the bootstrap key.
	Admin string
	// TokenID is the API token used, if any.
	TokenID string
	// Bootstrap marks the <data>/api-key owner token.
	Bootstrap bool
	// Role is what the request may do: the token's role bounded by its
	// admin's current role.
	Role Role
}

// String names the actor for the audit log: "bootstrap", "alice" or
// "alice/token:<id>". It never holds a secret.
func (a *Actor) String() string {
	switch {
	case a == nil:
		return "anonymous"
	case a.Bootstrap:
		return "bootstrap"
	case a.TokenID != "":
		return a.Admin + "/token:" + a.TokenID
	}
	return a.Admin
}

type actorKey struct{}

// WithActor returns ctx carrying the request's actor.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the request's actor, or nil.
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}
