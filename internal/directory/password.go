package directory

import "github.com/orchardmdm/orchard/internal/password"

// Params are argon2id's cost settings (see package password).
type Params = password.Params

// DefaultParams follow OWASP's Password Storage Cheat Sheet (argon2id,
// 19 MiB, 2 iterations, 1 lane): affordable on a small server that signs
// in a few users a second.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// MaxPasswordLen bounds passwords.
const MaxPasswordLen = password.MaxLen

// HashPassword returns pw's self-describing argon2id hash made with p.
func HashPassword(pw string, p Params) (string, error) { return password.Hash(pw, p) }

// VerifyPassword tells whether pw matches an encoded hash, with the
// parameters the hash records.
func VerifyPassword(encoded, pw string) (bool, error) { return password.Verify(encoded, pw) }

// paramsOf reads the cost settings an encoded hash records.
func paramsOf(encoded string) (Params, bool) { return password.ParamsOf(encoded) }
