package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/storage"
	"github.com/orchardmdm/orchard/storage/bolt"
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
	// Before: 25, 10 of them Orchard's own (the attributes' copy, big.Int serial,
	// asn1 digest and signing time) besides the RSA verification's own.
	if allocs > 19 {
		t.Fatalf("%v allocations per verification", allocs)
	}
	t.Logf("%v allocations per verification", allocs)
}

// What the verifier keeps of every device that connected is small, and an
// Identity still answers with the whole issuance record on a cache hit.
func TestVerifierCachesCompact(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "o.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	const n = 4000
	sums := make([][32]byte, n)
	hashes := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // concurrent writers share commits
	for i := range n {
		sums[i] = sha256.Sum256([]byte(fmt.Sprint(i)))
		hashes[i] = hex.EncodeToString(sums[i][:])
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := st.PutCert(ctx, &storage.CertRecord{Hash: hashes[i], Serial: fmt.Sprintf("%032x", i),
				Subject: "CN=device " + fmt.Sprint(i), NotAfter: time.Now().AddDate(1, 0, 0), IssuedAt: time.Now(),
				Authorization: storage.CertAuthorization{Kind: storage.KindADE, ChallengeID: "challenge-" + fmt.Sprint(i), Ref: "profile-1", ForUDID: fmt.Sprintf("00008030-%016X", i)}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	v, err := NewVerifier(x509.NewCertPool(), st)
	if err != nil {
		t.Fatal(err)
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := live()
	for i := range n {
		if _, _, err := v.record(ctx, sums[i], hashes[i]); err != nil {
			t.Fatal(err)
		}
		v.mu.Lock()
		st := v.known[sums[i]]
		st.flags |= chainKnown | chainOK
		v.known[sums[i]] = st
		v.mu.Unlock()
	}
	per := float64(live()-before) / n
	// A whole record under its hex hash, and the hex again for the chain
	// verdict, took some 700 bytes a device; a map for each and the
	// serial's hex about 240; one map of fixed-size entries about 100.
	if per > 150 {
		t.Errorf("%.0f bytes kept per certificate, want at most 150", per)
	}
	t.Logf("%.0f bytes kept per certificate", per)

	isRevoked, rec, err := v.record(ctx, sums[7], hashes[7])
	if err != nil || rec != nil || isRevoked {
		t.Fatalf("cached: revoked %v, record %v, %v", isRevoked, rec, err)
	}
	id := &Identity{Hash: hashes[7], certs: st}
	if full, err := id.Record(ctx); err != nil || full.Authorization.ChallengeID != "challenge-7" {
		t.Fatalf("Record on a cache hit = %+v, %v; want the whole record", full, err)
	}
}
