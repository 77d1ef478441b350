package identity

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"testing"
	"time"
)

// parseSigningTime must read every input as asn1.Unmarshal does: the same
// instant when both read one, an error when asn1 has one.
func checkSigningTime(t *testing.T, b []byte) {
	t.Helper()
	var want time.Time
	_, wantErr := asn1.Unmarshal(b, &want)
	got, err := parseSigningTime(b)
	if (err == nil) != (wantErr == nil) || err == nil && !got.Equal(want) {
		t.Fatalf("%q: read %v (%v), asn1 %v (%v)", b, got, err, want, wantErr)
	}
}

func TestSigningTimeAsASN1(t *testing.T) {
	for _, s := range []string{
		"260101120000Z", "491231235959Z", "500101000000Z", "991231235959Z", "000101000000Z",
		"240229000000Z", "230229000000Z", "260230000000Z", "260431000000Z", "261301000000Z",
		"260001000000Z", "260100000000Z", "261231240000Z", "261231236000Z", "261231235960Z",
		"2601011200Z", "26010112000Z", "2601011200000", "26010112000+Z", "2a0101120000Z", "26010112000-Z",
	} {
		b := append([]byte{0x17, byte(len(s))}, s...)
		checkSigningTime(t, b)
		checkSigningTime(t, append(b, 0x05, 0x00)) // a trailing value is ignored by both
	}
	gen, err := asn1.MarshalWithParams(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "generalized")
	if err != nil {
		t.Fatal(err)
	}
	checkSigningTime(t, gen)
}

func FuzzSigningTime(f *testing.F) {
	f.Add([]byte("260101120000Z"))
	f.Add([]byte("500229235959Z"))
	f.Fuzz(func(t *testing.T, s []byte) {
		checkSigningTime(t, append([]byte{0x17, byte(len(s))}, s...))
	})
}

// A certificate the cache holds is vouched for only where derStable
// itself would accept it: at the certificates' depth, within the bound.
func TestCachedCertStability(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, key)
	cache := newCertCache(4)
	if cache.stableAt(cert.Raw, certDepth) {
		t.Fatal("an uncached certificate vouched for")
	}
	e, err := cache.parse(cert.Raw)
	if err != nil || !e.stable || e.height < 3 {
		t.Fatalf("cached %+v, %v", e, err)
	}
	if !cache.stableAt(cert.Raw, certDepth) || cache.stableAt(cert.Raw, maxDERDepth-e.height+2) {
		t.Fatal("the depth bound is not derStable's")
	}
	for depth := 0; depth <= maxDERDepth+1; depth++ {
		if got, want := cache.stableAt(cert.Raw, depth), derStable(cert.Raw, depth, nil); got != want {
			t.Fatalf("depth %d: vouched %v, derStable %v", depth, got, want)
		}
	}
	// A certificate that is not stable on its own (a long-form length
	// where a short one fits) is never vouched for, even once cached.
	loose := longForm(t, cert.Raw)
	if e, err := cache.parse(loose); err == nil && (e.stable || cache.stableAt(loose, certDepth)) {
		t.Fatal("a certificate with a non-minimal length vouched for")
	}
}

// longForm re-encodes the outer length of der in a longer form than needed.
func longForm(t *testing.T, der []byte) []byte {
	t.Helper()
	if der[1] != 0x82 {
		t.Fatalf("want a two-byte length, got %#x", der[1])
	}
	out := append([]byte{der[0], 0x83, 0}, der[2:]...)
	if bytes.Equal(out, der) {
		t.Fatal("unchanged")
	}
	return out
}

// The connect hot path allocates little once a device's certificate is
// cached: no re-parse, no re-hash, no asn1 reflection.
func TestVerifyAllocations(t *testing.T) {
	s := cmsSeeds(t)[0]
	cache := newCertCache(4)
	if _, err := parseDetached(s.der, cache); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		d, err := parseDetached(s.der, cache)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.verify(s.body); err != nil {
			t.Fatal(err)
		}
	})
	// Before: 9 of Orchard's own (the attributes' copy, big.Int serial,
	// asn1 digest and signing time) besides the RSA verification's own.
	if allocs > 19 {
		t.Fatalf("%v allocations per verification", allocs)
	}
	t.Logf("%v allocations per verification", allocs)
}
