package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/orchardmdm/orchard/mdm"
)

func hashOf(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(i)))
	return hex.EncodeToString(sum[:])
}

// The compact cache answers as the map-per-device one did: bindings
// follow a renewed certificate, user channels end with their device, and
// hashes that are not SHA-256 hex still work.
func TestStateCache(t *testing.T) {
	c := newStateCache()
	dev := mdm.Channel{DeviceID: "00008030-CACHE0000001"}
	user := mdm.Channel{DeviceID: dev.DeviceID, UserID: "USER-1"}
	h1, h2 := hashOf(1), hashOf(2)

	if _, ok := c.device(h1); ok || c.isEnrolled(dev) {
		t.Fatal("empty cache answered")
	}
	c.bind(0, h1, dev.DeviceID)
	c.setEnrolled(0, dev)
	c.setEnrolled(0, user)
	if d, ok := c.device(h1); !ok || d != dev.DeviceID || !c.isEnrolled(dev) || !c.isEnrolled(user) {
		t.Fatalf("after bind: device %q %v, enrolled %v %v", d, ok, c.isEnrolled(dev), c.isEnrolled(user))
	}
	if _, ok := c.device(strings.ToUpper(h1)); ok {
		t.Error("an uppercase spelling of the hash answered: the store keys hashes as given")
	}
	c.bind(0, h2, dev.DeviceID) // renewed certificate
	if _, ok := c.device(h1); ok {
		t.Error("the old certificate still answers after renewal")
	}
	if d, _ := c.device(h2); d != dev.DeviceID || !c.isEnrolled(dev) {
		t.Error("renewal lost the binding or the enrollment")
	}
	c.unenroll(user)
	if c.isEnrolled(user) || !c.isEnrolled(dev) {
		t.Error("unenrolling the user channel touched the wrong channel")
	}
	c.setEnrolled(0, user)
	c.unenroll(dev)
	if c.isEnrolled(dev) || c.isEnrolled(user) {
		t.Error("a device's user channels outlived it")
	}
	if d, _ := c.device(h2); d != dev.DeviceID {
		t.Error("unenroll dropped the certificate binding")
	}
	c.bind(0, "not-hex", "OTHER")
	if d, ok := c.device("not-hex"); !ok || d != "OTHER" {
		t.Error("a non-SHA-256 hash is not cached")
	}
	c.bind(0, h1, "OTHER")
	if _, ok := c.device("not-hex"); ok {
		t.Error("the replaced non-hex hash still answers")
	}
}

// BenchmarkStateCacheHeap reports the heap the connect cache holds per
// device once 100,000 devices are bound and enrolled.
func BenchmarkStateCacheHeap(b *testing.B) {
	const n = 100_000
	ids, hashes := make([]string, n), make([]string, n)
	for i := range n {
		ids[i], hashes[i] = fmt.Sprintf("00008030-%016X", i), hashOf(i)
	}
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newStateCache()
		for i := range n {
			c.bind(0, hashes[i], ids[i])
			c.setEnrolled(0, mdm.Channel{DeviceID: ids[i]})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(per, "heap-B/device")
}

// An invalidation (another replica's change) wins over a fill read before
// it, and in read-through mode nothing is answered or kept.
func TestStateCacheInvalidate(t *testing.T) {
	c := newStateCache()
	dev := mdm.Channel{DeviceID: "00008030-CACHE0000002"}
	h := hashOf(7)
	c.bind(c.now(), h, dev.DeviceID)
	c.setEnrolled(c.now(), dev)
	read := c.now() // a check reads storage now...
	c.invalidate(false)
	if _, ok := c.device(h); ok || c.isEnrolled(dev) {
		t.Fatal("invalidate kept entries")
	}
	c.bind(read, h, dev.DeviceID) // ...and fills after the invalidation
	c.setEnrolled(read, dev)
	if _, ok := c.device(h); ok || c.isEnrolled(dev) {
		t.Fatal("a fill read before the invalidation was kept")
	}
	c.invalidate(true)
	c.bind(c.now(), h, dev.DeviceID)
	c.setEnrolled(c.now(), dev)
	if _, ok := c.device(h); ok || c.isEnrolled(dev) {
		t.Fatal("read-through mode cached")
	}
	c.invalidate(false)
	c.bind(c.now(), h, dev.DeviceID)
	if d, ok := c.device(h); !ok || d != dev.DeviceID {
		t.Fatal("caching did not resume")
	}
}

// parseFingerprint accepts exactly the strings that hex-decode to 32 bytes
// and encode back to themselves (lowercase), with no allocation.
func FuzzParseFingerprint(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add(strings.Repeat("AB", 32))
	f.Add(strings.Repeat("0g", 32))
	f.Add("bulk-cert-1")
	f.Fuzz(func(t *testing.T, s string) {
		var want fingerprint
		wantOK := false
		if len(s) == 2*len(want) {
			_, err := hex.Decode(want[:], []byte(s))
			wantOK = err == nil && hex.EncodeToString(want[:]) == s
		}
		got, ok := parseFingerprint(s)
		if ok != wantOK || ok && got != want {
			t.Fatalf("%q: %x %v, want %x %v", s, got, ok, want, wantOK)
		}
	})
}

func TestParseFingerprintAllocs(t *testing.T) {
	h := strings.Repeat("0123456789abcdef", 4)
	if n := testing.AllocsPerRun(100, func() { parseFingerprint(h) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
