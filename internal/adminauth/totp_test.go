package adminauth

import (
	"testing"
	"time"
)

// RFC 6238 appendix B, the SHA-1 rows (8 digits).
func TestTOTPCodeRFC6238(t *testing.T) {
	secret := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := TOTPCode(secret, time.Unix(tc.unix, 0), 8); got != tc.want {
			t.Errorf("T=%d: %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	secret := []byte("another secret key!!")
	now := time.Unix(1_800_000_000, 0)
	code := TOTPCode(secret, now, 6)
	for _, d := range []time.Duration{0, 29 * time.Second, -30 * time.Second} {
		if !CheckTOTP(secret, code, now.Add(d)) {
			t.Errorf("code refused %v away", d)
		}
	}
	if CheckTOTP(secret, code, now.Add(2*time.Minute)) || CheckTOTP(secret, "12345", now) || CheckTOTP([]byte("other"), code, now) {
		t.Error("CheckTOTP accepted a stale, short or foreign code")
	}
}
