package adminauth

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"time"
)

// TOTP step and length: what every authenticator app uses by default.
const (
	totpStep   = 30 * time.Second
	totpDigits = 6
)

// TOTPCode is the RFC 6238 code (HMAC-SHA1, 30 s steps) for secret at t,
// with digits digits.
func TOTPCode(secret []byte, t time.Time, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(t.Unix())/uint64(totpStep/time.Second))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	// RFC 4226 dynamic truncation.
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// CheckTOTP accepts a 6-digit code for now or one step either side (clock
// drift), in constant time per candidate. The caller must refuse a code
// already used in its window and rate-limit failures.
func CheckTOTP(secret []byte, code string, now time.Time) bool {
	if len(code) != totpDigits {
		return false
	}
	ok := 0
	for _, d := range []time.Duration{-totpStep, 0, totpStep} {
		ok |= subtle.ConstantTimeCompare([]byte(TOTPCode(secret, now.Add(d), totpDigits)), []byte(code))
	}
	return ok == 1
}
