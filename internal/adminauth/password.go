package adminauth

import (
	"errors"
	"fmt"

	"github.com/orchardmdm/orchard/internal/password"
)

// adminParams are argon2id's costs for admin accounts (RFC 9106's second
// recommended option, 64 MiB): few accounts, so they can afford more than
// directory users.
var adminParams = password.Params{MemoryKiB: 64 << 10, Time: 3, Threads: 2}

// MinPasswordLen is the shortest password an admin account takes.
const MinPasswordLen = 12

// MaxPasswordLen bounds the work one sign-in attempt can ask for.
const MaxPasswordLen = password.MaxLen

// ErrBadPassword: the password does not match the hash.
var ErrBadPassword = errors.New("wrong password")

// CheckPasswordPolicy refuses passwords too short or too long.
func CheckPasswordPolicy(pw string) error {
	if len(pw) < MinPasswordLen {
		return fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return fmt.Errorf("password must be at most %d characters", MaxPasswordLen)
	}
	return nil
}

// HashPassword returns pw's self-describing argon2id hash (package password).
func HashPassword(pw string) (string, error) { return password.Hash(pw, adminParams) }

// VerifyPassword checks pw against a stored hash, with the hash's own
// parameters: nil on a match, ErrBadPassword on a mismatch, another error
// when the hash is malformed or asks for too much work.
func VerifyPassword(hash, pw string) error {
	if len(pw) > MaxPasswordLen {
		return ErrBadPassword
	}
	ok, err := password.Verify(hash, pw)
	if err != nil {
		return fmt.Errorf("adminauth: %w", err)
	}
	if !ok {
		return ErrBadPassword
	}
	return nil
}
