package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/orchardmdm/orchard/internal/ratelimit"
	"github.com/orchardmdm/orchard/storage"
)

// Authenticator signs a person in. The portal and Setup Assistant sign-in
// depend on this interface only, so an OIDC provider can replace local
// passwords without them changing. addr is the client's address, for rate
// limits and the log.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password, addr string) (*storage.DirectoryUser, error)
}

var (
	// ErrBadCredentials: unknown user or wrong password (the two are not
	// told apart, so the answer reveals no usernames).
	ErrBadCredentials = errors.New("wrong username or password")
	// ErrDisabled: the password was right but the account is disabled.
	ErrDisabled = errors.New("this account is disabled")
)

// RateLimitedError refuses a sign-in before the password is checked.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many failed sign-ins: try again in %s", e.RetryAfter.Round(time.Second))
}

// Sign-in limits: failures only cost a token, so people who type their
// password right are never slowed.
const (
	userBurst, userPerMinute = 5, 1  // per username
	addrBurst, addrPerMinute = 20, 5 // per client address
)

// PasswordAuth is the Authenticator of local passwords.
type PasswordAuth struct {
	dir    *Service
	log    *slog.Logger
	byUser *ratelimit.Limiter
	byAddr *ratelimit.Limiter
	dummy  func() string // a hash to verify against for unknown users
}

var _ Authenticator = (*PasswordAuth)(nil)

// NewPasswordAuth signs users in against the directory's password hashes.
// opts go to both limiters (tests set the clock).
func NewPasswordAuth(dir *Service, log *slog.Logger, opts ...ratelimit.Option) (*PasswordAuth, error) {
	if dir == nil || log == nil {
		return nil, errors.New("directory: password auth needs the directory and a logger")
	}
	byUser, err := ratelimit.New("signin_user", userBurst, userPerMinute, opts...)
	if err != nil {
		return nil, err
	}
	byAddr, err := ratelimit.New("signin_addr", addrBurst, addrPerMinute, opts...)
	if err != nil {
		return nil, err
	}
	a := &PasswordAuth{dir: dir, log: log, byUser: byUser, byAddr: byAddr}
	a.dummy = sync.OnceValue(func() string {
		h, _ := HashPassword("not a password anyone has", dir.params)
		return h
	})
	return a, nil
}

// Authenticate implements Authenticator. Failures are logged with the
// username and address, never the password.
func (a *PasswordAuth) Authenticate(ctx context.Context, username, password, addr string) (*storage.DirectoryUser, error) {
	name, nameErr := NormalizeName("username", username)
	if nameErr != nil {
		name = truncate(username)
	}
	if wait, ok := a.byAddr.Check(addr); !ok {
		a.fail(ctx, name, addr, "rate limited (address)")
		return nil, &RateLimitedError{wait}
	}
	if wait, ok := a.byUser.Check(name); !ok {
		a.fail(ctx, name, addr, "rate limited (user)")
		return nil, &RateLimitedError{wait}
	}
	if len(password) > MaxPasswordLen {
		return nil, a.spend(ctx, name, addr, "password too long", ErrBadCredentials)
	}
	var u *storage.DirectoryUser
	var err error
	if nameErr == nil {
		u, err = a.dir.store.User(ctx, name)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	if u == nil || u.PasswordHash == "" {
		// Spend the same time as a real check, so timing reveals no usernames.
		VerifyPassword(a.dummy(), password)
		return nil, a.spend(ctx, name, addr, "unknown user or no password", ErrBadCredentials)
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("directory: user %q: %w", name, err)
	}
	if !ok {
		return nil, a.spend(ctx, name, addr, "wrong password", ErrBadCredentials)
	}
	if u.Disabled {
		return nil, a.spend(ctx, name, addr, "account disabled", ErrDisabled)
	}
	a.rehash(ctx, u, password)
	return u, nil
}

func (a *PasswordAuth) spend(ctx context.Context, name, addr, reason string, err error) error {
	a.byAddr.Spend(addr)
	a.byUser.Spend(name)
	a.fail(ctx, name, addr, reason)
	return err
}

func (a *PasswordAuth) fail(ctx context.Context, name, addr, reason string) {
	a.log.WarnContext(ctx, "sign-in failed", "username", name, "addr", addr, "reason", reason)
}

// rehash upgrades a hash made with weaker parameters than today's, while
// the password is at hand; a failure only means the old hash stays.
func (a *PasswordAuth) rehash(ctx context.Context, u *storage.DirectoryUser, password string) {
	p, ok := paramsOf(u.PasswordHash)
	want := a.dir.params
	if ok && p.MemoryKiB >= want.MemoryKiB && p.Time >= want.Time && p.Threads >= want.Threads {
		return
	}
	h, err := HashPassword(password, want)
	if err != nil {
		return
	}
	old := u.PasswordHash
	_, err = a.dir.store.UpdateUser(ctx, u.Username, func(x *storage.DirectoryUser) error {
		if x.PasswordHash == old { // not changed by an admin meanwhile
			x.PasswordHash = h
		}
		return nil
	})
	if err != nil {
		a.log.WarnContext(ctx, "could not upgrade a password hash", "username", u.Username, "err", err)
	}
}
