// Package password hashes and verifies passwords with argon2id, for admin
// accounts and directory users alike. A hash is a self-describing PHC string
// ($argon2id$v=19$m=<KiB>,t=<iterations>,p=<lanes>$<salt>$<key>), so costs
// can be raised later without invalidating stored passwords, and a stored
// hash that asks for too much work is refused rather than attempted.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost settings. Every hash records its own.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

const (
	saltLen = 16
	keyLen  = 32
	// Bounds on what a stored hash may ask for, so a corrupt or planted
	// record cannot make one verification exhaust memory or CPU.
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 16
	maxThreads   = 16
)

// MaxLen bounds passwords: long enough for any passphrase, short enough
// that hashing one costs nothing extra.
const MaxLen = 1024

// ErrMalformed: the encoded hash is not one this package can verify.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// Hash returns pw's argon2id hash with p, salt and parameters included.
func Hash(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	k := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(k)), nil
}

// Verify tells whether pw matches an encoded hash, with the parameters the
// hash records, in constant time. A hash it cannot or will not compute
// yields ErrMalformed.
func Verify(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrMalformed
	}
	p, ok := parseParams(parts[3])
	if !ok || p.MemoryKiB < 8 || p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 || p.Threads > maxThreads {
		return false, ErrMalformed
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 64 {
		return false, ErrMalformed
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// ParamsOf reads the cost settings an encoded hash records, so a caller
// can rehash on sign-in when they fall short of its current ones.
func ParamsOf(encoded string) (Params, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return Params{}, false
	}
	return parseParams(parts[3])
}

func parseParams(s string) (Params, bool) {
	var p Params
	_, err := fmt.Sscanf(s, "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads)
	return p, err == nil
}
