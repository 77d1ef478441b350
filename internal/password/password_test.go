package password_test

import (
	"errors"
	"testing"

	"github.com/orchardmdm/orchard/internal/password"
)

// Hashes made by the two hashers this package replaced (adminauth's, 64 MiB,
// and directory's, OWASP's 19 MiB): both kinds must keep verifying.
var legacy = []struct{ name, hash, pw string }{
	{"adminauth", "$argon2id$v=19$m=65536,t=3,p=2$F0d+nnKe54J0uWqRYTarhg$9vmIE2ibS/19eJZQxJa4NaAFRNWs7aNoNEo94HQAHe4", "admin passphrase"},
	{"directory", "$argon2id$v=19$m=19456,t=2,p=1$PSMmZUzYOsnphlFnOUg52w$arOTku9O2waCoatr2wneP9zupM/CBIWLyIAgr1oXhHk", "user passphrase"},
}

func TestVerifiesHashesOfBothFormerHashers(t *testing.T) {
	for _, c := range legacy {
		if ok, err := password.Verify(c.hash, c.pw); !ok || err != nil {
			t.Errorf("%s hash: %v %v", c.name, ok, err)
		}
		if ok, err := password.Verify(c.hash, c.pw+"!"); ok || err != nil {
			t.Errorf("%s hash, wrong password: %v %v", c.name, ok, err)
		}
	}
}

func TestRefusesCostlyOrBrokenHashes(t *testing.T) {
	for _, bad := range []string{
		"", "plain", "$argon2id$x",
		"$argon2id$v=19$m=2097152,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 2 GiB
		"$argon2id$v=19$m=64,t=17,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", // 4-byte salt
	} {
		if _, err := password.Verify(bad, "x"); !errors.Is(err, password.ErrMalformed) {
			t.Errorf("Verify(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestParamsOfReadsWhatHashRecorded(t *testing.T) {
	want := password.Params{MemoryKiB: 64, Time: 2, Threads: 1}
	h, err := password.Hash("pw", want)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := password.ParamsOf(h); !ok || got != want {
		t.Fatalf("ParamsOf = %+v %v, want %+v", got, ok, want)
	}
}
